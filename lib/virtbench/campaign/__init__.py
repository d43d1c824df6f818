"""Campaigns across many hosts on Dask distributed: one plan, one worker per host, one
dataset (see :mod:`.plan`, :mod:`.client`, :mod:`.worker`, :mod:`.cluster`)."""

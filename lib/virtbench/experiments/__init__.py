"""Experiments: registered measurement steps and the runner (see :mod:`.core`)."""

from virtbench.experiments import basic, cross, isolation  # noqa: F401 - registers them
from virtbench.experiments.core import EXPERIMENTS, Experiment, Params, get, run

__all__ = ["EXPERIMENTS", "Experiment", "Params", "get", "run"]

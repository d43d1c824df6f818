"""Experiments: registered measurement steps and the runner (see :mod:`.core`)."""

from virtbench.experiments import basic  # noqa: F401 - registers the built-in experiments
from virtbench.experiments.core import EXPERIMENTS, Experiment, Params, get, run

__all__ = ["EXPERIMENTS", "Experiment", "Params", "get", "run"]

"""Experiments: registered measurement steps and the runner (see :mod:`.core`)."""

from virtbench.experiments import (  # noqa: F401 - registers the experiments
    basic,
    cross,
    isolation,
    observability,
    redis,
    speedtest1,
    sysbench,
    syscalls,
)
from virtbench.experiments.core import EXPERIMENTS, Experiment, Params, get, run

__all__ = ["EXPERIMENTS", "Experiment", "Params", "get", "run"]

"""The experiments, found by themselves: one module per experiment in this folder.

Every module here except :mod:`.base` (the seam: :class:`Experiment`, :class:`Params`,
:class:`Option`) is one experiment: the module ``NAME.py`` defines ``EXPERIMENT =
Experiment("NAME", ...)``, its metrics declared beside its measuring code (``metrics=``).
A package scan imports them all; code several experiments share lives in
:mod:`virtbench.experiments.shared`, which the scan does not enter. Adding an experiment is
one new file; :mod:`virtbench.catalog` collects its metrics and :mod:`virtbench.runner`
runs it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence

from virtbench.experiments.base import Experiment, Option, Params

#: Modules of this folder that are not experiments.
NOT_EXPERIMENTS = ("base",)


def scan(path: Sequence[str] = tuple(__path__), package: str = __name__) -> dict[str, Experiment]:
    """Import every experiment module of ``package`` (this one, in ``path``); each one's
    ``EXPERIMENT`` by name (an ImportError names a module that declares none, or one under
    another name)."""
    found: dict[str, Experiment] = {}
    for info in pkgutil.iter_modules(path):
        if info.ispkg or info.name in NOT_EXPERIMENTS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        experiment = getattr(module, "EXPERIMENT", None)
        if not isinstance(experiment, Experiment):
            raise ImportError(f"{module.__file__} defines no EXPERIMENT = Experiment(...): "
                              "every module in virtbench/experiments/ is one experiment "
                              "(shared code belongs in virtbench/experiments/shared/)")
        if experiment.name != info.name:
            raise ImportError(f"{module.__file__} declares the experiment "
                              f"{experiment.name!r}: an experiment's module is named after "
                              f"it ({experiment.name}.py)")
        found[experiment.name] = experiment
    return found


#: Every experiment, by name (in the order of their module names).
EXPERIMENTS: dict[str, Experiment] = scan()


def get(name: str) -> Experiment:
    """The experiment called ``name``; the error lists the valid names."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; valid: {', '.join(sorted(EXPERIMENTS))}")
    return EXPERIMENTS[name]


def run(*args, **kwargs):
    """:func:`virtbench.runner.run`, under the name ``report.measure`` still calls. The
    runner sits above this package (it writes through the store, whose row check reads the
    catalog, which collects these experiments), so it is imported when called; new code
    imports :mod:`virtbench.runner`."""
    return importlib.import_module("virtbench.runner").run(*args, **kwargs)


__all__ = ["EXPERIMENTS", "Experiment", "Option", "Params", "get", "run", "scan"]

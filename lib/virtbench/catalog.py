"""The metric catalog: every metric an experiment can emit, collected from the experiments.

Each experiment declares its metrics beside its measuring code (``metrics=`` of its
:class:`~virtbench.experiments.base.Experiment`, in ``virtbench/experiments/NAME.py``); this
module collects them into one catalog keyed by (experiment, name). A metric says its unit,
what it is (the interval timed, from which event to which, or the memory counter read),
whether lower or higher is better, whether it is exact (a deterministic size) and the
condition keys it can be measured under (:mod:`virtbench.metric`). :func:`validate` is
called for every row written, so an undeclared metric, condition key or unit is an error.

Each row's ``description`` still says exactly what that variant's number covers; ``what``
here is the shared meaning across variants.
"""

from __future__ import annotations

from collections.abc import Mapping

from virtbench.experiments import EXPERIMENTS
from virtbench.metric import BETTER, CONDITIONS, VALUE_CHECKS, VALUES, Metric

__all__ = ["BETTER", "CATALOG", "CONDITIONS", "PRIMARY", "VALUES", "Metric", "experiments",
           "get", "metrics", "primary", "validate"]

#: Every declared metric by (experiment, name), experiment by experiment.
CATALOG: dict[tuple[str, str], Metric] = {
    (m.experiment, m.name): m for e in EXPERIMENTS.values() for m in e.metrics}

#: The rows written for an experiment when nothing was measured: (metric, conditions).
PRIMARY: dict[str, tuple[tuple[str, Mapping[str, str]], ...]] = {
    e.name: e.primary for e in EXPERIMENTS.values() if e.primary}


def experiments() -> list[str]:
    """The experiments that declare metrics, in catalog order."""
    return list(dict.fromkeys(e for e, _ in CATALOG))


def metrics(experiment: str | None = None) -> list[Metric]:
    """Every declared metric, or those of ``experiment`` (ValueError if it has none)."""
    if experiment is None:
        return list(CATALOG.values())
    found = [m for (e, _), m in CATALOG.items() if e == experiment]
    if not found:
        raise ValueError(f"no metrics are declared for experiment {experiment!r}; "
                         f"experiments: {', '.join(experiments())}")
    return found


def get(experiment: str, name: str) -> Metric:
    """The metric ``name`` of ``experiment``; the error lists that experiment's metrics."""
    found = CATALOG.get((experiment, name))
    if found is None:
        valid = ", ".join(m.name for m in metrics(experiment))
        raise ValueError(f"metric {name!r} is not declared for experiment {experiment!r} "
                         f"in the catalog (virtbench.catalog); declared: {valid}")
    return found


def validate(experiment: str, name: str, unit: str, conditions: Mapping[str, str]) -> Metric:
    """Check one row against the catalog: declared metric, same unit, declared conditions."""
    m = get(experiment, name)
    if unit != m.unit:
        raise ValueError(f"{experiment}/{name} is in {m.unit!r} in the catalog, not {unit!r}")
    for key, value in conditions.items():
        if key not in m.conditions:
            allowed = ", ".join(m.conditions) or "none"
            raise ValueError(f"condition {key!r} is not declared for {experiment}/{name}; "
                             f"its condition keys: {allowed}")
        valid = VALUES.get(key)
        check = VALUE_CHECKS.get(key, bool)
        if not isinstance(value, str) or (valid and value not in valid) or not check(value):
            expected = " | ".join(valid) if valid else CONDITIONS[key]
            raise ValueError(f"condition {key}={value!r} of {experiment}/{name} is not valid; "
                             f"expected a string: {expected}")
    return m


def primary(experiment: str) -> list[tuple[Metric, dict[str, str]]]:
    """The (metric, conditions) rows written when ``experiment`` measured nothing."""
    out = []
    for name, conditions in PRIMARY.get(experiment, ()):
        m = get(experiment, name)
        validate(experiment, name, m.unit, conditions)
        out.append((m, dict(conditions)))
    return out


def _check_primary() -> None:
    """Every experiment's primary rows are valid rows (an error names the declaration)."""
    for name in PRIMARY:
        primary(name)


_check_primary()

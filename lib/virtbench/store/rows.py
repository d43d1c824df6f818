"""Turn one cell's measurements into rows: checked against the metric catalog, stamped with
the cell's identity and what measured it (commit and code fingerprint)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from virtbench import catalog
from virtbench.store.provenance import measuring_code, measuring_commit
from virtbench.store.schema import Measurement, Row, encode_conditions, now


def make_rows(
    measurements: Iterable[Measurement],
    *,
    run_id: str,
    experiment: str,
    family: str,
    variant: str,
    workload: str,
    rep: int,
    warmup: bool = False,
    host: str = "",
    started: str = "",
) -> list[Row]:
    """Turn one cell's measurements into rows stamped with the cell's identity (``host``:
    the campaign host that measured it; ``started``: when the cell began, see :func:`now`).

    Each measurement is validated against the catalog (ValueError: an undeclared metric,
    condition key or value, or a unit other than the catalog's).
    """
    ended = now()
    ms = list(measurements)
    for m in ms:
        catalog.validate(experiment, m.metric, m.unit, m.conditions)
    commit, code = measuring_commit(), measuring_code()
    return [
        Row(
            run_id=run_id, experiment=experiment, family=family, variant=variant,
            workload=m.workload or workload, metric=m.metric,
            conditions=encode_conditions(m.conditions), unit=m.unit, rep=rep,
            value=m.value, reason=m.reason, warmup=warmup,
            tags=json.dumps(m.tags, sort_keys=True) if m.tags else "",
            description=m.description, timestamp=ended, host=host, started=started,
            commit=commit, code=code,
        )
        for m in ms
    ]

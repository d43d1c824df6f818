"""The claims-check table: one line per (published row, variant, workload, conditions), with
whether it is tallied and why not."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from virtbench import costs, dataset, published, rankings, stats
from virtbench.claims.claimmap import claim_map
from virtbench.claims.lines import check_variant
from virtbench.claims.lookups import forget, memo_of
from virtbench.claims.model import ClaimMap, ClaimMapFile
from virtbench.claims.outcomes import DECIDED, verdict_class
from virtbench.claims.pubrows import (
    PubColumns,
    claim_text,
    published_claim,
    published_rows,
    reference,
)
from virtbench.claims.requirements import unmet
from virtbench.dataset import Dataset
from virtbench.reasons import NOT_IN_DATASET

CHECK_COLUMNS = [
    "key", "claim_id", "source", "line", "reference", "table", "system", "family", "claim",
    "claimed", "claim_low", "claim_high", "tolerance_low", "tolerance_high", "unit",
    "conversion", "reading", "variant", "workload", "conditions", "metric", "method", "n",
    "median", "ci_low", "ci_high", "measured", "verdict", "comparable", "tallied", "reason",
    "code", "commit", "stands_in", "note",
]


def check(ds: Dataset, notebook: str | None = None, keys: Iterable[str] | None = None,
          source: str | None = None, pub: pd.DataFrame | None = None,
          policy: stats.Policy = stats.POLICY, claim_map_file: ClaimMapFile | None = None
          ) -> pd.DataFrame:
    """The claims-check table: one line per (published row, variant, workload, conditions).

    Select mappings by notebook, key prefixes or source. ``tallied`` says whether a line
    counts (a verdict, comparable, not the baseline against itself); the others are shown
    with their reason.
    """
    # plain strings: the rows of each mapping are taken from it, one by one
    pub = dataset.plain_strings(published.load() if pub is None else pub)
    cmf = claim_map_file or claim_map()
    forget(ds)  # look-ups are remembered within one check only
    key_list = list(keys) if keys is not None else None
    lines: list[dict] = []
    columns = PubColumns(pub)
    for cm in cmf.claims:
        if notebook is not None and notebook not in cm.notebooks:
            continue
        if key_list is not None and not any(cm.key.startswith(k) for k in key_list):
            continue
        if source is not None and cm.source != source:
            continue
        for _, row in published_rows(cm, pub, columns).iterrows():
            lines.extend(_check_row(ds, cmf, cm, row, pub, policy))
    frame = pd.DataFrame(lines).reindex(columns=CHECK_COLUMNS)
    for column in ("reason", "conditions", "workload", "family", "variant", "measured",
                   "reading", "code", "commit", "stands_in"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), "")
    frame["n"] = frame["n"].fillna(0).astype(int)
    frame["tallied"] = [_tallied(r) for r in frame.itertuples()]
    frame["reason"] = [_reason(r) for r in frame.itertuples()]
    return dataset.plain_strings(frame)  # plain strings: the groupbys that follow are faster


def _tallied(line: Any) -> bool:
    return (verdict_class(line.verdict) in DECIDED and line.comparable == "yes"
            and not line.reason)


def _reason(line: Any) -> str:
    """Why a line is not tallied ("" when it is)."""
    if line.tallied:
        return ""
    if line.reason:
        return line.reason
    if line.comparable != "yes" and verdict_class(line.verdict) in DECIDED:
        return f"not comparable: {line.comparable}"
    verdict = str(line.verdict)
    return verdict.split(": ", 1)[1] if ": " in verdict else verdict


def _check_row(ds: Dataset, cmf: ClaimMapFile, cm: ClaimMap, row: pd.Series,
               pub: pd.DataFrame, policy: stats.Policy) -> list[dict]:
    claim = published_claim(cm, row, pub)
    head = dict(key=cm.key, claim_id=f"{row['source']}:{int(row['line'])}", source=cm.source,
                line=int(row["line"]), reference=reference(row), table=row["table_or_figure"],
                system=row["system"], claim=claim_text(row), claimed=claim.text,
                unit=claim.unit, comparable=cm.comparable or "yes", note=cm.note,
                claim_low=claim.low, claim_high=claim.high)
    if cm.not_measurable or (row["system"] in cmf.not_here and not cm.variants):
        reason = cm.not_measurable or cmf.not_here[row["system"]]
        return [{**head, "variant": "", "verdict": f"not measurable here: {reason}", "n": 0}]
    if cm.kind == rankings.KIND:
        return [{**head, **line} for line in rankings.check_row(
            ds, row, pub, cm.spec["among"], cm.readings, cm.requires, cmf.systems, policy, unmet,
            memo_of(ds))]
    if cm.kind == costs.KIND:
        return [{**head, **line} for line in costs.check_row(
            ds, row, pub, cm.spec, cm.readings, cm.requires, cmf.systems, policy, unmet)]
    patterns = cm.variants or cmf.systems.get(row["system"], ())
    if not patterns:
        return [{**head, "variant": "", "n": 0,
                 "verdict": f"not measured: no variant stands for {row['system']!r}"}]
    memo = memo_of(ds)
    if ("variants", patterns) not in memo:
        memo[("variants", patterns)] = ds.variants(patterns)
    variants = memo[("variants", patterns)]
    if not variants:
        return [{**head, "variant": " | ".join(patterns), "n": 0,
                 "verdict": f"not measured: {NOT_IN_DATASET} (no variant matching "
                            f"{', '.join(patterns)})"}]
    out = []
    for variant in variants:
        for line in check_variant(ds, cm, claim, variant, policy):
            out.append({**head, "family": ds.family(variant), **line})
    return out

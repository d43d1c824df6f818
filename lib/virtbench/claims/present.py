"""The claims check for readers: the headline, the verdict policy as text, the display
table, the check as plain data, and the cells of a verdict matrix."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from virtbench import stats, tables
from virtbench.claims.outcomes import DECIDED, VERDICT_ORDER, verdict_class
from virtbench.claims.verdicts import claim_verdicts, tally


def headline(check_table: pd.DataFrame, lead: str = "") -> str:
    """One line computed from the data: the lead (itself computed by the caller) and the
    claim-level tally (per claim and family)."""
    verdicts = claim_verdicts(check_table)
    decided = verdicts[verdicts["tallied"]]
    counts = tally(check_table, verdicts)
    parts = [f"{counts[v]} {v}" for v in (*DECIDED, "mixed") if counts.get(v)]
    rest = [f"{counts[v]} {v}" for v in counts if v not in (*DECIDED, "mixed")]
    text = (f"{len(decided)} of {len(verdicts)} claim-family pairs with a verdict"
            + (f" ({', '.join(parts)})" if parts else "")
            + (f"; without a verdict: {', '.join(rest)}" if rest else ""))
    return f"{lead}{'; ' if lead else ''}claims: {text}"


def policy_markdown(policy: stats.Policy = stats.POLICY) -> str:
    """The verdict policy as a Markdown list, for every report's method section."""
    rules = [*policy.rules(), *MAP_RULES]
    return "**Verdict policy.**\n\n" + "\n".join(f"- {rule}" for rule in rules)


#: How the claim map decides what a line answers (printed with the verdict policy).
MAP_RULES = (
    "A claim states what it speaks of (hardware virtualization, a full-OS guest of a size, "
    "reads from the disk, a load profile, the engine's own memory): a line that does not "
    "meet it is context, shown with the reason, never tallied.",
    "\"Mixed\" means that variants of one family disagree; when the kernels or conditions "
    "of one variant disagree, that variant gives no verdict.",
    "A claim with several honest readings gets a verdict only when every reading with data "
    "agrees; otherwise \"depends on the reading\", not tallied.",
    "A verdict whose tallied rows come from more than one version of the measuring code "
    "reads \"several code versions\" and is not tallied.",
)


def display_table(check_table: pd.DataFrame) -> pd.DataFrame:
    """The reader-facing columns of a claims-check table, numbers kept as numbers (the
    tolerance bounds, the median and its CI in the line's ``unit``; ``measured`` says what
    a line without a median shows): :func:`virtbench.tables.to_html` joins and formats them."""
    cols = ["claim", "reference", "claimed", "conversion", "tolerance_low", "tolerance_high",
            "reading", "variant", "workload", "conditions", "n", "median", "ci_low", "ci_high",
            "measured", "unit", "verdict", "tallied", "comparable", "reason"]
    out = check_table.reindex(columns=cols)
    for column in ("claim", "reference", "claimed", "conversion", "reading", "variant",
                   "workload", "conditions", "measured", "unit", "verdict", "comparable",
                   "reason"):
        out[column] = out[column].astype(object).where(out[column].notna(), "")
    for column in ("tolerance_low", "tolerance_high", "median", "ci_low", "ci_high"):
        out[column] = out[column].astype(float)
    out["tallied"] = ["yes" if t is True else "no" for t in check_table.reindex(
        columns=["tallied"])["tallied"]]
    # why a line with a verdict is not tallied (context, not comparable, the baseline itself)
    out["reason"] = [r if t != "yes" and verdict_class(v) in DECIDED else "" for r, t, v in
                     zip(out["reason"], out["tallied"], out["verdict"], strict=True)]
    out = out.rename(columns={"reference": "source", "claimed": "claimed (as published)",
                              "reason": "why not tallied"})
    for column in ("reading", "workload", "conditions", "why not tallied"):
        if (out[column] == "").all():
            out = out.drop(columns=column)
    return out.reset_index(drop=True)


JSON_FIELDS = ["source", "claim_id", "family", "reading", "variant", "workload", "conditions",
               "metric", "unit", "n", "median", "ci_low", "ci_high", "claimed_low",
               "claimed_high", "verdict", "comparable", "tallied", "reason", "code",
               "stands_in"]


def to_records(check_table: pd.DataFrame) -> dict[str, Any]:
    """The check as plain data: its lines, the claim-level verdicts and the tally."""
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, np.generic):
            return clean(value.item())
        return value

    frame = check_table.rename(columns={"claim_low": "claimed_low",
                                        "claim_high": "claimed_high"})
    lines = [{k: clean(v) for k, v in rec.items()}
             for rec in frame.reindex(columns=JSON_FIELDS).to_dict("records")]
    claims_ = [{k: clean(v) for k, v in rec.items()}
               for rec in claim_verdicts(check_table).to_dict("records")]
    return {"lines": lines, "claims": claims_, "tally": tally(check_table)}



def aspect_verdicts(check_table: pd.DataFrame, aspects: dict[str, Any],
                    systems: Sequence[str]) -> pd.DataFrame:
    """One cell per (aspect, published system) for a verdict matrix: the claim-level verdicts
    of its lines combined (agreeing, else "mixed"; none tallied: the most informative class),
    the claim as published and the range of measured medians.

    ``aspects`` maps a name to a function selecting the check lines of that aspect.
    """
    cells = []
    for aspect, select in aspects.items():
        for system in systems:
            lines = check_table[select(check_table) & (check_table["system"] == system)]
            if lines.empty:
                continue
            verdicts = claim_verdicts(lines)
            decided = list(dict.fromkeys(verdicts.loc[verdicts["tallied"], "verdict"]))
            if decided:
                verdict = decided[0] if len(decided) == 1 else "mixed"
            else:
                verdict = min(verdicts["verdict"], key=lambda c: VERDICT_ORDER.index(c)
                              if c in VERDICT_ORDER else len(VERDICT_ORDER))
            medians = lines.loc[lines["n"] > 0, ["median", "unit"]].dropna()
            if len(medians):
                lo, hi = medians["median"].min(), medians["median"].max()
                unit = medians["unit"].iloc[0]
                measured = tables.between_text(lo, hi, unit)
            else:
                measured = "nothing measured"
            cells.append(dict(aspect=aspect, system=system, verdict=verdict,
                              claimed=f"claimed {lines['claimed'].iloc[0]}",
                              measured=f"here {measured}"))
    return pd.DataFrame(cells, columns=["aspect", "system", "verdict", "claimed", "measured"])

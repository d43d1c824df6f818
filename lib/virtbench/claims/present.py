"""The claims check for readers: the headline, the verdict policy as text, the display
table, the check as plain data, the cells of a verdict matrix (aspects by family) and of a
capability matrix, and the check lines selected by what their claims are about."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from virtbench import stats, tables
from virtbench.claims.claimmap import claim_map, keys_for
from virtbench.claims.model import ClaimMapFile
from virtbench.claims.outcomes import DECIDED, VERDICT_ORDER, verdict_class
from virtbench.claims.verdicts import claim_verdicts, tally

#: selects the lines of a claims-check table that belong to one row of a matrix
Selector = Callable[[pd.DataFrame], pd.Series]


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


def lines_for(check_table: pd.DataFrame, *, notebook: str | None = None,
              aspect: str | Sequence[str] | None = None, source: str | None = None,
              measurable: bool | None = None, cmf: ClaimMapFile | None = None
              ) -> pd.DataFrame:
    """The lines of ``check_table`` whose claims match the filters of
    :func:`virtbench.claims.claimmap.keys_for` (notebook, aspect, source, measurable)."""
    keys = keys_for(notebook=notebook, aspect=aspect, source=source, measurable=measurable,
                    cmf=cmf)
    return check_table[check_table["key"].isin(keys)]


def aspect_selectors(aspects: Sequence[str], cmf: ClaimMapFile | None = None
                     ) -> dict[str, Selector]:
    """For each aspect of the claim map, in the order given, a function selecting the lines
    of a claims-check table whose claims are about it (the rows of :func:`aspect_verdicts`
    and :func:`matrix_table`); ValueError for an aspect no claim has."""
    def selector(keys: tuple[str, ...]) -> Selector:
        return lambda table: table["key"].isin(keys)

    return {aspect: selector(keys_for(aspect=aspect, cmf=cmf)) for aspect in aspects}


def matrix_cell_text(lines: pd.DataFrame, cmf: ClaimMapFile | None = None) -> str:
    """The full text of one verdict-matrix cell: per published claim what was claimed, then
    per line the variant, the metric where the claim's mappings measure different metrics,
    the estimate (or what was measured) and the verdict. A line measured on a stand-in
    (column ``nearest``, :mod:`virtbench.nearest`) says so and keeps no verdict."""
    if lines.empty:
        return "no claim in the seed"
    text = []
    for _, group in lines.groupby("claim", sort=False):
        text.append(f"claimed: {group['claimed'].iloc[0]}")
        named = _measure_different_metrics(group["key"], cmf or claim_map())
        for _, r in group.iterrows():
            who = f"{r['variant']}: " if isinstance(r["variant"], str) and r["variant"] else ""
            what = f"{r['metric']}: " if named else ""
            got = (r["measured"] if str(r["measured"]).endswith("(exact)")
                   or not math.isfinite(r["median"]) else tables.row_estimate(r))
            if isinstance(r.get("nearest"), str) and r["nearest"]:
                text.append(f"  {r['nearest']} (context, not tallied): {who}"
                            f"{got or 'not measured: ' + r['reason']}")
                continue
            got = f"{got} -> " if got else ""
            text.append(f"  {who}{what}{got}{r['verdict']}")
    return "\n".join(text)


def _measure_different_metrics(keys: pd.Series, cmf: ClaimMapFile) -> bool:
    """Whether the mappings behind these keys pick different metrics (then each line names
    its metric: the seed's one I/O overhead figure is answered by reads and writes)."""
    wanted = set(keys)
    picked = {frozenset(p.metric for p in cm.picks) for cm in cmf.claims if cm.key in wanted}
    return len(picked) > 1


def matrix_table(check_table: pd.DataFrame, aspects: Mapping[str, Selector],
                 systems: Sequence[str], cmf: ClaimMapFile | None = None) -> pd.DataFrame:
    """The verdict matrix in full text: a row per aspect (column ``aspect``), a column per
    published system, each cell :func:`matrix_cell_text` of its lines."""
    cmf = cmf or claim_map()
    cells = {system: [matrix_cell_text(check_table[select(check_table)
                                                   & (check_table["system"] == system)], cmf)
                      for select in aspects.values()] for system in systems}
    return pd.DataFrame(cells, index=list(aspects)).reset_index(names="aspect")


def capability_cell_text(lines: pd.DataFrame) -> str:
    """One cell of a capability matrix: the published rating, then per variant what was
    collected and the verdict (a line without a variant: its verdict alone)."""
    text = [f"seed: {lines['claimed'].iloc[0]}"]
    for _, r in lines.iterrows():
        if isinstance(r["variant"], str) and r["variant"]:
            evidence = r["measured"] if isinstance(r["measured"], str) and r["measured"] else ""
            text.append(f"{r['variant']}: {evidence + ' -> ' if evidence else ''}"
                        f"{r['verdict']}")
        else:
            text.append(str(r["verdict"]))
    return "\n".join(text)


def capability_matrix(check_table: pd.DataFrame) -> pd.DataFrame:
    """A row per capability (the claim without its system), a column per published system,
    each cell :func:`capability_cell_text`."""
    matrix = (check_table.groupby(["claim", "system"], sort=False)
              .apply(capability_cell_text, include_groups=False).rename("cell").reset_index())
    matrix["capability"] = [c.split(" ", 1)[1] if " " in c else c for c in matrix["claim"]]
    return matrix.pivot(index="capability", columns="system", values="cell").reset_index()


def evidence_found(line: Mapping[str, Any]) -> bool:
    """Whether a capability line of the check saw its evidence: samples whose median is
    above 0, which the line's ``measured`` states as "<metric> collected (n=...)"."""
    return (int(line["n"]) > 0 and isinstance(line["metric"], str)
            and str(line["measured"]).startswith(f"{line['metric']} collected"))


def evidence_shares(check_table: pd.DataFrame) -> pd.DataFrame:
    """Per capability claim and published system: how many of the family's variants have
    evidence (any of their lines, :func:`evidence_found`) and that share with its exact
    (Clopper-Pearson) 95% interval, in %."""
    from scipy.stats import binomtest

    lines = []
    measured = check_table[check_table["variant"].fillna("") != ""]
    for (claim, system), group in measured.groupby(["claim", "system"], sort=False):
        collected: dict[str, bool] = {}
        for _, line in group.iterrows():
            collected[line["variant"]] = collected.get(line["variant"], False) \
                or evidence_found(line)
        k, n = int(sum(collected.values())), len(collected)
        ci = binomtest(k, n).proportion_ci(method="exact") if n else None
        lines.append(dict(capability=claim, system=system, variants=n, with_evidence=k,
                          **{"share (%)": 100 * k / n if n else math.nan,
                             "low (%)": 100 * ci.low if ci else math.nan,
                             "high (%)": 100 * ci.high if ci else math.nan}))
    return pd.DataFrame(lines)

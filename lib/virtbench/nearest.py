"""The nearest class measured here, beside the claims of a system this host cannot run.

Edera runs containers on its own hypervisor and is not measurable here; the question its
column stands for (a kernel boundary per container) has a runnable answer: the sandboxed
container class (gVisor's ``docker/runsc``). :func:`context_lines` measures an unmeasurable
system's claims with that class's variants, the claim's own picks and requirements, as
context: every line keeps the system's verdict ("not measurable here"), is never tallied,
and names the stand-in ("gVisor here, not Edera"). :func:`matrix_cells` writes those
measurements into that system's cells of a verdict matrix.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from virtbench import claims, platforms, stats, tables
from virtbench.dataset import Dataset
from virtbench.platforms.classes import platform_class

#: published system -> the platform class measured here in its place (as context only)
NEAREST: dict[str, str] = {"Edera": "sandboxed-container"}


def class_variants(klass: str) -> list[str]:
    """The registered variants of a platform class, in registry order."""
    return [v for v in platforms.VARIANTS if platform_class(v) == klass]


def stand_in_name(variants: list[str], cmf: claims.ClaimMapFile) -> str:
    """What the claim map calls these variants: the shortest published system name that
    maps to exactly one of them ("gVisor" for docker/runsc), else the variants' names."""
    names = [s for s, pats in cmf.systems.items() if len(pats) == 1 and pats[0] in variants]
    return min(names, key=len) if names else ", ".join(variants)


def label(system: str, cmf: claims.ClaimMapFile | None = None) -> str:
    """The words a report puts on the stand-in: "gVisor here, not Edera"."""
    cmf = cmf or claims.claim_map()
    return f"{stand_in_name(class_variants(NEAREST[system]), cmf)} here, not {system}"


def context_lines(ds: Dataset, check_table: pd.DataFrame, system: str = "Edera", *,
                  pub: pd.DataFrame | None = None, policy: stats.Policy = stats.POLICY,
                  cmf: claims.ClaimMapFile | None = None) -> pd.DataFrame:
    """Claims-check lines for ``system``'s claims in ``check_table``, measured on the variants
    of its nearest class (:data:`NEAREST`) with each claim's own picks: the system's verdict
    kept, ``tallied`` False, the reason "context: ..." naming the stand-in. A claim without
    picks (a rating) or of another kind (a ranking or a cost: they compare families, which a
    stand-in cannot join) gets no line; a class absent from the run gets one line per claim with
    the reason from the data."""
    if system not in NEAREST:
        raise ValueError(f"no nearest class for {system!r}; known: {', '.join(NEAREST)}")
    cmf = cmf or claims.claim_map()
    said = label(system, cmf)
    ours = check_table[check_table["system"] == system]
    keys = set(ours["key"])
    mapped = tuple(dataclasses.replace(cm, systems=(system,),
                                       variants=tuple(class_variants(NEAREST[system])),
                                       comparable=f"context only: {said}")
                   for cm in cmf.claims if cm.key in keys and cm.picks
                   and not cm.not_measurable and not cm.kind)
    if not mapped:
        return check_table.iloc[0:0].assign(nearest="")
    found = claims.check(ds, pub=pub, policy=policy,
                         claim_map_file=dataclasses.replace(cmf, claims=mapped))
    verdicts = dict(zip(ours["claim_id"], ours["verdict"], strict=False))
    measured = found["n"] > 0
    found["reason"] = [f"{claims.CONTEXT}{said}" if m else _why(v)
                       for m, v in zip(measured, found["verdict"], strict=True)]
    found["verdict"] = [verdicts.get(c, f"not measurable here: {system}")
                        for c in found["claim_id"]]
    found["tallied"] = False
    found["comparable"] = f"context only: {said}"
    return found.assign(nearest=said)


def _why(verdict: Any) -> str:
    """The reason in a "not measured: REASON" verdict of a stand-in line."""
    text = str(verdict)
    return text.split(": ", 1)[1] if ": " in text else text


def matrix_cells(cells: pd.DataFrame, context: pd.DataFrame, aspects: dict[str, Any],
                 system: str = "Edera", column: str = "") -> pd.DataFrame:
    """``cells`` (:func:`virtbench.claims.aspect_verdicts`) with ``system``'s cells saying
    what its stand-in measured here ("gVisor here, not Edera" and the range of medians, or
    "not measured"), the verdict left as it is; ``column`` renames that system's column."""
    out = cells.copy()
    said = str(context["nearest"].iloc[0]) if len(context) else ""
    for aspect, select in aspects.items():
        where = (out["aspect"] == aspect) & (out["system"] == system)
        if not where.any() or context.empty:
            continue
        lines = context[select(context)]
        medians = lines.loc[lines["n"] > 0, ["median", "unit"]].dropna()
        if len(medians):
            measured = tables.between_text(medians["median"].min(), medians["median"].max(),
                                           str(medians["unit"].iloc[0]))
        else:
            measured = "not measured" if len(lines) else "no measurement applies"
        out.loc[where, "measured"] = f"{said}:\n{measured}"
    if column:
        out.loc[out["system"] == system, "system"] = column
    return out

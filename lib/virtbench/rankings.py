"""Ranking claims: a published order of technologies against the order measured here.

A star rating ("I/O performance: Docker 5 stars, VM 3") or a "best at" row ("fastest start:
Wasm") claims an order of platform families on one aspect. Each family is represented by
the pooled repetitions of its variants whose rows meet the claim's requirements (a VM claim
that needs hardware virtualization is not answered by TCG rows) and that have enough
repetitions of their own for a verdict; its median and order-statistic CI place it. Two
families whose CIs overlap are tied, never inverted.

The verdict of the claim row of one system compares each pair it takes part in:
"same order" (every claimed pair measured the same way), "order differs: X before Y here"
(a measured pair against the claim, or a claimed tie measured apart), or "not
distinguishable" (no pair against the claim, but a claimed order whose CIs overlap).
Nothing here knows the claim map's format: :mod:`virtbench.claims` hands each row over.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from virtbench import catalog, stats
from virtbench.conditions import parse_conditions
from virtbench.dataset import Dataset
from virtbench.patterns import selected

KIND = "ranking"
#: A "best at" published row: its system ranks before every other system of the ranking.
BEST = "best"
SAME = "same order"
DIFFERS = "order differs"
TIED = "not distinguishable"
#: The verdict families this module adds (claims.DECIDED holds the first two).
VERDICTS = (SAME, DIFFERS, TIED)


@dataclass(frozen=True)
class Family:
    """One system of a ranking as measured: its pooled estimate, or why there is none."""

    system: str
    family: str = ""
    variants: tuple[str, ...] = ()
    estimate: stats.Estimate | None = None
    unit: str = ""
    reason: str = ""  # "not measured: ..." | "not comparable: ..." | "inconclusive (...)"
    codes: frozenset[str] = field(default_factory=frozenset)

    @property
    def ranked(self) -> bool:
        return self.estimate is not None and not self.reason


# --- pure logic ---------------------------------------------------------------------------------


def measured_relation(a: stats.Estimate, b: stats.Estimate, better: str) -> int:
    """+1 when ``a`` ranks before ``b`` (their CIs do not overlap and ``a`` is better), -1
    when ``b`` does, 0 for a tie (overlapping CIs)."""
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', got {better!r}")
    if not (a.has_ci and b.has_ci):
        return 0
    if a.high < b.low:
        return 1 if better == "lower" else -1
    if b.high < a.low:
        return -1 if better == "lower" else 1
    return 0


def claimed_relations(system: str, claimed: Mapping[str, float | str],
                      higher_first: bool = True) -> dict[str, int]:
    """The claimed relation of ``system`` to every other system: +1 before, -1 after, 0 the
    same rank. ``claimed`` maps a system to its rating (stars), to :data:`BEST` or to None
    (not rated); a "best" system is before every other, and nothing is claimed between two
    systems neither of which is best when one is not rated."""
    if system not in claimed:
        raise ValueError(f"{system!r} has no claimed rank; ranked: {', '.join(claimed)}")
    mine = claimed[system]
    out: dict[str, int] = {}
    for other, theirs in claimed.items():
        if other == system:
            continue
        if mine == BEST or theirs == BEST:
            if mine == BEST and theirs == BEST:
                out[other] = 0
            else:
                out[other] = 1 if mine == BEST else -1
            continue
        if mine is None or theirs is None:
            continue
        sign = int(np.sign(float(mine) - float(theirs)))
        out[other] = sign if higher_first else -sign
    return out


def pair_verdict(system: str, claimed: Mapping[str, int],
                 measured: Mapping[str, int]) -> str:
    """The verdict of one system's claim row from its claimed and measured relations to the
    systems measured (``measured`` holds only ranked partners)."""
    differ, tied, same = [], [], []
    for other, want in claimed.items():
        if other not in measured:
            continue
        got = measured[other]
        first, second = (system, other) if got > 0 else (other, system)
        if got == want:
            same.append(_pair_text(system, other, want))
        elif got == 0:
            tied.append(f"{system} vs {other} (claimed {_pair_text(system, other, want)})")
        else:
            said = _pair_text(system, other, want) if want else f"{system} and {other} equal"
            differ.append(f"{first} before {second} here (claimed {said})")
    if differ:
        return f"{DIFFERS}: " + "; ".join(differ)
    if tied:
        return f"{TIED}: " + "; ".join(tied) + " overlap" + (
            f"; same order: {', '.join(same)}" if same else "")
    return f"{SAME} ({', '.join(same)})"


def _pair_text(a: str, b: str, relation: int) -> str:
    if relation > 0:
        return f"{a} before {b}"
    if relation < 0:
        return f"{b} before {a}"
    return f"{a} and {b} tied"


def measured_order(families: Sequence[Family], better: str) -> str:
    """The ranked families in measured order, best first: ">" between neighbours whose CIs
    are apart, "≈" where they overlap ("Docker > Wasm ≈ VM")."""
    ranked = [f for f in families if f.ranked]
    if not ranked:
        return ""
    ranked.sort(key=lambda f: f.estimate.value, reverse=better == "higher")  # type: ignore
    text = ranked[0].system
    for prev, cur in zip(ranked, ranked[1:], strict=False):
        apart = measured_relation(prev.estimate, cur.estimate, better) != 0  # type: ignore
        text += (" > " if apart else " \u2248 ") + cur.system
    return text


# --- measuring a family ------------------------------------------------------------------------


def family_estimate(ds: Dataset, system: str, patterns: Sequence[str], picks: Sequence[Any],
                    req: Mapping[str, Any], policy: stats.Policy,
                    unmet: Callable[..., str]) -> Family:
    """Pool the repetitions of the system's variants that meet ``req`` (the first of the
    ``picks`` with such rows answers for each variant) into one median with its CI.
    ``unmet(req, variant, experiment, metric, conditions)`` says why a row does not meet the
    requirements ("" when it does)."""
    variants = ds.variants(patterns) if patterns else []
    if not variants:
        return Family(system, reason="not measured: no variant of "
                      f"{system} ({', '.join(patterns) or 'none'}) in this dataset")
    values: list[np.ndarray] = []
    bounds: list[np.ndarray] = []  # "upper" | "lower" | "" (exact) per value
    used: list[str] = []
    unit, codes = "", set()
    context: list[str] = []
    few: list[tuple[int, str]] = []  # (n, variant) with fewer repetitions than a verdict needs
    for variant in variants:
        for pick in picks:
            if pick.variants and not selected(pick.variants, variant, ds.family(variant)):
                continue
            rows = ds.measured(variant, pick.metric, pick.experiment, pick.workload,
                               _query(pick, req) or None, censored=True, copy=False)
            if rows.empty:
                continue
            found = dict.fromkeys(rows["conditions"])
            keep = []
            for cond in found:
                why = unmet(req, variant, pick.experiment, pick.metric, _cond_dict(cond))
                if why:
                    context.append(f"{variant}: {why}")
                else:
                    keep.append(cond)
            if not keep:
                continue
            if len(keep) < len(found):
                rows = rows[rows["conditions"].isin(keep)]
            exact = all(catalog.get(pick.experiment, m).exact for m in pick.metric.split("+"))
            if policy.short_of(len(rows), exact):
                # a variant's own repetitions must suffice: pooling variants adds no
                # independent samples of any one of them
                few.append((len(rows), variant))
                break
            values.append(rows["value"].to_numpy(float))
            bounds.append(rows["bound"].to_numpy(object))
            used.append(variant)
            unit = unit or str(rows["unit"].iloc[0])
            codes |= {c for c in rows["code"] if c}
            break
    family = ds.family(used[0] if used else variants[0])
    if not used and few:
        most = max(n for n, _ in few)
        return Family(system, family, tuple(variants),
                      reason=f"inconclusive (n = {most} < {policy.min_n}: "
                             f"{', '.join(f'{v} n = {n}' for n, v in few)})"[:300])
    if not used:
        if context:
            return Family(system, family, tuple(variants),
                          reason="not comparable: " + "; ".join(dict.fromkeys(context))[:300])
        stored = next((r for v in variants for p in picks if (r := _stored_reason(ds, v, p))), "")
        return Family(system, family, tuple(variants), reason="not measured: " + (
            stored or "no rows of " + " | ".join(p.metric for p in picks)
            + f" for {', '.join(variants)}")[:300])
    est = pooled_estimate(np.concatenate(values), np.concatenate(bounds), policy)
    short = policy.short_of(est.n)
    return Family(system, family, tuple(used), est, unit, short, frozenset(codes))


def pooled_estimate(values: np.ndarray, bounds: np.ndarray,
                    policy: stats.Policy) -> stats.Estimate:
    """Median and CI of a family's pooled repetitions; values that are only bounds (a density
    slope below the noise) stay in as bounds (:func:`stats.censored_median_ci`) when they are
    all of one kind, else they are left out."""
    keep = np.isfinite(values)
    values, bounds = values[keep], bounds[keep]
    kinds = {str(b) for b in bounds if b}
    if len(kinds) == 1:
        return stats.censored_median_ci(values, bounds != "", policy.confidence, kinds.pop())
    exact = bounds == ""
    return stats.median_ci(values[exact] if kinds else values, policy.confidence)


# --- the check of one published row ------------------------------------------------------------


def claimed_ranks(row: pd.Series, pub: pd.DataFrame, among: Sequence[str]) -> dict[str, Any]:
    """System -> rating (or :data:`BEST`) of the published rows ranked with ``row``: the same
    source, table, metric and stat, systems among ``among``; when a row says "best", the
    other systems of ``among`` map to None (ranked after it)."""
    same = pub[(pub["source"] == row["source"])
               & (pub["table_or_figure"] == row["table_or_figure"])
               & (pub["metric"] == row["metric"]) & (pub["stat"] == row["stat"])
               & pub["system"].isin(list(among))]
    out: dict[str, Any] = {}
    for r in same.itertuples():
        if r.value_text:
            if str(r.value_text).strip().casefold() == BEST:
                out[r.system] = BEST
        elif not math.isnan(r.value):
            out[r.system] = float(r.value)
    if row["system"] not in out:
        out[row["system"]] = BEST if str(row["value_text"]).strip().casefold() == BEST \
            else float(row["value"])
    return {s: out.get(s) for s in among if s in out or BEST in out.values()} | out


def check_row(ds: Dataset, row: pd.Series, pub: pd.DataFrame, among: Sequence[str],
              readings: Sequence[Any], req: Mapping[str, Any], systems: Mapping[str, Any],
              policy: stats.Policy, unmet: Callable[..., str],
              memo: dict | None = None) -> list[dict]:
    """The check lines of one published ranking row: one per reading (a reading is a named
    set of picks, as in the claim map), for the row's system. ``memo`` keeps the measured
    families for the other rows of the same ranking (one check of one dataset)."""
    system = str(row["system"])
    if system not in among:
        return [dict(variant="", n=0, verdict=f"not measured: {system} is not one of the "
                     f"systems this ranking measures ({', '.join(among)})")]
    ranks = claimed_ranks(row, pub, among)
    higher_first = row["direction"] != "lower_is_better"
    claimed = claimed_relations(system, ranks, higher_first)
    out = []
    for reading in readings:
        picks = reading.picks
        better = catalog.get(picks[0].experiment, picks[0].metric.split("+")[0]).better
        need = {**req, **reading.requires}
        key = ("ranking families", tuple(among), id(reading), repr(sorted(need.items())),
               repr(policy))
        memo = {} if memo is None else memo
        if key not in memo:
            memo[key] = {s: family_estimate(ds, s, systems.get(s, ()), picks, need, policy,
                                            unmet) for s in among}
        fams = memo[key]
        mine = fams[system]
        order = measured_order(list(fams.values()), better) if better else ""
        line = dict(reading=reading.name, variant=" | ".join(mine.variants),
                    family=mine.family, metric=" | ".join(dict.fromkeys(p.metric for p in picks)),
                    unit=mine.unit, n=mine.estimate.n if mine.estimate else 0,
                    conditions=_conditions(picks[0]), code=", ".join(sorted(mine.codes)),
                    method=f"{system}: the pooled repetitions of {', '.join(mine.variants)}; "
                           f"{better} is better; a pair whose 95% CIs overlap is a tie")
        if mine.estimate is not None:
            line.update(median=mine.estimate.value, ci_low=mine.estimate.low,
                        ci_high=mine.estimate.high)
        others = {s: f for s, f in fams.items() if s != system}
        unranked = "; ".join(f"{s}: {f.reason[:120]}" for s, f in others.items()
                             if not f.ranked)
        line["measured"] = f"{mine.estimate} {mine.unit}".strip() if mine.estimate else ""
        line["method"] += (f"; measured order: {order}" if order else "") + (
            f"; not ranked: {unranked}" if unranked else "")
        if not better:
            line["verdict"] = f"not comparable: {picks[0].metric} has no better direction"
        elif not mine.ranked:
            line["verdict"] = mine.reason
        else:
            measured = {s: measured_relation(mine.estimate, f.estimate, better)  # type: ignore
                        for s, f in others.items() if f.ranked and s in claimed}
            line["verdict"] = (pair_verdict(system, claimed, measured) if measured else
                               f"inconclusive (no other system of the ranking measured: "
                               f"{unranked})")
        out.append(line)
    return out


def _query(pick: Any, req: Mapping[str, Any]) -> dict[str, Any]:
    """The pick's conditions, and every value of each enumerated condition the requirements
    name (so opt-in rows such as a full-OS guest are read, and judged by the requirements)."""
    query = dict(pick.conditions)
    for key in req:
        if key in catalog.VALUES and key not in query and all(
                key in catalog.get(pick.experiment, m).conditions
                for m in pick.metric.split("+")):
            query[key] = list(catalog.VALUES[key])
    return query


def _stored_reason(ds: Dataset, variant: str, pick: Any) -> str:
    """The reason stored with the variant's rows of the pick under the pick's conditions."""
    rows = ds.rows(variant, pick.metric.split("+")[0], pick.experiment)
    want = {k: v for k, v in pick.conditions.items() if isinstance(v, str)}
    for cond, reason in zip(rows["conditions"], rows["reason"], strict=True):
        have = parse_conditions(cond)
        if isinstance(reason, str) and reason and all(have.get(k) == v for k, v in want.items()):
            return reason
    return ""


def _cond_dict(text: str) -> dict[str, str]:
    """The conditions of a :meth:`Dataset.measured` group ("k=v, k=v") as a dict."""
    pairs = (part.partition("=") for part in text.split(", ") if part)
    return {k: v for k, _, v in pairs}


def _conditions(pick: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(pick.conditions.items()))


def validate(spec: Mapping[str, Any], systems: Mapping[str, Any]) -> str:
    """Why a ranking claim's ``spec`` is not usable ("" when it is)."""
    among = spec.get("among")
    if not isinstance(among, list) or len(among) < 2:
        return "a ranking needs spec.among, the list of at least two systems it ranks"
    unknown = [s for s in among if s not in systems]
    if unknown:
        return f"spec.among: system {unknown[0]!r} is not in [systems]"
    extra = set(spec) - {"among"}
    if extra:
        return f"unknown spec field {sorted(extra)[0]!r} of a ranking; valid: among"
    return ""

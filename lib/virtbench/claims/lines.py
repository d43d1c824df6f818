"""The lines of one claim for one variant: each measured item judged against the claim under
every reading of its unit, lines that do not meet the claim's requirements kept as context,
and the reason when nothing answers."""

from __future__ import annotations

import numpy as np

from virtbench import stats
from virtbench.claims.measure import measure_pick
from virtbench.claims.model import ClaimMap, Pick, Reading
from virtbench.claims.outcomes import CONTEXT
from virtbench.claims.pubrows import PublishedClaim
from virtbench.claims.requirements import query_for, unmet
from virtbench.claims.units import unit_readings
from virtbench.dataset import Dataset
from virtbench.patterns import selected


def _capability_verdict(claim: str, observed: bool) -> str:
    if claim == "full":
        return "consistent" if observed else "not confirmed here"
    if claim == "limited":
        return "more than claimed (collected here)" if observed else "consistent"
    return "inconclusive (no capability class)"


def _judge(claim: PublishedClaim, item: dict, policy: stats.Policy) -> dict:
    """The verdict of one measured item against the claim, under every reading of its unit."""
    readings = unit_readings(claim, item["unit"])
    if "estimate" in item:
        est = item["estimate"]
        shown = f"{est} {item['unit']}"

        def judge(low: float, high: float, prec: float) -> stats.Verdict:
            return stats.judge(est, low, high, precision=prec, policy=policy)
    else:
        finite = np.isfinite(item["values"])
        values = item["values"][finite]
        censored = item.get("censored", np.zeros(finite.size, bool))[finite]
        bound = item.get("bound", "") or "upper"
        if values.size == 0:
            return dict(n=0, measured="", verdict="not measured: no finite value")
        same = bool(item["exact"] and np.all(values == values[0]) and not censored.any())
        est = (stats.Estimate(float(np.median(values)), float(values.min()),
                              float(values.max()), int(values.size))
               if same else stats.censored_median_ci(values, censored, policy.confidence,
                                                     bound))
        shown = f"{est} {item['unit']}"
        if same:
            readable = stats.human(est.value, item["unit"])
            plain = f"{stats._fmt(est.value, 12)} {item['unit']}"
            shown = (f"{readable} = {plain} (exact)" if readable.replace(",", "") != plain
                     else f"{plain} (exact)")

        def judge(low: float, high: float, prec: float) -> stats.Verdict:
            return stats.check_claim(values, low, high, precision=prec, exact=item["exact"],
                                     policy=policy, censored=censored, bound=bound)
    line = dict(n=int(est.n), median=est.value, ci_low=est.low, ci_high=est.high,
                measured=shown)
    if isinstance(readings, str):
        return {**line, "verdict": f"not comparable: {readings}"}
    verdicts = [judge(low, high, prec) for low, high, prec, _ in readings]
    first = verdicts[0]
    line.update(claim_low=readings[0][0], claim_high=readings[0][1],
                tolerance_low=first.tolerance_low, tolerance_high=first.tolerance_high,
                conversion=readings[0][3])
    classes = {v.verdict for v in verdicts}
    if len(classes) == 1:
        said = " / ".join(r[3] for r in readings if r[3])
        line.update(verdict=first.verdict, conversion=said if len(readings) > 1 else
                    readings[0][3])
        return line
    detail = "; ".join(f"{r[3]}: {v.verdict}" for r, v in zip(readings, verdicts, strict=True))
    return {**line, "verdict": f"not comparable: the unit has several readings ({detail})"}


def _item_line(pick: Pick, item: dict, variant: str, claim: PublishedClaim,
               policy: stats.Policy) -> dict:
    line = dict(variant=variant, workload=item["workload"], conditions=item["conditions"],
                metric=item["metric"], method=item["method"], unit=item["unit"],
                code=", ".join(sorted(item["codes"])),
                commit=", ".join(sorted(item["commits"])))
    if pick.transform == "capability":
        values = item["values"][np.isfinite(item["values"])]
        observed = bool(values.size and np.median(values) > 0)
        evidence = f"{pick.metric} collected (n={values.size})" if observed else \
            f"{pick.metric} not collected"
        line.update(n=int(values.size), measured=evidence, unit="", exact=True,
                    verdict=_capability_verdict(claim.category, observed))
    else:
        line.update(_judge(claim, item, policy))
    if item["self_compare"]:
        line["reason"] = "the baseline compared with itself"
    return line


def _check_reading(ds: Dataset, cm: ClaimMap, reading: Reading, claim: PublishedClaim,
                   variant: str, policy: stats.Policy) -> list[dict]:
    """The lines of one reading for one variant: the first pick whose rows meet the
    requirements answers; the rows of an earlier pick that do not are shown as context."""
    req = {**cm.requires, **reading.requires}
    picks = [p for p in reading.picks if not p.variants
             or selected(p.variants, variant, ds.family(variant))]
    first_reason = ""
    context: list[dict] = []
    for pick in picks:
        got = measure_pick(ds, cm, pick, variant, query_for(pick, req))
        if got is None:
            continue
        if isinstance(got, str):
            first_reason = first_reason or got
            continue
        lines, meets = [], False
        for item in got:
            line = _item_line(pick, item, variant, claim, policy)
            why = unmet(req, variant, pick.experiment, pick.metric, item["cond"])
            if why:
                line["reason"] = CONTEXT + why
            else:
                meets = True
            lines.append(line)
        if meets:
            return context + lines
        context = context or lines
    if context:
        return context
    excluded = next((r for p in picks if (r := ds.not_comparable(
        variant, p.metric, p.experiment, p.conditions))), "")
    if excluded and not first_reason:
        return [dict(variant=variant, metric=" | ".join(p.metric for p in picks), n=0,
                     measured="", comparable=f"no: {excluded}",
                     verdict=f"not comparable: {excluded}")]
    reason = first_reason or next(
        (r for p in picks if (r := ds.row_reason(variant, p.metric, p.experiment))), "")
    if not reason:
        reason = (ds.absent(variant, [_pick_label(p) for p in picks],
                            [p.experiment for p in picks if p.experiment])
                  if picks else "no measurement applies to this variant")
    return [dict(variant=variant, metric=" | ".join(p.metric for p in picks), n=0,
                 measured="", verdict=f"not measured: {reason}")]


def check_variant(ds: Dataset, cm: ClaimMap, claim: PublishedClaim, variant: str,
                   policy: stats.Policy) -> list[dict]:
    readings = [r for r in cm.readings if not r.variants
                or selected(r.variants, variant, ds.family(variant))]
    if not readings:
        return [dict(variant=variant, n=0, measured="",
                     verdict="not measured: no reading of this claim applies to this variant")]
    lines = []
    stands_in = ""
    if cm.stands_in:
        engine = (ds.host.get("accelerators") or {}).get(variant) or variant
        stands_in = f"{engine} stands in for {cm.stands_in}"
    for reading in readings:
        for line in _check_reading(ds, cm, reading, claim, variant, policy):
            lines.append({**line, "reading": reading.name, "stands_in": stands_in})
    return lines


def _pick_label(pick: Pick) -> str:
    """The pick's metric with the conditions it asks for: "startup_process (code_cache=on)"."""
    if not pick.conditions:
        return pick.metric
    said = ", ".join(f"{k}={v if isinstance(v, str) else '|'.join(v)}"
                     for k, v in sorted(pick.conditions.items()))
    return f"{pick.metric} ({said})"

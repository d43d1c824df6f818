"""The claims check: published rows against the measurements that answer them.

The mapping is data: ``papers/claims.toml`` (:func:`load_map` reads and validates it against
the published CSVs and the metric catalog). :func:`check` turns it into one line per
(published row, variant, workload, conditions): the claim in the measured unit, the
measured median with its CI, and a verdict under the verdict policy
(:class:`virtbench.stats.Policy`). :func:`claim_verdicts` gives one verdict per published
claim and platform family; :func:`tally` and :func:`headline` count those. Nothing is
guessed: a missing measurement reads "not measured: <reason>".
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from virtbench import catalog, patterns, published, stats
from virtbench.dataset import (  # noqa: F401
    BASELINE,
    NOT_IN_DATASET,
    Dataset,
    host_line,
    paired_conditions,
)
from virtbench.paths import papers_dir
from virtbench.patterns import selected  # noqa: F401 - part of this module's API

MAP_FILE = "claims.toml"
MIB_PER_8GIB = 8 * 1024

# --- the claim map -----------------------------------------------------------------------------

TRANSFORMS: dict[str, tuple[str | None, bool]] = {
    # transform -> (unit of the result, None = the metric's own unit; needs a baseline)
    "value": (None, False),
    "per_8gib": ("instances", False),
    "capability": ("", False),
    "ratio": ("x", True),
    "inverse_ratio": ("x", True),
    "pct_of_baseline": ("%", True),
    "pct_of_baseline_time": ("%", True),
    "pct_change": ("%", True),
    "pct_reduction": ("%", True),
}


@dataclass(frozen=True)
class Pick:
    """One way to measure a claim; a claim lists several, the first with data wins."""

    metric: str
    experiment: str
    transform: str = "value"
    workload: str | None = None
    baseline_metric: str | None = None
    variants: tuple[str, ...] = ()
    conditions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClaimMap:
    """Published rows (selected by table, metric, system, condition) and how to check them."""

    key: str
    notebooks: tuple[str, ...]
    source: str
    table: str
    metrics: tuple[str, ...]
    systems: tuple[str, ...] = ()
    condition: str | None = None
    stat: str | None = None
    picks: tuple[Pick, ...] = ()
    variants: tuple[str, ...] = ()
    baseline: tuple[str, ...] = (BASELINE,)
    over: str | None = None
    up_to_from: float | None = None
    not_measurable: str = ""
    comparable: str = ""
    note: str = ""
    line: int = 0


@dataclass(frozen=True)
class ClaimMapFile:
    """The loaded map: system names, systems not here, and the mappings."""

    path: Path
    systems: dict[str, tuple[str, ...]]
    not_here: dict[str, str]
    claims: tuple[ClaimMap, ...]


class ClaimMapError(ValueError):
    """A claim map that cannot be used; the message names file and line."""

    def __init__(self, path: Path, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")


_CLAIM_KEYS = {f for f in ClaimMap.__dataclass_fields__ if f != "line"}
_PICK_KEYS = set(Pick.__dataclass_fields__)


def _locate(lines: list[str], start: int, *needles: str) -> int:
    """1-based line of the first line at or after ``start`` containing every needle."""
    for i in range(max(start - 1, 0), len(lines)):
        if all(n in lines[i] for n in needles):
            return i + 1
    return start


def load_map(path: Path | None = None, pub: pd.DataFrame | None = None) -> ClaimMapFile:
    """Read and validate the claim map (default ``papers/claims.toml``)."""
    path = Path(path) if path else papers_dir() / MAP_FILE
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise ClaimMapError(path, 0, f"cannot read the claim map: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ClaimMapError(path, 0, "not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ClaimMapError(path, getattr(exc, "lineno", 0) or 0, f"TOML: {exc}") from None
    lines = text.splitlines()
    unknown = set(data) - {"systems", "not_here", "claim"}
    if unknown:
        name = sorted(unknown)[0]
        raise ClaimMapError(path, _locate(lines, 1, name),
                            f"unknown section {name!r}; valid: systems, not_here, claim")
    starts = [i + 1 for i, line in enumerate(lines) if line.strip() == "[[claim]]"]
    systems = {k: tuple(v) for k, v in data.get("systems", {}).items()}
    not_here = dict(data.get("not_here", {}))
    maps = [_parse_claim(path, lines, start, entry)
            for start, entry in zip(starts, data.get("claim", []), strict=False)]
    result = ClaimMapFile(path, systems, not_here, tuple(maps))
    _validate(result, lines, published.load() if pub is None else pub)
    return result


def _parse_claim(path: Path, lines: list[str], start: int, entry: dict) -> ClaimMap:
    def fail(needle: str, problem: str) -> ClaimMapError:
        return ClaimMapError(path, _locate(lines, start, needle), problem)

    extra = set(entry) - _CLAIM_KEYS
    if extra:
        name = sorted(extra)[0]
        raise fail(name, f"unknown field {name!r}; valid: {', '.join(sorted(_CLAIM_KEYS))}")
    for required in ("key", "notebooks", "source", "table", "metrics"):
        if required not in entry:
            raise fail("[[claim]]", f"a claim needs {required!r}")
    picks = []
    for p in entry.get("picks", ()):
        bad = set(p) - _PICK_KEYS
        if bad or "metric" not in p or "experiment" not in p:
            what = (f"unknown pick field {sorted(bad)[0]!r}" if bad
                    else "a pick needs 'metric' and 'experiment'")
            raise fail(str(p.get("metric", "picks")),
                       f"{what}; valid: {', '.join(sorted(_PICK_KEYS))}")
        picks.append(Pick(**{**p, "variants": tuple(p.get("variants", ())),
                             "conditions": dict(p.get("conditions", {}))}))
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()
              if k != "picks"}
    return ClaimMap(**values, picks=tuple(picks), line=start)


def _validate(cmf: ClaimMapFile, lines: list[str], pub: pd.DataFrame) -> None:
    from virtbench import platforms

    known = {v: fam for v, (fam, _) in platforms.VARIANTS.items()}
    seen: set[str] = set()

    def fail(cm: ClaimMap, needle: str | tuple[str, ...], problem: str) -> ClaimMapError:
        needles = (needle,) if isinstance(needle, str) else needle
        return ClaimMapError(cmf.path, _locate(lines, cm.line, *needles), f"{cm.key}: {problem}")

    for name, pats in cmf.systems.items():
        try:
            patterns.select(pats, known)
        except ValueError as exc:
            raise ClaimMapError(cmf.path, _locate(lines, 1, name), str(exc)) from None
    for cm in cmf.claims:
        if cm.key in seen:
            raise fail(cm, f'"{cm.key}"', "duplicate key")
        seen.add(cm.key)
        if cm.source not in published.SOURCES:
            raise fail(cm, "source", f"unknown source {cm.source!r}; valid: "
                       f"{', '.join(published.SOURCES)}")
        of_source = pub[pub["source"] == cm.source]
        for metric in cm.metrics:
            if not any(_ieq(metric, m) for m in of_source["metric"]):
                raise fail(cm, metric, f"no published {cm.source} row has metric {metric!r}")
        for system in cm.systems:
            if not any(_ieq(system, s) for s in of_source["system"]):
                raise fail(cm, system, f"no published {cm.source} row has system {system!r}")
        if published_rows(cm, pub).empty:
            raise fail(cm, "table", "selects no published row (table, metrics, systems, "
                                    "condition and stat together)")
        for pats in (cm.variants, cm.baseline, *(p.variants for p in cm.picks)):
            try:
                patterns.select(pats, known)
            except ValueError as exc:
                raise fail(cm, f'"{pats[0]}"', str(exc)) from None
        if not (cm.picks or cm.not_measurable or set(cm.systems) <= set(cmf.not_here)):
            raise fail(cm, "[[claim]]", "needs picks or not_measurable")
        for pick in cm.picks:
            _validate_pick(cm, pick, fail)


def _validate_pick(cm: ClaimMap, pick: Pick, fail) -> None:
    at = (f'metric = "{pick.metric}"', f'experiment = "{pick.experiment}"')
    if pick.transform not in TRANSFORMS:
        raise fail(cm, at, f"unknown transform {pick.transform!r}; valid: "
                   f"{', '.join(TRANSFORMS)}")
    names = pick.metric.split("+") + ([pick.baseline_metric] if pick.baseline_metric else [])
    for name in names:
        try:
            metric = catalog.get(pick.experiment, name)
        except ValueError as exc:
            raise fail(cm, at, str(exc)) from None
        for key in pick.conditions:
            if key not in metric.conditions:
                raise fail(cm, at, f"metric {name!r} of {pick.experiment!r} has no condition "
                           f"{key!r}; its conditions: {', '.join(metric.conditions) or 'none'}")


_MAP_CACHE: dict[Path, ClaimMapFile] = {}


def claim_map(path: Path | None = None) -> ClaimMapFile:
    """The claim map, loaded and validated once per path."""
    path = Path(path) if path else papers_dir() / MAP_FILE
    if path not in _MAP_CACHE:
        _MAP_CACHE[path] = load_map(path)
    return _MAP_CACHE[path]


def __getattr__(name: str) -> Any:
    """``CLAIMS``, ``SYSTEMS``, ``NOT_HERE``: the shipped map's parts, loaded on first use."""
    if name in ("CLAIMS", "SYSTEMS", "NOT_HERE"):
        cmf = claim_map()
        return {"CLAIMS": cmf.claims, "SYSTEMS": cmf.systems, "NOT_HERE": cmf.not_here}[name]
    if name in ("STARTUP_PICKS", "COLD_PICKS"):
        key = "seed:core:startup" if name == "STARTUP_PICKS" else "seed:chart:summary"
        return next(cm.picks for cm in claim_map().claims if cm.key == key)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- units -------------------------------------------------------------------------------------

# (published unit, measured unit) -> the readings: (factor that turns the published number
# into the measured unit, what the reading assumes). Several readings: an ambiguous unit.
CONVERSIONS: dict[tuple[str, str], tuple[tuple[float, str], ...]] = {
    ("s", "ms"): ((1000.0, "s x 1000 = ms"),),
    ("ms", "ms"): ((1.0, ""),),
    ("us", "ms"): ((1e-3, "us / 1000 = ms"),),
    ("MB", "MiB"): ((1e6 / 2**20, "MB as 10^6 B (1 MB = 0.954 MiB)"), (1.0, "MB as 2^20 B")),
    ("GB", "MiB"): ((1e9 / 2**20, "GB as 10^9 B (1 GB = 953.7 MiB)"),
                    (1024.0, "GB as 2^30 B")),
    ("MB", "B"): ((1e6, "MB as 10^6 B"), (2.0**20, "MB as 2^20 B")),
    ("GB", "B"): ((1e9, "GB as 10^9 B"), (2.0**30, "GB as 2^30 B")),
    ("%", "%"): ((1.0, ""),),
    ("% of native", "%"): ((1.0, ""),),
    ("%", "% of one core"): ((1.0, "% of one core"),
                             (4.0, "% of the seed's 4-core host (x 4 = % of one core)")),
    ("requests/s", "requests/s"): ((1.0, ""),),
    ("requests/s", "req/s"): ((1.0, ""),),
    ("x", "x"): ((1.0, ""),),
    ("instances", "instances"): ((1.0, ""),),
}
# Published order-of-magnitude classes, read as ranges in ms.
MAGNITUDES: dict[str, tuple[float, float]] = {
    "microseconds": (0.001, 1.0),
    "milliseconds": (1.0, 1000.0),
    "seconds": (1000.0, 60_000.0),
}


def _apply(transform: str, v: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """The transformed samples (``b`` the paired baseline values or the baseline median)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "ratio": lambda: v / b,
            "inverse_ratio": lambda: b / v,
            "pct_of_baseline": lambda: 100 * v / b,
            "pct_of_baseline_time": lambda: 100 * b / v,
            "pct_change": lambda: 100 * (v / b - 1),
            "pct_reduction": lambda: 100 * (1 - v / b),
        }[transform]()


# --- published rows ----------------------------------------------------------------------------


def _ieq(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def published_rows(cm: ClaimMap, pub: pd.DataFrame) -> pd.DataFrame:
    """The published rows a mapping covers."""
    mask = (pub["source"] == cm.source) & pub["table_or_figure"].str.contains(
        cm.table, case=False, regex=False)
    mask &= pub["metric"].apply(lambda m: any(_ieq(m, x) for x in cm.metrics))
    if cm.systems:
        mask &= pub["system"].apply(lambda s: any(_ieq(s, x) for x in cm.systems))
    if cm.condition is not None:
        mask &= pub["condition"].apply(lambda c: _ieq(c, cm.condition))
    if cm.stat is not None:
        mask &= pub["stat"] == cm.stat
    else:  # a standard deviation belongs to its mean row; only an explicit stat selects it
        mask &= pub["stat"] != "sd"
    return pub[mask]


def _denominator(row: pd.Series, system: str, pub: pd.DataFrame) -> pd.Series | None:
    same = pub[(pub["source"] == row["source"]) & (pub["metric"] == row["metric"])
               & (pub["workload"] == row["workload"]) & (pub["condition"] == row["condition"])
               & (pub["stat"] == row["stat"]) & (pub["system"] == system)]
    return same.iloc[0] if len(same) else None


def reference(row: pd.Series) -> str:
    """Where a published row comes from, short: "seed L31", "edera_2501.04580v1 Abstract"."""
    if row["source"] == "seed":
        note = str(row["note"])
        return note.split(";")[0].split(",")[0] if note.startswith("seed L") else "seed"
    return f"{row['source_id']}, {row['table_or_figure']}"


def claim_text(row: pd.Series) -> str:
    parts = [str(row["system"]), str(row["metric"])]
    if row["condition"] and len(str(row["condition"])) <= 32:  # long ones are test setups
        parts.append(f"({row['condition']})")
    if row["stat"] in ("p50", "p99"):
        parts.append(str(row["stat"]))
    return " ".join(parts)


@dataclass
class _Claim:
    """One published row made ready for checking: its interval in a unit, as text."""

    text: str
    low: float
    high: float
    unit: str
    category: str = ""
    precision: float = 0.0


def _published_claim(cm: ClaimMap, row: pd.Series, pub: pd.DataFrame) -> _Claim:
    if row["value_text"]:
        return _Claim(str(row["value_text"]), math.nan, math.nan, "", str(row["value_text"]))
    low, high = published.claim_interval(row)
    text = f"{published.format_value(row)} {row['unit']}".strip()
    unit = str(row["unit"])
    precision = float(row["precision"]) if low == high else 0.0
    if cm.over:
        den = _denominator(row, cm.over, pub)
        if den is None or not den["value"] or math.isnan(den["value"]):
            return _Claim(f"{text} (no {cm.over} row to divide by)", math.nan, math.nan, "")
        low, high = low / den["value"], high / den["value"]
        text = f"{low:.3g} x {cm.over} ({published.format_value(row)} / " \
               f"{published.format_value(den)} {unit}, derived)"
        unit, precision = "x", 0.0
    if cm.up_to_from is not None:
        low = min(cm.up_to_from, high)
        text = f"up to {text}"
        precision = 0.0
    return _Claim(text, low, high, unit, precision=precision)


def _readings(claim: _Claim, unit: str) -> list[tuple[float, float, float, str]] | str:
    """The claim's interval (low, high, precision) in ``unit`` under each reading of its
    unit, with what the reading assumes; or why it cannot be converted."""
    if claim.category:
        if claim.category in MAGNITUDES and unit == "ms":
            low, high = MAGNITUDES[claim.category]
            return [(low, high, 0.0, f"'{claim.category}' read as {low:g}-{high:g} ms")]
        return f"a category ({claim.category!r}) cannot be compared with {unit or 'no unit'}"
    key = (claim.unit, unit)
    if key not in CONVERSIONS:
        return f"no conversion from {claim.unit!r} to {unit!r}"
    return [(claim.low * f, claim.high * f, claim.precision * f, said)
            for f, said in CONVERSIONS[key]]


def _capability_verdict(claim: str, observed: bool) -> str:
    if claim == "full":
        return "consistent" if observed else "not confirmed here"
    if claim == "limited":
        return "more than claimed (collected here)" if observed else "consistent"
    return "inconclusive (no capability class)"


# --- the check ---------------------------------------------------------------------------------

CHECK_COLUMNS = [
    "key", "claim_id", "source", "line", "reference", "table", "system", "family", "claim",
    "claimed", "claim_low", "claim_high", "tolerance_low", "tolerance_high", "unit",
    "conversion", "variant", "workload", "conditions", "metric", "method", "n", "median",
    "ci_low", "ci_high", "measured", "verdict", "comparable", "tallied", "reason", "note",
]
# verdict families; the first group gives a verdict, the rest do not
DECIDED = ("consistent", "higher than claimed", "lower than claimed", "not confirmed here",
           "more than claimed")
VERDICT_ORDER = (*DECIDED, "mixed", "inconclusive", "not comparable", "not measured",
                 "not measurable here")


def verdict_class(verdict: str) -> str:
    """The verdict's family (the text before any ':', '(' or detail)."""
    for v in VERDICT_ORDER:
        if str(verdict).startswith(v):
            return v
    return str(verdict).split(":")[0]


# Censored values (bounds, see stats.censored_median_ci) through a transform: a decreasing
# one turns an upper bound into a lower bound.
FLIPPED = {"upper": "lower", "lower": "upper"}
DECREASING = ("inverse_ratio", "pct_of_baseline_time", "pct_reduction")


def _measure_pick(ds: Dataset, cm: ClaimMap, pick: Pick, variant: str
                  ) -> list[dict] | str | None:
    """Checked items for one variant with this pick; a reason string when the baseline is
    missing; None when the variant has no data for it (the next pick is tried)."""
    data = ds.measured(variant, pick.metric, pick.experiment, pick.workload, pick.conditions,
                       censored=True)
    if data.empty:
        return None
    unit_out, needs_base = TRANSFORMS[pick.transform]
    unit = unit_out if unit_out is not None else str(data["unit"].iloc[0])
    exact_metric = all(catalog.get(pick.experiment, m).exact for m in pick.metric.split("+"))
    out = []
    baseline = next((b for b in cm.baseline if len(ds.rows(b))), cm.baseline[0])
    base_metric = pick.baseline_metric or pick.metric
    for (wl, cond), group in data.groupby(["workload", "conditions"], sort=False):
        method = ""
        values = group["value"].to_numpy(float)
        censored = group["censored"].to_numpy(bool)  # values that are only bounds
        bound = next((b for b in group["bound"] if b), "")
        exact = exact_metric
        self_compare = needs_base and variant == baseline
        if pick.transform == "per_8gib":
            if np.median(values) <= 0:
                return (f"{pick.metric} has a median of {np.median(values):.3g} MiB (<= 0: "
                        "smaller than the noise of the counter), so instances per 8 GiB are "
                        "undefined")
            values = MIB_PER_8GIB / values
            bound = FLIPPED.get(bound, bound)
            method = "8192 MiB / memory per instance"
        elif needs_base:
            # the same work on the baseline: its kernel (a PAIRED key) is the group's
            base = ds.measured(baseline, base_metric, pick.experiment, wl,
                               {**pick.conditions, **paired_conditions(cond)})
            if base.empty:
                why = ds.reason(baseline, base_metric, pick.experiment)
                return f"baseline {baseline} has no {base_metric}: {why}"
            paired = group.merge(base, on=["run_id", "rep"], suffixes=("", "_b"))
            if len(paired) >= 2:
                values = _apply(pick.transform, paired["value"].to_numpy(float),
                                paired["value_b"].to_numpy(float))
                censored = paired["censored"].to_numpy(bool)
                method = f"per repetition against {baseline} (pairs matched by rep)"
            else:
                values = _apply(pick.transform, values, float(np.median(base["value"])))
                method = (f"against the median of {baseline} {base_metric} "
                          "(its spread not included)")
            exact = exact and all(catalog.get(pick.experiment, m).exact
                                  for m in base_metric.split("+"))
            if pick.transform in DECREASING:
                bound = FLIPPED.get(bound, bound)
        out.append(dict(workload=wl, conditions=cond, values=values, unit=unit, method=method,
                        exact=exact, self_compare=self_compare, censored=censored,
                        bound=bound,
                        metric=pick.metric if not needs_base else
                        f"{pick.metric} vs {baseline}"))
    return out


def _judge(claim: _Claim, item: dict, policy: stats.Policy) -> dict:
    """The verdict of one measured item against the claim, under every reading of its unit."""
    finite = np.isfinite(item["values"])
    values = item["values"][finite]
    censored = item.get("censored", np.zeros(finite.size, bool))[finite]
    bound = item.get("bound", "")
    if values.size == 0:
        return dict(n=0, measured="", verdict="not measured: no finite value")
    readings = _readings(claim, item["unit"])
    est = (stats.Estimate(float(np.median(values)), float(values.min()), float(values.max()),
                          int(values.size))
           if item["exact"] and np.all(values == values[0]) and not censored.any()
           else stats.censored_median_ci(values, censored, policy.confidence, bound or "upper"))
    shown = f"{est} {item['unit']}"
    if item["exact"] and np.all(values == values[0]):
        readable = stats.human(est.value, item["unit"])
        plain = f"{stats._fmt(est.value, 12)} {item['unit']}"
        shown = (f"{readable} = {plain} (exact)" if readable.replace(",", "") != plain
                 else f"{plain} (exact)")
    line = dict(n=int(values.size), median=est.value, ci_low=est.low, ci_high=est.high,
                measured=shown)
    if isinstance(readings, str):
        return {**line, "verdict": f"not comparable: {readings}"}
    verdicts = [stats.check_claim(values, low, high, precision=prec, exact=item["exact"],
                                  policy=policy, censored=censored, bound=bound or "upper")
                for low, high, prec, _ in readings]
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


def _check_variant(ds: Dataset, cm: ClaimMap, claim: _Claim, variant: str,
                   policy: stats.Policy) -> list[dict]:
    picks = [p for p in cm.picks if not p.variants
             or selected(p.variants, variant, ds.family(variant))]
    first_reason = ""
    for pick in picks:
        got = _measure_pick(ds, cm, pick, variant)
        if got is None:
            continue
        if isinstance(got, str):
            first_reason = first_reason or got
            continue
        lines = []
        for item in got:
            line = dict(variant=variant, workload=item["workload"],
                        conditions=item["conditions"], metric=item["metric"],
                        method=item["method"], unit=item["unit"])
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
            lines.append(line)
        return lines
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


def _pick_label(pick: Pick) -> str:
    """The pick's metric with the conditions it asks for: "startup_process (code_cache=on)"."""
    if not pick.conditions:
        return pick.metric
    said = ", ".join(f"{k}={v if isinstance(v, str) else '|'.join(v)}"
                     for k, v in sorted(pick.conditions.items()))
    return f"{pick.metric} ({said})"


def check(ds: Dataset, notebook: str | None = None, keys: Iterable[str] | None = None,
          source: str | None = None, pub: pd.DataFrame | None = None,
          policy: stats.Policy = stats.POLICY, claim_map_file: ClaimMapFile | None = None
          ) -> pd.DataFrame:
    """The claims-check table: one line per (published row, variant, workload, conditions).

    Select mappings by notebook, key prefixes or source. ``tallied`` says whether a line
    counts (a verdict, comparable, not the baseline against itself); the others are shown
    with their reason.
    """
    pub = published.load() if pub is None else pub
    cmf = claim_map_file or claim_map()
    key_list = list(keys) if keys is not None else None
    lines: list[dict] = []
    for cm in cmf.claims:
        if notebook is not None and notebook not in cm.notebooks:
            continue
        if key_list is not None and not any(cm.key.startswith(k) for k in key_list):
            continue
        if source is not None and cm.source != source:
            continue
        for _, row in published_rows(cm, pub).iterrows():
            lines.extend(_check_row(ds, cmf, cm, row, pub, policy))
    frame = pd.DataFrame(lines).reindex(columns=CHECK_COLUMNS)
    for column in ("reason", "conditions", "workload", "family", "variant", "measured"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), "")
    frame["n"] = frame["n"].fillna(0).astype(int)
    frame["tallied"] = [_tallied(r) for r in frame.itertuples()]
    frame["reason"] = [_reason(r) for r in frame.itertuples()]
    return frame


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
    claim = _published_claim(cm, row, pub)
    head = dict(key=cm.key, claim_id=f"{row['source']}:{int(row['line'])}", source=cm.source,
                line=int(row["line"]), reference=reference(row), table=row["table_or_figure"],
                system=row["system"], claim=claim_text(row), claimed=claim.text,
                unit=claim.unit, comparable=cm.comparable or "yes", note=cm.note,
                claim_low=claim.low, claim_high=claim.high)
    if cm.not_measurable or (row["system"] in cmf.not_here and not cm.variants):
        reason = cm.not_measurable or cmf.not_here[row["system"]]
        return [{**head, "variant": "", "verdict": f"not measurable here: {reason}", "n": 0}]
    patterns = cm.variants or cmf.systems.get(row["system"], ())
    if not patterns:
        return [{**head, "variant": "", "n": 0,
                 "verdict": f"not measured: no variant stands for {row['system']!r}"}]
    variants = ds.variants(patterns)
    if not variants:
        return [{**head, "variant": " | ".join(patterns), "n": 0,
                 "verdict": f"not measured: {NOT_IN_DATASET} (no variant matching "
                            f"{', '.join(patterns)})"}]
    out = []
    for variant in variants:
        for line in _check_variant(ds, cm, claim, variant, policy):
            out.append({**head, "family": ds.family(variant), **line})
    return out


def coverage(pub: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every published row with the mapping keys that cover it ("" when none does)."""
    pub = published.load() if pub is None else pub
    keys: dict[int, list[str]] = {i: [] for i in pub.index}
    for cm in claim_map().claims:
        for i in published_rows(cm, pub).index:
            keys[i].append(cm.key)
    out = pub[["source", "line", "table_or_figure", "metric", "system", "condition",
               "stat"]].copy()
    out["keys"] = [", ".join(keys[i]) for i in pub.index]
    return out


# --- claim-level verdicts and tallies ----------------------------------------------------------

CLAIM_COLUMNS = ["claim_id", "source", "line", "claim", "claimed", "family", "verdict",
                 "tallied", "lines", "detail"]


def claim_verdicts(check_table: pd.DataFrame) -> pd.DataFrame:
    """One verdict per published claim and platform family.

    Tallied lines that agree give their verdict; lines that disagree give "mixed" (the
    detail lists which variant says what). A claim with no tallied line gets the most
    informative class among its lines (inconclusive, not comparable, not measured, not
    measurable here) and is not tallied.
    """
    out = []
    if check_table.empty:
        return pd.DataFrame(columns=CLAIM_COLUMNS)
    for (claim_id, family), group in check_table.groupby(["claim_id", "family"], sort=False):
        first = group.iloc[0]
        counted = group[group["tallied"]]
        if len(counted):
            classes = list(dict.fromkeys(verdict_class(v) for v in counted["verdict"]))
            verdict = classes[0] if len(classes) == 1 else "mixed"
            detail = "" if len(classes) == 1 else "; ".join(
                f"{r.variant}{' ' + r.conditions if r.conditions else ''}: "
                f"{verdict_class(r.verdict)}" for r in counted.itertuples())
            tallied = True
        else:
            classes = [verdict_class(v) for v in group["verdict"]]
            if any(c in DECIDED for c in classes):  # decided, but not comparable/self
                verdict = "not comparable"
            else:
                verdict = min(classes, key=lambda c: VERDICT_ORDER.index(c)
                              if c in VERDICT_ORDER else len(VERDICT_ORDER))
            detail = "; ".join(dict.fromkeys(r for r in group["reason"] if r))[:300]
            tallied = False
        out.append(dict(claim_id=claim_id, source=first["source"], line=first["line"],
                        claim=first["claim"], claimed=first["claimed"], family=family,
                        verdict=verdict, tallied=tallied, lines=len(group), detail=detail))
    return pd.DataFrame(out, columns=CLAIM_COLUMNS)


def tally(check_table: pd.DataFrame) -> dict[str, int]:
    """How many (claim, family) pairs fall in each verdict family."""
    counts: dict[str, int] = {}
    for v in claim_verdicts(check_table)["verdict"]:
        counts[v] = counts.get(v, 0) + 1
    return {v: counts[v] for v in sorted(counts, key=lambda c: VERDICT_ORDER.index(c)
                                         if c in VERDICT_ORDER else len(VERDICT_ORDER))}


def headline(check_table: pd.DataFrame, lead: str = "") -> str:
    """One line computed from the data: the lead (itself computed by the caller) and the
    claim-level tally (per claim and family)."""
    verdicts = claim_verdicts(check_table)
    decided = verdicts[verdicts["tallied"]]
    counts = tally(check_table)
    parts = [f"{counts[v]} {v}" for v in (*DECIDED, "mixed") if counts.get(v)]
    rest = [f"{counts[v]} {v}" for v in counts if v not in (*DECIDED, "mixed")]
    text = (f"{len(decided)} of {len(verdicts)} claim-family pairs with a verdict"
            + (f" ({', '.join(parts)})" if parts else "")
            + (f"; without a verdict: {', '.join(rest)}" if rest else ""))
    return f"{lead}{'; ' if lead else ''}claims: {text}"


def policy_markdown(policy: stats.Policy = stats.POLICY) -> str:
    """The verdict policy as a Markdown list, for every report's method section."""
    return "**Verdict policy.**\n\n" + "\n".join(f"- {rule}" for rule in policy.rules())


def display_table(check_table: pd.DataFrame) -> pd.DataFrame:
    """The reader-facing columns of a claims-check table, numbers kept as numbers (the
    tolerance bounds, the median and its CI in the line's ``unit``; ``measured`` says what
    a line without a median shows): :func:`virtbench.tables.to_html` joins and formats them."""
    cols = ["claim", "reference", "claimed", "conversion", "tolerance_low", "tolerance_high",
            "variant", "workload", "conditions", "n", "median", "ci_low", "ci_high",
            "measured", "unit", "verdict", "tallied", "comparable"]
    out = check_table.reindex(columns=cols)
    for column in ("claim", "reference", "claimed", "conversion", "variant", "workload",
                   "conditions", "measured", "unit", "verdict", "comparable"):
        out[column] = out[column].astype(object).where(out[column].notna(), "")
    for column in ("tolerance_low", "tolerance_high", "median", "ci_low", "ci_high"):
        out[column] = out[column].astype(float)
    out["tallied"] = ["yes" if t is True else "no" for t in check_table.reindex(
        columns=["tallied"])["tallied"]]
    out = out.rename(columns={"reference": "source", "claimed": "claimed (as published)"})
    for column in ("workload", "conditions"):
        if (out[column] == "").all():
            out = out.drop(columns=column)
    return out.reset_index(drop=True)


JSON_FIELDS = ["source", "claim_id", "family", "variant", "workload", "conditions", "metric",
               "unit", "n", "median", "ci_low", "ci_high", "claimed_low", "claimed_high",
               "verdict", "comparable", "tallied", "reason"]


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
                measured = (f"{stats._fmt(lo, 3)} {unit}" if lo == hi
                            else f"{stats._fmt(lo, 3)}-{stats._fmt(hi, 3)} {unit}")
            else:
                measured = "nothing measured"
            cells.append(dict(aspect=aspect, system=system, verdict=verdict,
                              claimed=f"claimed {lines['claimed'].iloc[0]}",
                              measured=f"here {measured}"))
    return pd.DataFrame(cells, columns=["aspect", "system", "verdict", "claimed", "measured"])

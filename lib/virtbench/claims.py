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

from virtbench import (
    catalog,
    costs,
    dataset,
    magnitudes,
    patterns,
    published,
    rankings,
    stats,
    tables,
)
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
    # the geometric mean over the pick's kernels of the per-kernel ratio of medians to the
    # baseline, with its bootstrap CI (stats.geomean_ratio_ci): 100 x baseline / variant time
    # ("% of native"), or variant / baseline ("x")
    "geomean_pct_of_baseline_time": ("%", True),
    "geomean_ratio": ("x", True),
}
GEOMEAN_TRANSFORMS = ("geomean_pct_of_baseline_time", "geomean_ratio")

# What a claim can require of a measured line besides row conditions (catalog.CONDITIONS):
REQUIREMENTS: dict[str, str] = {
    "platform": "the variant's platform class (virtbench.platforms.classes.PLATFORM_CLASSES)",
    "accel": "a VM's accelerator: hardware (KVM) | emulated (TCG); other platforms have none",
    "memory": "engine: a Wasm number counts the engine's own memory (its CLI process, or the "
              "marginal memory of one more instance inside one engine), never the Python or "
              "Node process that embeds it",
}
# What a condition value means, for the reason of a line that does not meet a requirement.
VALUE_MEANS: dict[tuple[str, str], str] = {
    ("cache", "warm"): "reads from the page cache",
    ("cache", "cold"): "reads from the disk",
    ("userland", "minimal"): "a kernel + busybox initramfs guest",
    ("userland", "debian"): "a Debian minbase root disk, no systemd",
    ("userland", "debian-systemd"): "a full-OS guest booting with systemd",
    ("load", "light"): "a light load (wrk, 1 thread, 10 connections, seconds)",
    ("load", "seed"): "the seed's load (10,000 connections, all cores, long)",
    ("kernel", "syscall"): "the system-call kernel",
}
# What a row without a condition key (and no default value) was measured under.
ABSENT_MEANS: dict[str, str] = {"packing": "one host process per instance"}


@dataclass(frozen=True)
class Pick:
    """One way to measure a reading of a claim. A reading lists several only for variants or
    datasets that measure the same quantity differently (the first with data that meets the
    requirements answers); a different quantity is a different reading."""

    metric: str
    experiment: str
    transform: str = "value"
    workload: str | None = None
    baseline_metric: str | None = None
    variants: tuple[str, ...] = ()
    conditions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reading:
    """One honest meaning of a claim, measured its own way. ``name`` "" is the only reading
    of a claim given with plain ``picks``."""

    name: str
    means: str
    picks: tuple[Pick, ...]
    requires: dict[str, Any] = field(default_factory=dict)
    variants: tuple[str, ...] = ()


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
    requires: dict[str, Any] = field(default_factory=dict)
    readings: tuple[Reading, ...] = ()
    stands_in: str = ""
    kind: str = ""  # "" a value claim; "ranking" (virtbench.rankings); "cost" (virtbench.costs)
    spec: dict[str, Any] = field(default_factory=dict)  # the kind's own settings
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


_CLAIM_KEYS = ({f for f in ClaimMap.__dataclass_fields__} - {"line", "readings"}) | {"reading"}
_PICK_KEYS = set(Pick.__dataclass_fields__)
_READING_KEYS = set(Reading.__dataclass_fields__)


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

    def parse_picks(raw: Iterable[dict]) -> tuple[Pick, ...]:
        picks = []
        for p in raw:
            bad = set(p) - _PICK_KEYS
            if bad or "metric" not in p or "experiment" not in p:
                what = (f"unknown pick field {sorted(bad)[0]!r}" if bad
                        else "a pick needs 'metric' and 'experiment'")
                raise fail(str(p.get("metric", "picks")),
                           f"{what}; valid: {', '.join(sorted(_PICK_KEYS))}")
            picks.append(Pick(**{**p, "variants": tuple(p.get("variants", ())),
                                 "conditions": dict(p.get("conditions", {}))}))
        return tuple(picks)

    if entry.get("picks") and entry.get("reading"):
        raise fail("[[claim.reading]]", "a claim has plain picks (one reading) or "
                   "[[claim.reading]] tables, not both")
    readings = []
    for r in entry.get("reading", ()):
        bad = set(r) - _READING_KEYS
        missing = [k for k in ("name", "means", "picks") if k not in r]
        if bad or missing:
            what = (f"unknown reading field {sorted(bad)[0]!r}" if bad
                    else f"a reading needs {missing[0]!r}")
            raise fail(str(r.get("name", "[[claim.reading]]")),
                       f"{what}; valid: {', '.join(sorted(_READING_KEYS))}")
        readings.append(Reading(str(r["name"]), str(r["means"]), parse_picks(r["picks"]),
                                dict(r.get("requires", {})), tuple(r.get("variants", ()))))
    if len({r.name for r in readings}) < len(readings):
        raise fail("[[claim.reading]]", "two readings with the same name")
    plain = parse_picks(entry.get("picks", ()))
    if plain:
        readings = [Reading("", "", plain)]
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()
              if k not in ("picks", "reading", "requires")}
    return ClaimMap(**values, requires=dict(entry.get("requires", {})),
                    picks=tuple(p for r in readings for p in r.picks),
                    readings=tuple(readings), line=start)


def _validate(cmf: ClaimMapFile, lines: list[str], pub: pd.DataFrame) -> None:
    from virtbench import platforms

    known = {v: fam for v, (fam, _) in platforms.VARIANTS.items()}
    seen: set[str] = set()
    columns = PubColumns(pub)

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
        of_source = [i for i, s in enumerate(columns.columns["source"]) if s == cm.source]
        for metric in cm.metrics:
            if not any(_ieq(metric, columns.columns["metric"][i]) for i in of_source):
                raise fail(cm, metric, f"no published {cm.source} row has metric {metric!r}")
        for system in cm.systems:
            if not any(_ieq(system, columns.columns["system"][i]) for i in of_source):
                raise fail(cm, system, f"no published {cm.source} row has system {system!r}")
        if published_rows(cm, pub, columns).empty:
            raise fail(cm, "table", "selects no published row (table, metrics, systems, "
                                    "condition and stat together)")
        for pats in (cm.variants, cm.baseline, *(p.variants for p in cm.picks),
                     *(r.variants for r in cm.readings)):
            try:
                patterns.select(pats, known)
            except ValueError as exc:
                raise fail(cm, f'"{pats[0]}"', str(exc)) from None
        if not (cm.picks or cm.not_measurable or set(cm.systems) <= set(cmf.not_here)):
            raise fail(cm, "[[claim]]", "needs picks or not_measurable")
        if cm.kind or cm.spec:
            problem = _kind_problem(cm, cmf)
            if problem:
                raise fail(cm, ("kind", "spec"), problem)
        for pick in cm.picks:
            _validate_pick(cm, pick, fail)
        _validate_requires(cm, cm.requires, cm.picks, "requires", fail)
        for reading in cm.readings:
            _validate_requires(cm, reading.requires, reading.picks, reading.name, fail)
            _validate_requires(cm, {**cm.requires, **reading.requires}, reading.picks,
                               reading.name or "requires", fail)


KINDS = {rankings.KIND: rankings.validate, costs.KIND: costs.validate}


def _kind_problem(cm: ClaimMap, cmf: ClaimMapFile) -> str:
    """Why a claim of another kind (``kind``, ``spec``) is not usable ("" when it is)."""
    if cm.kind not in KINDS:
        return f"unknown kind {cm.kind!r}; valid: {', '.join(KINDS)} (or none, a value claim)"
    return KINDS[cm.kind](cm.spec, cmf.systems)


def _validate_requires(cm: ClaimMap, req: dict[str, Any], picks: Sequence[Pick], at: str,
                       fail) -> None:
    """A requirement names a known key with a valid value, and a condition it requires is
    one the reading's metrics can carry (else no line could ever meet it)."""
    from virtbench.platforms.classes import PLATFORM_CLASSES

    valid = {"platform": tuple(PLATFORM_CLASSES), "accel": ("hardware", "emulated"),
             "memory": ("engine",), **catalog.VALUES}
    for key, want in req.items():
        wants = [want] if isinstance(want, str) else list(want) if isinstance(
            want, list) else None
        if key not in REQUIREMENTS and key not in catalog.CONDITIONS:
            raise fail(cm, (at, key), f"unknown requirement {key!r}; valid: "
                       f"{', '.join([*REQUIREMENTS, *catalog.CONDITIONS])}")
        if not wants:
            raise fail(cm, (at, key), f"requirement {key!r} needs a value or a list of values")
        if key in valid:
            bad = [w for w in wants if w not in valid[key]]
            if bad:
                raise fail(cm, (at, key), f"requirement {key}={bad[0]!r} is not valid; "
                           f"valid: {', '.join(valid[key])}")
        elif key in catalog.CONDITIONS:
            if len(wants) != 1 or _bound(wants[0]) is None:
                raise fail(cm, (at, key), f"requirement {key}={want!r} is not valid; a "
                           "number, or a bound such as \">=512\" or \"<=256\"")
        if key in catalog.CONDITIONS and picks and not any(
                key in catalog.get(p.experiment, m).conditions
                for p in picks for m in p.metric.split("+")):
            raise fail(cm, (at, key), f"requirement {key!r}: no metric of these picks takes "
                       "that condition, so no line could meet it")


def _bound(text: str) -> tuple[str, float] | None:
    """A numeric requirement: ("==" | ">=" | "<=", number); None when not one."""
    op = text[:2] if text[:2] in (">=", "<=") else "=="
    number = text[2:] if op != "==" else text
    try:
        return op, float(number.strip())
    except ValueError:
        return None


def _validate_pick(cm: ClaimMap, pick: Pick, fail) -> None:
    at = (f'metric = "{pick.metric}"', f'experiment = "{pick.experiment}"')
    if pick.transform not in TRANSFORMS:
        raise fail(cm, at, f"unknown transform {pick.transform!r}; valid: "
                   f"{', '.join(TRANSFORMS)}")
    if pick.transform in GEOMEAN_TRANSFORMS and isinstance(
            pick.conditions.get("kernel", ""), str):
        raise fail(cm, at, f"transform {pick.transform!r} needs conditions.kernel, the list "
                   "of kernels to average over")
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


def map_inputs() -> list[Path]:
    """The files a claims check reads besides the run: the claim map and the published CSVs."""
    return sorted(papers_dir().glob("*.csv")) + [papers_dir() / MAP_FILE]


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
# Published order-of-magnitude classes of time, read as ranges in ms (all classes, with their
# units and boundaries: virtbench.magnitudes).
MAGNITUDES: dict[str, tuple[float, float]] = magnitudes.TIME_CLASSES


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


class PubColumns:
    """The published rows' columns as lists, read once for the many mappings that select
    from them (:func:`published_rows`)."""

    def __init__(self, pub: pd.DataFrame) -> None:
        self.pub = pub
        self.columns = {c: pub[c].tolist() for c in
                        ("source", "metric", "system", "condition", "stat")}
        self._tables: dict[str, np.ndarray] = {}

    def in_table(self, table: str) -> np.ndarray:
        """Which rows' ``table_or_figure`` contains ``table`` (case-insensitive)."""
        if table not in self._tables:
            self._tables[table] = self.pub["table_or_figure"].str.contains(
                table, case=False, regex=False).to_numpy(bool)
        return self._tables[table]


def published_rows(cm: ClaimMap, pub: pd.DataFrame,
                   columns: PubColumns | None = None) -> pd.DataFrame:
    """The published rows a mapping covers (``columns``: ``PubColumns(pub)``, when the
    caller selects for many mappings)."""
    columns = columns if columns is not None and columns.pub is pub else PubColumns(pub)
    col = columns.columns
    keep = columns.in_table(cm.table).copy()
    for i in np.flatnonzero(keep):  # the few rows of the table, compared as text
        stat = col["stat"][i]
        keep[i] = (col["source"][i] == cm.source
                   # a standard deviation belongs to its mean row; only an explicit stat
                   # selects it
                   and (stat == cm.stat if cm.stat is not None else stat != "sd")
                   and any(_ieq(col["metric"][i], x) for x in cm.metrics)
                   and (not cm.systems or any(_ieq(col["system"][i], x) for x in cm.systems))
                   and (cm.condition is None or _ieq(col["condition"][i], cm.condition)))
    return pub[keep]


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
        found = magnitudes.class_range(claim.category, unit)
        return found if isinstance(found, str) else [(found[0], found[1], 0.0, found[2])]
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
    "conversion", "reading", "variant", "workload", "conditions", "metric", "method", "n",
    "median", "ci_low", "ci_high", "measured", "verdict", "comparable", "tallied", "reason",
    "code", "commit", "stands_in", "note",
]
# verdict families; the first group gives a verdict, the rest do not
DECIDED = ("consistent", "higher than claimed", "lower than claimed", "not confirmed here",
           "more than claimed", rankings.SAME, rankings.DIFFERS)
VERDICT_ORDER = (*DECIDED, "mixed", "depends on the reading", "several code versions",
                 "inconclusive", rankings.TIED, "not comparable", "not measured",
                 "not measurable here")
#: Claim-level verdicts of claims that were answered but get no single verdict.
UNSETTLED = ("depends on the reading", "several code versions")
CONTEXT = "context: "
UNKNOWN_CODE = "unknown"


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


# --- requirements ------------------------------------------------------------------------------


def _query(pick: Pick, req: dict[str, Any]) -> dict[str, Any]:
    """The conditions to read a pick with: its own, and every value of each enumerated
    condition the claim requires (so the rows that do not meet it are shown as context)."""
    query = dict(pick.conditions)
    names = pick.metric.split("+")
    for key in req:
        if key in catalog.VALUES and key not in query and all(
                key in catalog.get(pick.experiment, m).conditions for m in names):
            query[key] = list(catalog.VALUES[key])
    return query


def _said(key: str, value: str) -> str:
    means = VALUE_MEANS.get((key, value))
    return f"{key}={value}" + (f" ({means})" if means else "")


def _wants(key: str, want: Any) -> str:
    values = [want] if isinstance(want, str) else list(want)
    return " or ".join(_said(key, v) if key in catalog.VALUES else f"{key} {v}"
                       for v in values)


def unmet(req: dict[str, Any], variant: str, experiment: str, metric: str,
          conditions: dict[str, str]) -> str:
    """Why a measured line does not meet a claim's requirements ("" when it does)."""
    from virtbench.platforms import classes

    why = []
    for key, want in req.items():
        wants = [want] if isinstance(want, str) else list(want)
        if key in ("platform", "accel", "memory"):
            try:
                kind = classes.platform_class(variant)
                host = classes.engine_host(variant)
            except ValueError:
                why.append(f"{variant} is not a registered variant: its platform class is "
                           "unknown")
                continue
            if key == "platform" and kind not in wants:
                why.append(f"{variant} is {classes.PLATFORM_CLASSES[kind]}; the claim assumes "
                           + " or ".join(classes.PLATFORM_CLASSES[w] for w in wants))
            elif key == "accel" and kind.endswith("-vm"):
                accel = kind.split("-")[0]
                if accel not in wants:
                    why.append("emulation: TCG, the claim assumes hardware virtualization"
                               if accel == "emulated" else
                               f"{accel} virtualization, the claim assumes {' or '.join(wants)}")
            elif key == "memory" and host in ("python", "node") and _counts_host(
                    experiment, metric, conditions):
                runtime = "Python worker" if host == "python" else "Node process"
                why.append(f"{metric} counts the {runtime} that embeds the engine; the claim "
                           "speaks of the engine's own memory")
            continue
        value = conditions.get(key, dataset.DEFAULTS.get(key))
        if value is None:
            said = f"{key} not given ({ABSENT_MEANS[key]})" if key in ABSENT_MEANS else \
                f"the row does not state {key}"
            why.append(f"{said}; the claim assumes {_wants(key, want)}")
        elif key in catalog.VALUES:
            if value not in wants:
                why.append(f"{_said(key, value)}; the claim assumes {_wants(key, want)}")
        else:
            op, bound = _bound(str(wants[0])) or ("==", math.nan)
            number = float(value) if value.replace(".", "", 1).isdigit() else math.nan
            ok = {"==": number == bound, ">=": number >= bound, "<=": number <= bound}[op]
            if not ok:
                why.append(f"{key}={value}; the claim assumes {key} {wants[0]}")
    return "; ".join(why)


def _counts_host(experiment: str, metric: str, conditions: dict[str, str]) -> bool:
    """Whether a memory number of an embedded Wasm engine includes its host process: every
    whole-process counter does; the slope over instances inside one process does not."""
    if experiment == "memory" and metric in ("rss_per_instance",):
        return False
    if experiment == "density" and conditions.get("packing") == "one_process":
        return False
    return experiment in ("memory", "density", "startup")


# --- measuring a pick --------------------------------------------------------------------------


def _cond_dict(text: str) -> dict[str, str]:
    pairs = (part.partition("=") for part in text.split(", ") if part)
    return {k: v for k, _, v in pairs}


def _base_conditions(query: dict[str, Any], cond_text: str) -> dict[str, Any]:
    """The baseline's conditions for a group: the query with each multi-valued key fixed to
    the group's value (the same kernel, the same cache state), and the PAIRED keys."""
    have = _cond_dict(cond_text)
    out = dict(query)
    for key, value in query.items():
        if not isinstance(value, str):
            fixed = have.get(key, dataset.DEFAULTS.get(key))
            if fixed is not None:
                out[key] = fixed
    out.update(paired_conditions(cond_text))
    return out


def _memo(ds: Dataset) -> dict:
    """A cache of look-ups for one check of ``ds`` (emptied when its rows change)."""
    memo = ds.__dict__.get("_claims_memo")
    if memo is None or memo[0] is not ds.df:
        memo = (ds.df, {})
        ds.__dict__["_claims_memo"] = memo
    return memo[1]


def _measured(ds: Dataset, variant: str, metric: str, experiment: str | None,
              workload: str | None, conditions: dict[str, Any] | None) -> pd.DataFrame:
    """:meth:`Dataset.measured`, remembered for the check (claims share their picks)."""
    key = ("measured", variant, metric, experiment, workload, repr(sorted(
        (conditions or {}).items())))
    memo = _memo(ds)
    if key not in memo:
        memo[key] = ds.measured(variant, metric, experiment, workload, conditions,
                                censored=True, copy=False)  # read, never changed
    return memo[key]


def _versions(ds: Dataset, variant: str, metric: str, experiment: str,
              workload: str | None, cond_texts: Iterable[str]) -> tuple[set[str], set[str]]:
    """The measuring-code versions (column ``code``; absent or empty: one unknown version)
    and the commits (column ``commit``) of the rows behind a line."""
    codes: set[str] = set()
    commits: set[str] = set()
    for part in metric.split("+"):
        index = _version_index(ds, variant, part, experiment, workload)
        for text in cond_texts:
            more_codes, more_commits = index.get(text, (set(), set()))
            codes |= more_codes
            commits |= more_commits
    return codes, commits


def _version_rows(ds: Dataset, variant: str, metric: str, experiment: str | None
                  ) -> list[tuple[str, str, str, str]]:
    """(workload, conditions text, code version, commit) of each measured row of one metric
    (of ``experiment`` when given); the run's rows are read once per check."""
    memo = _memo(ds)
    if "version rows" not in memo:
        df = ds.df
        rows = df[df["value"].notna() & ~df["warmup"].astype(bool)]
        n = len(rows)
        said: dict[Any, str] = {}
        texts = [said[c] if c in said else said.setdefault(
            c, dataset.conditions_text(dataset.parse_conditions(c))) for c in rows["conditions"]]
        codes = ([str(c) if isinstance(c, str) and c else UNKNOWN_CODE for c in rows["code"]]
                 if "code" in rows.columns else [UNKNOWN_CODE] * n)
        commits = ([str(c) if isinstance(c, str) else "" for c in rows["commit"]]
                   if "commit" in rows.columns else [""] * n)
        by_metric: dict[tuple[str, str], list[tuple]] = {}
        for v, m, e, *line in zip(rows["variant"], rows["metric"], rows["experiment"],
                                  rows["workload"], texts, codes, commits, strict=True):
            by_metric.setdefault((str(v), str(m)), []).append((e, *line))
        memo["version rows"] = by_metric
    return [tuple(line) for e, *line in memo["version rows"].get((variant, metric), [])
            if experiment is None or e == experiment]


def _version_index(ds: Dataset, variant: str, metric: str, experiment: str,
                   workload: str | None) -> dict[str, tuple[set[str], set[str]]]:
    """Conditions text -> (code versions, commits) of the measured rows of one metric."""
    key = ("versions", variant, metric, experiment, workload)
    memo = _memo(ds)
    if key in memo:
        return memo[key]
    index: dict[str, tuple[set[str], set[str]]] = {}
    for wl, text, code, commit in _version_rows(ds, variant, metric, experiment):
        if workload is not None and wl != workload:
            continue
        entry = index.setdefault(text, (set(), set()))
        entry[0].add(code)
        if commit:
            entry[1].add(commit)
    memo[key] = index
    return index


def _grouped(data: pd.DataFrame, keys: list[str]) -> list[tuple[tuple, pd.DataFrame]]:
    """``data.groupby(keys, sort=False)``: (key, rows) in order of first appearance, rows
    with a missing key left out; without building a grouper for a frame of a few rows."""
    at: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(*(data[k].tolist() for k in keys), strict=True)):
        if not any(pd.isna(k) for k in key):
            at.setdefault(key, []).append(i)
    if len(at) == 1 and len(next(iter(at.values()))) == len(data):
        return [(next(iter(at)), data)]  # one group: all of it
    return [(key, data.iloc[positions]) for key, positions in at.items()]


def _paired(group: pd.DataFrame, base: pd.DataFrame) -> tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]:
    """The values of ``group`` and ``base`` paired by run and repetition, and the group's
    censored flags of those pairs: what ``group.merge(base, on=["run_id", "rep"])`` pairs,
    read directly when each (run, rep) occurs once on each side."""
    left = list(zip(group["run_id"].tolist(), group["rep"].tolist(), strict=True))
    right = list(zip(base["run_id"].tolist(), base["rep"].tolist(), strict=True))
    where = {key: i for i, key in enumerate(right)}
    if len(where) < len(right) or len(set(left)) < len(left):
        paired = group.merge(base, on=["run_id", "rep"], suffixes=("", "_b"))
        return (paired["value"].to_numpy(float), paired["value_b"].to_numpy(float),
                paired["censored"].to_numpy(bool))
    mine = [i for i, key in enumerate(left) if key in where]
    theirs = [where[left[i]] for i in mine]
    return (group["value"].to_numpy(float)[mine], base["value"].to_numpy(float)[theirs],
            group["censored"].to_numpy(bool)[mine])


def _measure_pick(ds: Dataset, cm: ClaimMap, pick: Pick, variant: str,
                  query: dict[str, Any] | None = None) -> list[dict] | str | None:
    """Checked items for one variant with this pick; a reason string when the baseline is
    missing; None when the variant has no data for it (the next pick is tried)."""
    query = dict(pick.conditions) if query is None else query
    memo = _memo(ds)
    if ("baseline", cm.baseline) not in memo:  # the first baseline the run has
        memo[("baseline", cm.baseline)] = next((b for b in cm.baseline if len(ds.rows(b))),
                                               cm.baseline[0])
    baseline = memo[("baseline", cm.baseline)]
    if pick.transform in GEOMEAN_TRANSFORMS:
        return _measure_geomean(ds, pick, variant, baseline, query)
    data = _measured(ds, variant, pick.metric, pick.experiment, pick.workload, query)
    if data.empty:
        return None
    unit_out, needs_base = TRANSFORMS[pick.transform]
    unit = unit_out if unit_out is not None else str(data["unit"].iloc[0])
    exact_metric = all(catalog.get(pick.experiment, m).exact for m in pick.metric.split("+"))
    out = []
    base_metric = pick.baseline_metric or pick.metric
    for (wl, cond), group in _grouped(data, ["workload", "conditions"]):
        method = ""
        values = group["value"].to_numpy(float)
        censored = group["censored"].to_numpy(bool)  # values that are only bounds
        bound = next((b for b in group["bound"] if b), "")
        exact = exact_metric
        self_compare = needs_base and variant == baseline
        codes, commits = _versions(ds, variant, pick.metric, pick.experiment, wl, [cond])
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
            base = _measured(ds, baseline, base_metric, pick.experiment, wl,
                             _base_conditions(query, cond))
            if base.empty:
                why = ds.reason(baseline, base_metric, pick.experiment)
                return f"baseline {baseline} has no {base_metric}: {why}"
            more, more_commits = _versions(ds, baseline, base_metric, pick.experiment, wl,
                                           set(base["conditions"]))
            codes, commits = codes | more, commits | more_commits
            mine, theirs, paired_censored = _paired(group, base)
            if mine.size >= 2:
                values = _apply(pick.transform, mine, theirs)
                censored = paired_censored
                method = f"per repetition against {baseline} (pairs matched by rep)"
            else:
                values = _apply(pick.transform, values, float(np.median(base["value"])))
                method = (f"against the median of {baseline} {base_metric} "
                          "(its spread not included)")
            exact = exact and all(catalog.get(pick.experiment, m).exact
                                  for m in base_metric.split("+"))
            if pick.transform in DECREASING:
                bound = FLIPPED.get(bound, bound)
        out.append(dict(workload=wl, conditions=cond, cond=_cond_dict(cond), values=values,
                        unit=unit, method=method, exact=exact, self_compare=self_compare,
                        codes=codes, commits=commits, censored=censored, bound=bound,
                        metric=pick.metric if not needs_base else
                        f"{pick.metric} vs {baseline}"))
    return out


def _measure_geomean(ds: Dataset, pick: Pick, variant: str, baseline: str,
                     query: dict[str, Any]) -> list[dict] | str | None:
    """One item: the geometric mean over the pick's kernels of the ratio of medians to the
    baseline, with its bootstrap CI; a reason when a kernel is missing on either side."""
    kernels = list(query["kernel"])
    others = {k: v for k, v in query.items() if k != "kernel"}
    base_metric = pick.baseline_metric or pick.metric
    pairs, missing, workloads = [], [], []
    codes: set[str] = set()
    commits: set[str] = set()
    for kernel in kernels:
        asked = {**others, "kernel": kernel}
        v = _measured(ds, variant, pick.metric, pick.experiment, pick.workload, asked)
        b = _measured(ds, baseline, base_metric, pick.experiment, pick.workload, asked)
        if v.empty or b.empty:
            missing.append(f"{kernel} on {variant if v.empty else baseline}")
            continue
        workloads += list(v["workload"])
        for who, metric, frame in ((variant, pick.metric, v), (baseline, base_metric, b)):
            more, more_commits = _versions(ds, who, metric, pick.experiment, pick.workload,
                                           set(frame["conditions"]))
            codes, commits = codes | more, commits | more_commits
        a, c = v["value"].to_numpy(float), b["value"].to_numpy(float)
        pairs.append((c, a) if pick.transform == "geomean_pct_of_baseline_time" else (a, c))
    if len(missing) == len(kernels) and all(" on " + variant in m for m in missing):
        return None
    if missing:
        return (f"no samples of kernel {', '.join(missing)}: a geometric mean needs every "
                f"kernel ({', '.join(kernels)})")
    est = stats.geomean_ratio_ci(pairs, confidence=stats.POLICY.confidence,
                                 n_resamples=ds.n_boot)
    unit = TRANSFORMS[pick.transform][0] or ""
    if pick.transform == "geomean_pct_of_baseline_time":
        est = stats.Estimate(100 * est.value, 100 * est.low, 100 * est.high, est.n)
    said = ("100 x " + baseline + " time / variant time" if unit == "%"
            else "variant / " + baseline)
    return [dict(workload=workloads[0] if workloads else "",
                 conditions=f"kernel=geomean({'|'.join(kernels)})", cond={}, estimate=est,
                 unit=unit, exact=False, self_compare=variant == baseline, codes=codes,
                 commits=commits, metric=f"{pick.metric} vs {baseline}",
                 method=f"geometric mean over the kernels of the ratio of medians ({said}), "
                        "bootstrap CI")]


def _judge(claim: _Claim, item: dict, policy: stats.Policy) -> dict:
    """The verdict of one measured item against the claim, under every reading of its unit."""
    readings = _readings(claim, item["unit"])
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


def _item_line(pick: Pick, item: dict, variant: str, claim: _Claim,
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


def _check_reading(ds: Dataset, cm: ClaimMap, reading: Reading, claim: _Claim,
                   variant: str, policy: stats.Policy) -> list[dict]:
    """The lines of one reading for one variant: the first pick whose rows meet the
    requirements answers; the rows of an earlier pick that do not are shown as context."""
    req = {**cm.requires, **reading.requires}
    picks = [p for p in reading.picks if not p.variants
             or selected(p.variants, variant, ds.family(variant))]
    first_reason = ""
    context: list[dict] = []
    for pick in picks:
        got = _measure_pick(ds, cm, pick, variant, _query(pick, req))
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


def _check_variant(ds: Dataset, cm: ClaimMap, claim: _Claim, variant: str,
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
    ds.__dict__.pop("_claims_memo", None)  # look-ups are remembered within one check only
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
    claim = _published_claim(cm, row, pub)
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
            ds, row, pub, cm.spec["among"], cm.readings, cm.requires, cmf.systems, policy, unmet)]
    if cm.kind == costs.KIND:
        return [{**head, **line} for line in costs.check_row(
            ds, row, pub, cm.spec, cm.readings, cm.requires, cmf.systems, policy, unmet)]
    patterns = cm.variants or cmf.systems.get(row["system"], ())
    if not patterns:
        return [{**head, "variant": "", "n": 0,
                 "verdict": f"not measured: no variant stands for {row['system']!r}"}]
    memo = _memo(ds)
    if ("variants", patterns) not in memo:
        memo[("variants", patterns)] = ds.variants(patterns)
    variants = memo[("variants", patterns)]
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

    Within a reading, a variant's tallied lines (its kernels, workloads, conditions) give
    the variant's verdict when they agree; the reading's verdict is the one its variants
    agree on, else "mixed" (only variants disagreeing make it mixed). The claim gets a verdict
    when every reading with tallied lines agrees, else "depends on the reading" (each
    reading's verdict in the detail, not tallied). Tallied lines whose rows come from more
    than one measuring-code version give "several code versions" (not tallied). A claim with
    no tallied line gets the most informative class among its lines (inconclusive, not
    comparable, not measured, not measurable here) and is not tallied.
    """
    out = []
    if check_table.empty:
        return pd.DataFrame(columns=CLAIM_COLUMNS)
    table = check_table
    if "reading" not in table.columns:
        table = table.assign(reading="")
    for (claim_id, family), group in _groups(_records(table), "claim_id", "family").items():
        first = group[0]
        counted = [r for r in group if r["tallied"]]
        if counted:
            verdict, detail, tallied = _counted_verdict(counted)
        else:
            classes = [verdict_class(r["verdict"]) for r in group]
            if any(c in DECIDED for c in classes):  # decided, but not comparable/self
                verdict = "not comparable"
            else:
                verdict = min(classes, key=lambda c: VERDICT_ORDER.index(c)
                              if c in VERDICT_ORDER else len(VERDICT_ORDER))
            reasons = sorted(dict.fromkeys(r["reason"] for r in group if r["reason"]),
                             key=lambda r: not r.startswith(CONTEXT))
            detail = "; ".join(reasons)[:300]
            tallied = False
        out.append(dict(claim_id=claim_id, source=first["source"], line=first["line"],
                        claim=first["claim"], claimed=first["claimed"], family=family,
                        verdict=verdict, tallied=tallied, lines=len(group), detail=detail))
    return pd.DataFrame(out, columns=CLAIM_COLUMNS)


_ROW_FIELDS = ("claim_id", "family", "source", "line", "claim", "claimed", "verdict",
               "tallied", "reason", "reading", "variant", "metric", "conditions", "code",
               "commit")


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The check lines as plain dicts of the fields the claim-level verdicts read (a field
    the table lacks is absent from them, as its column is)."""
    fields = [f for f in _ROW_FIELDS if f in table.columns]
    columns = [table[f].tolist() for f in fields]
    return [dict(zip(fields, values, strict=True)) for values in zip(*columns, strict=True)]


def _groups(rows: list[dict[str, Any]], *keys: str) -> dict[Any, list[dict[str, Any]]]:
    """Rows grouped by ``keys`` in order of first appearance, rows with a missing key left
    out (as ``DataFrame.groupby(keys, sort=False)`` does); one key: the value itself."""
    out: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        if any(pd.isna(k) for k in key):
            continue
        out.setdefault(key if len(keys) > 1 else key[0], []).append(row)
    return out


def _counted_verdict(counted: list[dict[str, Any]]) -> tuple[str, str, bool]:
    """(verdict, detail, tallied) of a claim and family from its tallied lines."""
    versions = _code_versions(counted)
    per_reading: dict[str, tuple[str, str]] = {}
    for name, lines in _groups(counted, "reading").items():
        per_reading[str(name)] = _reading_verdict(lines)
    verdicts = list(dict.fromkeys(v for v, _ in per_reading.values()))
    if len(per_reading) == 1:
        verdict, detail = verdicts[0], next(iter(per_reading.values()))[1]
    elif len(verdicts) == 1:
        verdict = verdicts[0]
        detail = "the readings agree: " + "; ".join(
            f"{name}: {v}" + (f" ({d})" if d else "") for name, (v, d) in per_reading.items())
    else:
        verdict = "depends on the reading"
        detail = "; ".join(f"reading {name or '(unnamed)'}: {v}" + (f" ({d})" if d else "")
                           for name, (v, d) in per_reading.items())
    if len(versions) > 1:
        commits = _commits(counted)
        said = ", ".join(versions) + (f" (commits {', '.join(commits)})" if commits else "")
        return ("several code versions",
                f"rows from {len(versions)} measuring-code versions: {said} (else: {verdict})",
                False)
    return verdict, detail, verdict in (*DECIDED, "mixed")


def _reading_verdict(lines: list[dict[str, Any]]) -> tuple[str, str]:
    """A reading's verdict over its variants, and the detail when it is not one verdict."""
    by_variant: dict[str, str | None] = {}
    split: list[str] = []
    for variant, own in _groups(lines, "variant").items():
        classes = list(dict.fromkeys(verdict_class(r["verdict"]) for r in own))
        if len(classes) == 1:
            by_variant[str(variant)] = classes[0]
        else:
            by_variant[str(variant)] = None
            split.append(f"{variant} lines disagree (" + "; ".join(
                f"{r['metric']}{' ' + r['conditions'] if r['conditions'] else ''}: "
                f"{verdict_class(r['verdict'])}"
                for r in own) + ")")
    decided = list(dict.fromkeys(v for v in by_variant.values() if v))
    if not decided:
        return "inconclusive", "; ".join(split)
    if len(decided) == 1:
        return decided[0], "; ".join(split)
    detail = "; ".join(f"{v}: {c}" for v, c in by_variant.items() if c)
    return "mixed", "; ".join([detail, *split])


def _code_versions(lines: list[dict[str, Any]]) -> list[str]:
    """The measuring-code versions behind lines ([] when the table does not say)."""
    if not lines or "code" not in lines[0]:
        return []
    return list(dict.fromkeys(c for r in lines
                              for c in (str(r["code"]).split(", ") if r["code"]
                                        else [UNKNOWN_CODE])))


def _commits(lines: list[dict[str, Any]]) -> list[str]:
    if not lines or "commit" not in lines[0]:
        return []
    return sorted({c for r in lines for c in str(r["commit"]).split(", ")
                   if c and c != "nan"})


def tally(check_table: pd.DataFrame, verdicts: pd.DataFrame | None = None) -> dict[str, int]:
    """How many (claim, family) pairs fall in each verdict family (``verdicts``: the
    :func:`claim_verdicts` of the table, when already computed)."""
    counts: dict[str, int] = {}
    for v in (claim_verdicts(check_table) if verdicts is None else verdicts)["verdict"]:
        counts[v] = counts.get(v, 0) + 1
    return {v: counts[v] for v in sorted(counts, key=lambda c: VERDICT_ORDER.index(c)
                                         if c in VERDICT_ORDER else len(VERDICT_ORDER))}


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

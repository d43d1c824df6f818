"""The claim map ``papers/claims.toml``: read it, validate it against the published CSVs and
the metric catalog (every problem names file and line), keep it loaded once per path, list
which mappings cover each published row, and select claims by what they are (notebook,
aspect, source) rather than by key."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from virtbench import catalog, costs, patterns, published, rankings
from virtbench.claims.model import ClaimMap, ClaimMapError, ClaimMapFile, Pick, Reading
from virtbench.claims.pubrows import PubColumns, published_rows, same_text
from virtbench.claims.requirements import REQUIREMENTS, parse_bound
from virtbench.claims.transforms import GEOMEAN_TRANSFORMS, TRANSFORMS
from virtbench.paths import papers_dir

MAP_FILE = "claims.toml"


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
    if "aspect" in entry and not (isinstance(entry["aspect"], str) and entry["aspect"].strip()):
        raise fail("aspect", f"aspect {entry['aspect']!r} is not valid; a short text naming "
                   "what the claim is about, e.g. \"startup\"")

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
            if not any(same_text(metric, columns.columns["metric"][i]) for i in of_source):
                raise fail(cm, metric, f"no published {cm.source} row has metric {metric!r}")
        for system in cm.systems:
            if not any(same_text(system, columns.columns["system"][i]) for i in of_source):
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
            if len(wants) != 1 or parse_bound(wants[0]) is None:
                raise fail(cm, (at, key), f"requirement {key}={want!r} is not valid; a "
                           "number, or a bound such as \">=512\" or \"<=256\"")
        if key in catalog.CONDITIONS and picks and not any(
                key in catalog.get(p.experiment, m).conditions
                for p in picks for m in p.metric.split("+")):
            raise fail(cm, (at, key), f"requirement {key!r}: no metric of these picks takes "
                       "that condition, so no line could meet it")


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


def claims_for(*, notebook: str | None = None, aspect: str | Sequence[str] | None = None,
               source: str | None = None, measurable: bool | None = None,
               cmf: ClaimMapFile | None = None) -> tuple[ClaimMap, ...]:
    """The claims (of ``cmf``, default the shipped map) matching every filter given, in map
    order: shown by ``notebook``, about ``aspect`` (one or several), of published ``source``,
    ``measurable`` here (True) or marked not measurable (False). ValueError naming a
    notebook, aspect or source no claim has, and the valid ones."""
    cmf = cmf or claim_map()
    aspects = (aspect,) if isinstance(aspect, str) else tuple(aspect or ())
    for name, wanted, known in (
            ("notebook", (notebook,) if notebook else (), {n for c in cmf.claims
                                                           for n in c.notebooks}),
            ("aspect", aspects, {c.aspect for c in cmf.claims if c.aspect}),
            ("source", (source,) if source else (), {c.source for c in cmf.claims})):
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise ValueError(f"no claim has {name} {unknown[0]!r}; valid: "
                             f"{', '.join(sorted(known))}")
    return tuple(cm for cm in cmf.claims
                 if (notebook is None or notebook in cm.notebooks)
                 and (not aspects or cm.aspect in aspects)
                 and (source is None or cm.source == source)
                 and (measurable is None or measurable != bool(cm.not_measurable)))


def keys_for(*, notebook: str | None = None, aspect: str | Sequence[str] | None = None,
             source: str | None = None, measurable: bool | None = None,
             cmf: ClaimMapFile | None = None) -> tuple[str, ...]:
    """The keys of :func:`claims_for` (the same filters), in map order."""
    return tuple(cm.key for cm in claims_for(notebook=notebook, aspect=aspect, source=source,
                                             measurable=measurable, cmf=cmf))


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

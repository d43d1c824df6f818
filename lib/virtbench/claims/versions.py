"""The measuring-code versions and commits of the rows behind a checked line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from virtbench.claims.lookups import memo_of
from virtbench.conditions import conditions_text, parse_conditions
from virtbench.dataset import Dataset

UNKNOWN_CODE = "unknown"


def row_versions(ds: Dataset, variant: str, metric: str, experiment: str,
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
    memo = memo_of(ds)
    if "version rows" not in memo:
        df = ds.df
        rows = df[df["value"].notna() & ~df["warmup"].astype(bool)]
        n = len(rows)
        said: dict[Any, str] = {}
        texts = [said[c] if c in said else said.setdefault(
            c, conditions_text(parse_conditions(c))) for c in rows["conditions"]]
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
    memo = memo_of(ds)
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

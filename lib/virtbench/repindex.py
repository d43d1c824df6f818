"""One value per repetition for every (variant, metric, experiment) of a run, computed at once.

:meth:`virtbench.dataset.Dataset.measured` reduces the readings of one repetition to their
median. Done one request at a time, each request filters the run's rows and groups them
again; a claims check makes hundreds of requests. :class:`RepIndex` groups every measured
row of the run once, by (variant, metric, experiment, run, host, workload, conditions, rep),
and answers a request by picking its groups: the same groups, aggregated over the same rows
in the same order, so the same values. A request's conditions keep or drop whole groups (the
conditions text is one of the group's keys), which is why they can be applied afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

#: The columns that make one repetition (besides variant, metric and experiment).
KEYS = ["run_id", "host", "workload", "conditions", "rep"]
_WHERE = ["variant", "metric", "experiment"]


class RepIndex:
    """The per-repetition groups of one frame (``censored``: rows without a value that carry
    a bound count, with the bound as value; see :meth:`Dataset.measured`). ``conditions_text``,
    ``parse`` and ``plain`` are :mod:`virtbench.dataset`'s own helpers."""

    def __init__(self, df: pd.DataFrame, censored: bool, bounds: pd.DataFrame | None,
                 conditions_text: Callable[[str], str],
                 parse: Callable[[str], dict[str, str]],
                 plain: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
        r = df
        if censored:
            assert bounds is not None
            r = r.assign(value=r["value"].fillna(bounds["bound"]),
                         censored=bounds["bound_kind"] != "", bound=bounds["bound_kind"])
        r = r[r["value"].notna() & ~r["warmup"]]
        raw = list(dict.fromkeys(r["conditions"]))
        texts = {c: conditions_text(c) for c in raw}
        #: conditions text -> the conditions it stands for (None: two different ones)
        self.parsed: dict[str, dict[str, str] | None] = {}
        for c in raw:
            cond, text = parse(c), texts[c]
            if text in self.parsed and self.parsed[text] != cond:
                self.parsed[text] = None
            else:
                self.parsed[text] = cond
        r = r.assign(conditions=[texts[c] for c in r["conditions"]])
        agg = dict(value=("value", "median"), unit=("unit", "first"),
                   commit=("commit", "first"), code=("code", "first"))
        if censored:  # one repetition: one cell, one code
            agg.update(censored=("censored", "any"), bound=("bound", "max"))
        self.columns = KEYS + ["value", "unit", "commit", "code"] + (
            ["censored", "bound"] if censored else [])
        groups = r.groupby(_WHERE + KEYS, sort=False).agg(**agg).reset_index()
        self.table = plain(groups[self.columns])
        self.where = {tuple(str(x) for x in k): np.asarray(v) for k, v in
                      groups.groupby(_WHERE, sort=False).indices.items()}
        self._texts = self.table["conditions"].to_numpy(object)
        self._workloads = self.table["workload"].to_numpy(object)
        self._empty: pd.DataFrame | None = None
        self._parts: dict[tuple[str, str, str], tuple[pd.DataFrame, np.ndarray, np.ndarray]] = {}

    def empty(self, make: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """The answer to a request no repetition meets: ``make()``, kept after the first
        (callers build a new frame from what they get, never change it)."""
        if self._empty is None:
            self._empty = make()
        return self._empty

    def ambiguous(self) -> bool:
        """Whether two different condition sets share one conditions text (then a request's
        conditions could split a group: read it row by row instead)."""
        return any(c is None for c in self.parsed.values())

    def select(self, variant: str, metric: str, experiment: str, workload: str | None,
               keep: Callable[[Mapping[str, str]], bool]) -> pd.DataFrame:
        """The repetitions of (variant, metric, experiment), of ``workload`` when given, whose
        conditions ``keep`` accepts; in the order their first rows come in the frame. The
        frame may be one the index keeps: build a new one from it, never change it."""
        key = (variant, metric, experiment)
        if key not in self._parts:
            at = self.where.get(key)
            if at is None:
                return self.table.iloc[0:0].reset_index(drop=True)
            self._parts[key] = (self.table.iloc[at].reset_index(drop=True),
                                self._texts[at], self._workloads[at])
        part, texts, workloads = self._parts[key]
        verdict: dict[str, bool] = {}
        mask = np.zeros(len(part), dtype=bool)
        for i, (text, wl) in enumerate(zip(texts, workloads, strict=True)):
            if workload is not None and wl != workload:
                continue
            if text not in verdict:
                verdict[text] = keep(self.parsed[text] or {})
            mask[i] = verdict[text]
        return part if mask.all() else part[mask].reset_index(drop=True)

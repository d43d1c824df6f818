"""The notebooks' read access to a run: samples, reasons, summaries, comparisons.

:class:`Dataset` holds the rows of one run (or several) and its host facts. A sample is one
value per repetition: readings inside one repetition (same run, workload, conditions and
rep) are correlated and are reduced to their median first, so the repetition is the
statistical unit. Conditions (``network``, ``state``, ``guest_memory_mib`` ...) are a column
of the rows; a request names the conditions it wants, and the opt-in alternates
(:data:`OPT_IN`) are left out unless asked for.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from virtbench import catalog, stats
from virtbench.censored import row_bounds
from virtbench.conditions import (
    Conditions,
    condition_value,
    conditions_text,
    parse_conditions,
    row_conditions_text,
    wanted,
    with_conditions,
    without_condition,
)
from virtbench.host import read_host_json, run_hosts
from virtbench.paths import datasets_dir, reference_dir
from virtbench.patterns import selected
from virtbench.platforms.native import BASELINE
from virtbench.reasons import Reasons
from virtbench.repindex import RepIndex
from virtbench.results import DatasetError, decode_tags, load_runs

REFERENCE = "reference"  # the run shipped with the project
#: ``RUN@HOST``: the rows one host of a campaign measured (``virtbench compare`` and the
#: notebooks' ``run_id`` take it).
HOST_SEPARATOR = "@"
GEOMEAN = "geomean"
#: Columns saying what measured a row: the git commit and the measuring code's fingerprint.
_MEASURED_BY = ("commit", "code")
def plain_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its text columns as plain Python strings (object dtype): pandas'
    Arrow-backed strings make the many small look-ups of a report several times slower."""
    text = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c])
            and frame[c].dtype != object]
    return frame.astype({c: object for c in text}) if text else frame


def run_root(run: str, root: Path) -> Path:
    """The folder holding ``run``: ``root``, except that the shipped reference run stays
    visible whatever ``root`` (``--datasets``, ``$VIRTBENCH_DATASETS``) points at."""
    if run == REFERENCE and not (root / run).is_dir():
        return reference_dir().parent
    return root


def _variant_order() -> list[str]:
    from virtbench.platforms import VARIANTS

    return list(VARIANTS)


@dataclass
class Dataset(Reasons):
    """The rows of one run (or several), its host facts, and helpers to read them."""

    df: pd.DataFrame
    host: dict = field(default_factory=dict)
    run_id: str = ""
    n_boot: int = 9999
    hosts: dict[str, dict] = field(default_factory=dict)  # name -> that host's host.json
    files: list[Path] = field(default_factory=list)  # the run folders' files it was read from

    def __post_init__(self) -> None:
        if "conditions" not in self.df.columns:
            self.df = self.df.assign(conditions="")
        if "host" not in self.df.columns:
            self.df = self.df.assign(host=str(self.host.get("hostname") or "unknown host"))
        for column in _MEASURED_BY:  # "" when not known (a hand-made frame)
            if column not in self.df.columns:
                self.df = self.df.assign(**{column: ""})
        self.df["conditions"] = self.df["conditions"].fillna("")
        self.df = plain_strings(self.df)

    @classmethod
    def load(cls, run_id: str | Sequence[str] = "reference", datasets: str | Path | None = None,
             variants: Sequence[str] = (), n_boot: int = 9999, *,
             history: bool = False) -> Dataset:
        """Load ``datasets/<run_id>`` (``datasets`` "" or None: the default root); a run id
        ``RUN@HOST`` loads only the rows of that host of a campaign. The rows are the current
        ones; ``history`` keeps superseded readings too (their ``status`` says so)."""
        root = Path(datasets) if datasets else datasets_dir()
        ids = [run_id] if isinstance(run_id, str) else list(run_id)
        frames, hosts, index, files = [], {}, {}, []
        for rid in ids:
            run, _, name = rid.partition(HOST_SEPARATOR)
            where = run_root(run, root)
            files += sorted(p for p in (where / run).rglob("*")
                            if p.is_file() and p.name != "writer.lock")
            df = load_runs(run, root=where, history=history)
            facts = run_hosts(where / run)
            index = index or read_host_json(where / run)
            if name:
                known = sorted(set(facts) | set(df["host"]))
                if name not in known:
                    raise DatasetError(f"run {run!r} has no host {name!r}; its hosts: "
                                       f"{', '.join(known) or 'none'}")
                df, facts = df[df["host"] == name], {name: facts.get(name, {})}
            frames.append(df)
            hosts.update(facts)
        df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        host = next(iter(hosts.values())) if len(hosts) == 1 else index
        ds = cls(df.reset_index(drop=True), host, ", ".join(ids), n_boot, hosts, files)
        if variants:
            keep = [v for v in ds.variants() if selected(variants, v, ds.family(v))]
            ds.df = ds.df[ds.df["variant"].isin(keep)].reset_index(drop=True)
        return ds

    # -- what is there
    def variants(self, patterns: Sequence[str] = ()) -> list[str]:
        """Variants in the data (in registry order), optionally only those matching patterns."""
        present = list(self._indexes()[0])  # in order of first appearance
        order = {v: i for i, v in enumerate(_variant_order())}
        present.sort(key=lambda v: (order.get(v, len(order)), v))
        if not patterns:
            return present
        return [v for v in present if selected(patterns, v, self.family(v))]

    def family(self, variant: str) -> str:
        return self._indexes()[2].get(variant) or variant.split("/")[0]

    def rows(self, variant: str | None = None, metric: str | None = None,
             experiment: str | None = None, workload: str | None = None) -> pd.DataFrame:
        """All rows (measured or with a reason) matching the given fields."""
        frame = self.df
        by_variant, by_metric, _ = self._indexes()
        key = (variant, metric, experiment, workload)
        if key in self._rows:
            return self._rows[key]
        if variant is not None and metric is not None:  # the usual look-up: indexed
            frame = by_metric.get((variant, metric), frame.iloc[0:0])
            metric = None
        elif variant is not None:
            frame = by_variant.get(variant, frame.iloc[0:0])
        for column, value in (("metric", metric), ("experiment", experiment),
                              ("workload", workload)):
            if value is not None:
                frame = frame[frame[column] == value]
        if experiment is not None or workload is not None:  # filtered: kept for the next ask
            self._rows[key] = frame
        return frame

    def _indexes(self) -> tuple[dict, dict, dict[str, str]]:
        """Rows by variant, rows by (variant, metric), family by variant: built once per
        frame (a new ``df`` builds them again)."""
        if getattr(self, "_indexed", None) is not self.df:
            self._index = (
                {str(v): g for v, g in self.df.groupby("variant", sort=False)},
                {(str(v), str(m)): g
                 for (v, m), g in self.df.groupby(["variant", "metric"], sort=False)},
                {str(v): str(f) for v, f in
                 self.df[["variant", "family"]].drop_duplicates("variant").itertuples(
                     index=False)})
            self._measured: dict[tuple, pd.DataFrame] = {}
            self._rows: dict[tuple, pd.DataFrame] = {}
            self._conditions: dict[tuple, list[str]] | None = None
            self._reason_index: dict[tuple, tuple] | None = None
            self._indexed = self.df
        return self._index

    def bounds(self) -> pd.DataFrame:
        """Every row's censoring (:func:`row_bound`): columns ``bound`` (nan: none) and
        ``bound_kind`` ("upper", "lower" or ""), indexed like :attr:`df`."""
        if getattr(self, "_bounded", None) is not self.df:  # computed once per frame
            bound, kind = row_bounds(self.df)
            self._bound_frame = pd.DataFrame({"bound": bound, "bound_kind": kind},
                                             index=self.df.index)
            self._bounded = self.df
        return self._bound_frame

    def measured(self, variant: str, metric: str, experiment: str | None = None,
                 workload: str | None = None, conditions: Conditions | None = None,
                 censored: bool = False, *, copy: bool = True) -> pd.DataFrame:
        """One value per repetition: measured non-warm-up rows fitting ``conditions`` (see
        :func:`wanted`), readings of one repetition reduced to their median; ``metric``
        "a+b" sums a and b per repetition. Columns: run_id, workload, conditions, rep,
        value, unit, commit and code (``conditions`` as text, "" when none; ``commit`` and
        ``code`` say what measured the repetition, "a | b" when a sum's parts differ).

        ``censored``: rows without a value that carry a bound (:func:`row_bound`) are
        repetitions too, with the bound as value; two more columns say which: ``censored``
        (bool) and ``bound`` ("upper": the value is at most this; "lower"; "" when exact).
        A repetition with a censored reading is censored; a sum of an upper and a lower
        bound bounds nothing and is left out. Hand them to :func:`stats.check_claim`.

        ``copy`` False: the frame the dataset keeps for the next such request, not a copy
        (for a reader that never changes it)."""
        self._indexes()
        asked = tuple(sorted((k, v if isinstance(v, str) else tuple(v))
                             for k, v in (conditions or {}).items()))
        key = (variant, metric, experiment, workload, asked, censored)
        if key not in self._measured:  # a report asks for the same sample many times
            self._measured[key] = self._measure(variant, metric, experiment, workload,
                                                conditions, censored)
        return self._measured[key].copy() if copy else self._measured[key]

    def _rep_index(self, censored: bool) -> RepIndex | None:
        """Every repetition of the frame grouped once (:mod:`virtbench.repindex`); None when
        a request must read the rows one by one (no ``warmup`` column, or two condition sets
        written as one text)."""
        if getattr(self, "_rep_indexed", None) is not self.df:
            self._rep_indexes: dict[bool, RepIndex | None] = {}
            self._rep_indexed = self.df
        if censored not in self._rep_indexes:
            index = None
            if {"warmup", "experiment", "unit"} <= set(self.df.columns) and len(self.df):
                index = RepIndex(self.df, censored, self.bounds() if censored else None,
                                 row_conditions_text, parse_conditions, plain_strings)
                index = None if index.ambiguous() else index
            self._rep_indexes[censored] = index
        return self._rep_indexes[censored]

    def _measure(self, variant: str, metric: str, experiment: str | None,
                 workload: str | None, conditions: Conditions | None,
                 censored: bool) -> pd.DataFrame:
        keys = ["run_id", "host", "workload", "conditions", "rep"]
        extra = ["censored", "bound"] if censored else []
        index = self._rep_index(censored) if experiment is not None else None
        frames = []
        for part in metric.split("+"):
            if index is None:
                found = self._reps(self.rows(variant, part, experiment, workload), conditions,
                                   censored)
            else:
                found = index.select(variant, part, experiment, workload,
                                     lambda cond: wanted(cond, conditions))
                if found.empty:  # the frame reading no row gives (its columns' dtypes)
                    found = index.empty(lambda: self._reps(self.df.iloc[0:0], None, censored))
            frames.append(found)
        return self._join_parts(metric, frames, keys, extra, censored)

    def _reps(self, r: pd.DataFrame, conditions: Conditions | None,
              censored: bool) -> pd.DataFrame:
        """The repetitions of some rows of one metric that fit ``conditions`` (what
        :class:`RepIndex` gives for all of them at once)."""
        keys = ["run_id", "host", "workload", "conditions", "rep"]
        extra = ["censored", "bound"] if censored else []
        if censored:
            b = self.bounds().loc[r.index]
            r = r.assign(value=r["value"].fillna(b["bound"]),
                         censored=b["bound_kind"] != "", bound=b["bound_kind"])
        r = r[r["value"].notna() & ~r["warmup"]]
        if len(r):
            keep = [wanted(parse_conditions(c), conditions) for c in r["conditions"]]
            r = r[keep]
        r = r.assign(conditions=[row_conditions_text(c) for c in r["conditions"]])
        agg = dict(value=("value", "median"), unit=("unit", "first"),
                   commit=("commit", "first"), code=("code", "first"))
        if censored:  # one repetition: one cell, one code
            agg.update(censored=("censored", "any"), bound=("bound", "max"))
        per_rep = r.groupby(keys, sort=False).agg(**agg).reset_index()
        return plain_strings(per_rep[keys + ["value", "unit", *_MEASURED_BY] + extra])

    @staticmethod
    def _join_parts(metric: str, frames: list[pd.DataFrame], keys: list[str],
                    extra: list[str], censored: bool) -> pd.DataFrame:
        """The parts of a metric "a+b" summed per repetition (one part: itself)."""
        joined = frames[0]
        if len(frames) == 1 and joined.index.equals(pd.RangeIndex(len(joined))):
            return joined
        joined = joined.reset_index(drop=True)
        for other in frames[1:]:
            joined = joined.merge(other, on=keys, how="inner", suffixes=("", "_b"))
            if (joined["unit"] != joined["unit_b"]).any():
                raise ValueError(f"cannot sum {metric}: units differ")
            joined["value"] = joined["value"] + joined["value_b"]
            if censored:
                joined = joined[~(joined["bound"].ne("") & joined["bound_b"].ne("")
                                  & joined["bound"].ne(joined["bound_b"]))]
                joined["censored"] = joined["censored"] | joined["censored_b"]
                joined["bound"] = joined["bound"].where(joined["bound"] != "",
                                                        joined["bound_b"])
            for column in _MEASURED_BY:
                joined[column] = [a if a == b else f"{a} | {b}" for a, b in
                                  zip(joined[column], joined[f"{column}_b"], strict=True)]
            joined = plain_strings(joined[keys + ["value", "unit", *_MEASURED_BY] + extra])
        return joined

    def sample(self, variant: str, metric: str, experiment: str | None = None,
               workload: str | None = None, conditions: Conditions | None = None
               ) -> np.ndarray:
        """The values of :meth:`measured`; an error if they mix several condition sets or
        several hosts."""
        data = self.measured(variant, metric, experiment, workload, conditions)
        hosts = list(dict.fromkeys(data["host"]))
        if len(hosts) > 1:
            raise ValueError(f"{variant} {metric} was measured on several hosts "
                             f"({', '.join(hosts)}); take one host's rows with "
                             f"Dataset.for_host(NAME) or load RUN{HOST_SEPARATOR}HOST")
        sets = list(dict.fromkeys(data["conditions"]))
        if len(sets) > 1:
            raise ValueError(f"{variant} {metric} was measured under several conditions "
                             f"({' | '.join(sets)}); say which with conditions={{...}}")
        return data["value"].to_numpy(float)

    def ratio_sample(self, variant: str, metric: str, experiment: str | None = None,
                     baseline: str = BASELINE, conditions: Conditions | None = None
                     ) -> tuple[np.ndarray, str]:
        """One ratio ``variant`` / ``baseline`` of ``metric`` per repetition, and how it was
        formed: paired by repetition (same run, host and rep) when at least two pairs exist,
        else each value over the baseline's median (its spread not included). Empty when
        either side has no samples. Judge it with :func:`stats.check_claim` (the policy's
        n, order-statistic CI and tolerance)."""
        keys = ["run_id", "host", "rep"]
        a = self.measured(variant, metric, experiment, None, conditions)
        b = self.measured(baseline, metric, experiment, None, conditions)
        if a.empty or b.empty or b["value"].median() == 0:
            return np.array([]), ""
        paired = a.merge(b, on=keys + ["workload", "conditions"], suffixes=("", "_b"))
        if len(paired) >= 2:
            return ((paired["value"] / paired["value_b"]).to_numpy(float),
                    f"per repetition against {baseline} (pairs matched by rep)")
        return ((a["value"] / b["value"].median()).to_numpy(float),
                f"against the median of {baseline} (its spread not included)")

    # -- what the host could run
    def accelerator(self, variant: str) -> str:
        """The accelerator a VM variant ran under on this run's host ("TCG", "KVM"), read
        from host.json's ``accelerators``; "" when the host did not run it."""
        for facts in (self.hosts or {"": self.host}).values():
            text = str((facts.get("accelerators") or {}).get(variant, ""))
            found = re.search(r"accelerator (\w+)", text)
            if found:
                return found.group(1).upper()
        return ""

    def virtualization(self) -> tuple[bool, str]:
        """Whether a VM ran with hardware virtualization (KVM) on this run's host, and a
        sentence saying what its VM variants ran under (host.json's accelerators and CPU
        virtualization flags) and why those that did not run did not (their rows' reason)."""
        vms = [v for v in self.variants() if self.family(v) == "vm"]
        ran: dict[str, list[str]] = {}
        missing: dict[str, list[str]] = {}  # reason -> variants
        for v in vms:
            accel = self.accelerator(v)
            if accel:
                ran.setdefault(accel, []).append(v)
            else:
                why = (self.row_reason(v, "startup", "startup")
                       or "no accelerator recorded in host.json")
                missing.setdefault(why, []).append(v)
        facts = list(self.hosts.values()) or [self.host]
        flags = sorted({f for h in facts for f in h.get("cpu_virtualization_flags") or []})
        said = {"TCG": "TCG (software emulation)", "KVM": "KVM (hardware virtualization)"}
        parts = [f"CPU virtualization flags: {', '.join(flags) or 'none'}"]
        parts += [f"ran under {said.get(a, a)}: {', '.join(vs)}" for a, vs in ran.items()]
        if missing:
            parts.append("did not run: " + "; ".join(f"{', '.join(vs)} ({why})"
                                                     for why, vs in missing.items()))
        if not vms:
            parts.append("no VM variant in this run")
        return "KVM" in ran, "VMs on this host (host.json): " + "; ".join(parts)

    def unit(self, metric: str) -> str:
        first = metric.split("+")[0]
        units = self.df.loc[self.df["metric"] == first, "unit"]
        return str(units.iloc[0]) if len(units) else ""

    def first_measured(self, variant: str, picks: Sequence) -> tuple[str, np.ndarray]:
        """The first pick (an object with metric, experiment, workload, conditions and
        variants) with samples for ``variant``, and its samples."""
        for pick in picks:
            if pick.variants and not selected(pick.variants, variant, self.family(variant)):
                continue
            data = self.measured(variant, pick.metric, pick.experiment, pick.workload,
                                 pick.conditions)
            if len(data):
                first = data[data["conditions"] == data["conditions"].iloc[0]]
                return pick.metric, first["value"].to_numpy(float)
        return "", np.array([])

    def description(self, metric: str, variant: str | None = None,
                    conditions: str | None = None) -> str:
        """What a metric's rows say they measured; ``conditions`` (as :func:`conditions_text`
        gives them, e.g. "state=loaded") picks the rows measured under those."""
        rows = self.rows(variant, metric)
        if conditions is not None:
            keep = np.array([conditions_text(parse_conditions(c)) == conditions
                             for c in rows["conditions"]], dtype=bool)
            rows = rows.loc[keep]
        d = [x for x in rows["description"].unique() if x]
        return d[0] if d else ""

    # -- the parsed parts of rows and lines
    @staticmethod
    def tag(rows: pd.DataFrame, name: str) -> pd.Series:
        """Each row's tag ``name`` as text, "" where the row has none (``tags`` parsed)."""
        return pd.Series([str(decode_tags(t if isinstance(t, str) else "").get(name, ""))
                          for t in rows["tags"]], index=rows.index, dtype=object)

    @staticmethod
    def condition(frame: pd.DataFrame, key: str) -> pd.Series:
        """Each row's or summary line's condition ``key``, else the value a row without it
        was measured under (``conditions.DEFAULTS``), else ""."""
        return pd.Series([condition_value(c, key) for c in frame["conditions"]],
                         index=frame.index, dtype=object)

    @staticmethod
    def under(lines: pd.DataFrame, key: str, value: str) -> pd.DataFrame:
        """The lines (of :meth:`summary` or :meth:`samples`) measured with condition ``key``
        = ``value``, each metric labelled with its other conditions, e.g. "rss
        (guest_memory_mib=256)"."""
        part = lines[(Dataset.condition(lines, key) == value).to_numpy(bool)]
        return part.assign(metric=[with_conditions(m, without_condition(c, key)) for m, c
                                   in zip(part["metric"], part["conditions"], strict=True)])

    # -- summaries
    def estimate(self, values: np.ndarray) -> stats.Estimate:
        return stats.median_ci(values, n_resamples=self.n_boot)

    def summary(self, metrics: Sequence[str], variants: Sequence[str] = (),
                experiment: str | None = None, workload: str | None = None,
                complete: bool = True, conditions: Conditions | None = None) -> pd.DataFrame:
        """Median and 95% CI per (variant, metric, workload, conditions), or the reason it is
        missing.

        ``complete``: every requested variant and metric appears, measured or not; else
        only the metrics a variant has rows for (a variant with none of them gets one line
        with the reason). ``text`` holds "median [low, high] unit" or "not measured: reason".
        """
        lines = []
        chosen = self.variants(variants) if variants else self.variants()
        for variant in chosen if metrics else []:
            chosen_metrics = list(metrics)
            if not complete:
                has = set(self.rows(variant, None, experiment)["metric"])
                chosen_metrics = [m for m in metrics if set(m.split("+")) <= has]
                if not chosen_metrics:
                    lines.append(dict(variant=variant, family=self.family(variant),
                                      metric=" / ".join(metrics[:3]) + (" ..." if len(metrics)
                                                                         > 3 else ""),
                                      workload=workload or "", conditions="", unit="", n=0,
                                      median=math.nan,
                                      ci_low=math.nan, ci_high=math.nan, warnings="",
                                      text="not measured: " + (
                                          self.row_reason(variant, metrics[0], experiment)
                                          or self.absent(variant, metrics,
                                                         [experiment] if experiment else []))))
                    continue
            for metric in chosen_metrics:
                data = self.measured(variant, metric, experiment, workload, conditions)
                unit = self.unit(metric)
                if data.empty:
                    lines.append(dict(variant=variant, family=self.family(variant),
                                      metric=metric, workload=workload or "", conditions="",
                                      unit=unit, n=0,
                                      median=math.nan, ci_low=math.nan, ci_high=math.nan,
                                      text=self._why_empty(variant, metric, experiment,
                                                           conditions),
                                      warnings=""))
                    continue
                for (wl, cond, host), group in data.groupby(["workload", "conditions", "host"],
                                                            sort=False):
                    values = group["value"].to_numpy(float)
                    est = self.estimate(values)
                    lines.append(dict(variant=variant, family=self.family(variant), host=host,
                                      metric=metric, workload=wl, conditions=cond, unit=unit,
                                      n=est.n,
                                      median=est.value, ci_low=est.low, ci_high=est.high,
                                      text=f"{est} {unit}",
                                      warnings="; ".join(stats.stability_warnings(values, unit))))
        return pd.DataFrame(lines, columns=["variant", "family", "host", "metric", "workload",
                                            "conditions", "unit", "n", "median", "ci_low",
                                            "ci_high", "text", "warnings"])

    def samples(self, metrics: Sequence[str], variants: Sequence[str] = (),
                experiment: str | None = None, conditions: Conditions | None = None
                ) -> pd.DataFrame:
        """Long frame of measured samples (variant, family, metric, workload, conditions,
        rep, value)."""
        frames = []
        for variant in self.variants(variants) if variants else self.variants():
            for metric in metrics:
                data = self.measured(variant, metric, experiment, None, conditions)
                if data.empty:
                    continue
                frames.append(data.assign(variant=variant, family=self.family(variant),
                                          metric=metric))
        if not frames:
            return pd.DataFrame(columns=["variant", "family", "metric", "host", "workload",
                                         "conditions", "rep", "value", "unit", *_MEASURED_BY])
        return pd.concat(frames, ignore_index=True)

    def compare(self, metric: str, experiment: str | None = None, baseline: str = BASELINE,
                variants: Sequence[str] = (), workload: str | None = None,
                conditions: Conditions | None = None) -> pd.DataFrame:
        """Every variant against ``baseline``: ratio of medians with CI, Mann-Whitney U
        (two-sided, Holm-corrected over the variants), Cliff's delta, Hodges-Lehmann shift.

        Variants with fewer than 2 samples get the ratio only. An empty frame when the
        baseline has no samples.
        """
        base = self.sample(baseline, metric, experiment, workload, conditions)
        columns = ["variant", "metric", "baseline", "n", "ratio", "ratio_low", "ratio_high",
                   "p", "p_holm", "significant", "cliffs_delta", "hodges_lehmann", "unit"]
        if base.size == 0 or np.median(base) == 0:
            return pd.DataFrame(columns=columns)
        groups: dict[str, np.ndarray] = {}
        lines = []
        for variant in self.variants(variants) if variants else self.variants():
            if variant == baseline:
                continue
            data = self.measured(variant, metric, experiment, workload, conditions)
            if data.empty:
                continue
            values = data[data["conditions"] == data["conditions"].iloc[0]]["value"].to_numpy(
                float)
            est = stats.ratio_ci(values, base, n_resamples=self.n_boot)
            lines.append(dict(variant=variant, metric=metric, baseline=baseline, n=values.size,
                              ratio=est.value, ratio_low=est.low, ratio_high=est.high,
                              unit=self.unit(metric)))
            if values.size >= 2 and base.size >= 2:
                groups[variant] = values
        table = pd.DataFrame(lines, columns=[c for c in columns if c in
                                             ("variant", "metric", "baseline", "n", "ratio",
                                              "ratio_low", "ratio_high", "unit")])
        if groups:
            tests = stats.mann_whitney_holm({**groups, baseline: base}, reference=baseline)
            tests = tests.rename(columns={"group": "variant"})[
                ["variant", "p", "p_holm", "significant", "cliffs_delta", "hodges_lehmann"]]
            table = table.merge(tests, on="variant", how="left")
        return table.reindex(columns=columns)

    def kernel_ratios(self, metric: str = "compute_time", experiment: str = "cpu",
                      baseline: str = BASELINE, variants: Sequence[str] = (),
                      kernels: Sequence[str] | None = None) -> pd.DataFrame:
        """Per-kernel ratio of medians (variant time / ``baseline`` time, > 1: slower) with
        its bootstrap CI, and their geometric mean (kernel :data:`GEOMEAN`) with a CI from
        resampling every kernel's samples.

        A kernel with no samples on the variant or the baseline gets the reason
        ("not measured: ..."), and then the geometric mean is not computed either: a mean
        over fewer kernels would not be the same quantity. Columns: variant, family, kernel,
        n, ratio, ratio_low, ratio_high, pct_of_baseline (100 / ratio), text.
        """
        kernels = list(kernels or catalog.VALUES["kernel"])
        columns = ["variant", "family", "kernel", "n", "ratio", "ratio_low", "ratio_high",
                   "pct_of_baseline", "text"]
        base = {k: self.sample(baseline, metric, experiment, conditions={"kernel": k})
                for k in kernels}
        lines = []
        for variant in self.variants(variants) if variants else self.variants():
            if variant == baseline:
                continue
            pairs, missing = [], []
            for k in kernels:
                values = self.sample(variant, metric, experiment, conditions={"kernel": k})
                line = dict(variant=variant, family=self.family(variant), kernel=k,
                            n=int(min(values.size, base[k].size)), ratio=math.nan,
                            ratio_low=math.nan, ratio_high=math.nan,
                            pct_of_baseline=math.nan)
                if values.size and base[k].size and np.median(base[k]) > 0:
                    est = stats.ratio_ci(values, base[k], n_resamples=self.n_boot)
                    line.update(ratio=est.value, ratio_low=est.low, ratio_high=est.high,
                                pct_of_baseline=100 / est.value, text=f"{est} x")
                    pairs.append((values, base[k]))
                else:
                    who = variant if not values.size else baseline
                    line["text"] = "not measured: " + self.kernel_reason(who, metric, k,
                                                                         experiment)
                    missing.append(k)
                lines.append(line)
            line = dict(variant=variant, family=self.family(variant), kernel=GEOMEAN,
                        n=0, ratio=math.nan, ratio_low=math.nan, ratio_high=math.nan,
                        pct_of_baseline=math.nan)
            if missing:
                line["text"] = ("not measured: no samples of kernel " + ", ".join(missing)
                                + " (a geometric mean needs every kernel)")
            else:
                est = stats.geomean_ratio_ci(pairs, n_resamples=self.n_boot)
                line.update(n=est.n, ratio=est.value, ratio_low=est.low, ratio_high=est.high,
                            pct_of_baseline=100 / est.value, text=f"{est} x")
            lines.append(line)
        return pd.DataFrame(lines, columns=columns)

    def host_line(self) -> str:
        """One line naming the host the data come from (each host of a campaign)."""
        if len(self.hosts) > 1:
            return f"{len(self.hosts)} hosts: " + "; ".join(
                f"{name} = {host_line(facts)}" for name, facts in self.hosts.items())
        return host_line(self.host)

    # -- hosts of a campaign
    def host_names(self) -> list[str]:
        """The hosts that measured the rows, in order of appearance."""
        return [str(h) for h in dict.fromkeys(self.df["host"])]

    def for_host(self, name: str) -> Dataset:
        """The rows of one host, with that host's facts."""
        if name not in self.host_names():
            raise ValueError(f"no host {name!r} in run {self.run_id}; its hosts: "
                             f"{', '.join(self.host_names()) or 'none'}")
        facts = self.hosts.get(name) or (self.host if len(self.host_names()) == 1 else {})
        return Dataset(self.df[self.df["host"] == name].reset_index(drop=True), facts,
                       f"{self.run_id}{HOST_SEPARATOR}{name}", self.n_boot, {name: facts})


def host_line(host: dict) -> str:
    """One line naming a host from its host.json facts (a campaign's: each of its hosts)."""
    if not host:
        return "unknown (no host.json)"
    if "campaign" in host:
        entries = host.get("hosts") or {}
        return f"{len(entries)} hosts: " + "; ".join(
            f"{name} = {e.get('hostname', '?')}: {e.get('cpu_model', '?')}, kernel "
            f"{e.get('kernel', '?')}" for name, e in sorted(entries.items()))
    mem = host.get("memory_bytes")
    mem_text = f", {mem / 2**30:.1f} GiB" if mem else ""
    flags = ",".join(host.get("cpu_virtualization_flags") or []) or "none"
    return (f"{host.get('hostname', '?')}: {host.get('cpu_model', '?')}, "
            f"{host.get('cpu_count', '?')} CPUs{mem_text}, kernel {host.get('kernel', '?')}, "
            f"{host.get('distro', '?')}, CPU virtualization flags: {flags}")



"""The notebooks' read access to a run: samples, reasons, summaries, comparisons.

:class:`Dataset` holds the rows of one run (or several) and its host facts. A sample is one
value per repetition: readings inside one repetition (same run, workload, conditions and
rep) are correlated and are reduced to their median first, so the repetition is the
statistical unit. Conditions (``network``, ``state``, ``guest_memory_mib`` ...) are a column
of the rows; a request names the conditions it wants, and the opt-in alternates
(:data:`OPT_IN`) are left out unless asked for.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from virtbench import catalog, stats
from virtbench.host import read_host_json, run_hosts
from virtbench.paths import datasets_dir
from virtbench.patterns import selected
from virtbench.results import DatasetError, load_runs

BASELINE = "native/static"
#: ``RUN@HOST``: the rows one host of a campaign measured (``virtbench compare`` and the
#: notebooks' ``run_id`` take it).
HOST_SEPARATOR = "@"
NOT_IN_DATASET = "not in this dataset"
# Condition values that are a variation of the usual measurement: only rows asked for them
# by name carry them into a sample (a container started with --network none, the pooling
# allocator, a warm code cache, a precompiled module, reads after the page cache was dropped,
# a runtime's in-memory file system, a Debian userland instead of the minimal one, the
# seed's HTTP load profile).
# The cpu kernels other than the hash chain are asked for by name too, so a request that does
# not name a kernel reads the hash kernel, as it did before there were others.
OPT_IN: dict[str, frozenset[str]] = {
    "network": frozenset({"none"}),
    "allocator": frozenset({"pooling"}),
    "code_cache": frozenset({"on"}),
    "module": frozenset({"precompiled"}),
    "kernel": frozenset(catalog.VALUES["kernel"]) - {"hash"},
    "cache": frozenset({"cold"}),
    "fs": frozenset({"memory"}),
    "userland": frozenset({"debian", "debian-systemd"}),
    "load": frozenset({"seed"}),
}
# What a row without the key was measured under, for keys that have such a default (the
# cpu rows of older datasets ran only the hash kernel).
DEFAULTS: dict[str, str] = {"allocator": "on-demand", "code_cache": "off",
                            "module": "source", "kernel": "hash", "cache": "warm",
                            "fs": "host", "userland": "minimal",
                           "load": "light"}
# Condition keys that say what work was done: a comparison with a baseline holds them equal
# (a variant's nbody time is divided by the baseline's nbody time).
PAIRED: tuple[str, ...] = ("kernel",)
GEOMEAN = "geomean"
Conditions = Mapping[str, str | Sequence[str]]
# Condition values that make a row not comparable with the others: such rows never enter a
# verdict unless a claim asks for them by name, and this is the reason shown for them.
NOT_COMPARABLE: dict[tuple[str, str], str] = {
    ("fs", "memory"): "in-memory filesystem, not a host directory",
}


def parse_conditions(text: object) -> dict[str, str]:
    """The conditions of a row as a dict ("" or NaN: none)."""
    if not isinstance(text, str) or not text:
        return {}
    return {str(k): str(v) for k, v in json.loads(text).items()}


def conditions_text(conditions: Mapping[str, str]) -> str:
    """Conditions as short text: "network=none, state=idle" ("" when none)."""
    return ", ".join(f"{k}={v}" for k, v in sorted(conditions.items()))


def paired_conditions(text: str) -> dict[str, str]:
    """The :data:`PAIRED` keys of conditions given as :func:`conditions_text` text."""
    pairs = (part.partition("=") for part in text.split(", ") if part)
    return {k: v for k, _, v in pairs if k in PAIRED}


def _with_implied(experiment: str, conditions: str, tags: object) -> str:
    """A row's conditions with those its tags imply (:func:`catalog.implied_conditions`),
    for rows written before the condition existed; rows that carry the key keep theirs."""
    if experiment != "io" or not isinstance(tags, str) or not tags:
        return conditions
    implied = catalog.implied_conditions(experiment, json.loads(tags))
    have = parse_conditions(conditions)
    if not implied or set(implied) <= set(have):
        return conditions
    return json.dumps({**implied, **have}, sort_keys=True)


def wanted(row_conditions: Mapping[str, str], asked: Conditions | None) -> bool:
    """Whether a row's conditions fit a request: each asked key takes an allowed value (a row
    without the key has its :data:`DEFAULTS` value; with no default, the key does not
    constrain it), and no unasked key has an opt-in value (:data:`OPT_IN`)."""
    asked = asked or {}
    for key, allowed in asked.items():
        values = [allowed] if isinstance(allowed, str) else list(allowed)
        value = row_conditions.get(key, DEFAULTS.get(key))
        if value is not None and value not in values:
            return False
    return not any(key not in asked and value in OPT_IN.get(key, ())
                   for key, value in row_conditions.items())


def _variant_order() -> list[str]:
    from virtbench.platforms import VARIANTS

    return list(VARIANTS)


@dataclass
class Dataset:
    """The rows of one run (or several), its host facts, and helpers to read them."""

    df: pd.DataFrame
    host: dict = field(default_factory=dict)
    run_id: str = ""
    n_boot: int = 9999
    hosts: dict[str, dict] = field(default_factory=dict)  # name -> that host's host.json

    def __post_init__(self) -> None:
        if "conditions" not in self.df.columns:
            self.df = self.df.assign(conditions="")
        if "host" not in self.df.columns:
            self.df = self.df.assign(host=str(self.host.get("hostname") or "unknown host"))
        self.df["conditions"] = self.df["conditions"].fillna("")
        if len(self.df) and {"experiment", "tags"} <= set(self.df.columns):
            self.df["conditions"] = [
                _with_implied(e, c, t) for e, c, t in
                zip(self.df["experiment"], self.df["conditions"], self.df["tags"], strict=True)]

    @classmethod
    def load(cls, run_id: str | Sequence[str] = "reference", datasets: str | Path | None = None,
             variants: Sequence[str] = (), n_boot: int = 9999) -> Dataset:
        """Load ``datasets/<run_id>`` (``datasets`` "" or None: the default root); a run id
        ``RUN@HOST`` loads only the rows of that host of a campaign."""
        root = Path(datasets) if datasets else datasets_dir()
        ids = [run_id] if isinstance(run_id, str) else list(run_id)
        frames, hosts, index = [], {}, {}
        for rid in ids:
            run, _, name = rid.partition(HOST_SEPARATOR)
            df, facts = load_runs(run, root=root), run_hosts(root / run)
            index = index or read_host_json(root / run)
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
        ds = cls(df.reset_index(drop=True), host, ", ".join(ids), n_boot, hosts)
        if variants:
            keep = [v for v in ds.variants() if selected(variants, v, ds.family(v))]
            ds.df = ds.df[ds.df["variant"].isin(keep)].reset_index(drop=True)
        return ds

    # -- what is there
    def variants(self, patterns: Sequence[str] = ()) -> list[str]:
        """Variants in the data (in registry order), optionally only those matching patterns."""
        present = list(dict.fromkeys(self.df["variant"]))
        order = {v: i for i, v in enumerate(_variant_order())}
        present.sort(key=lambda v: (order.get(v, len(order)), v))
        if not patterns:
            return present
        return [v for v in present if selected(patterns, v, self.family(v))]

    def family(self, variant: str) -> str:
        fam = self.df.loc[self.df["variant"] == variant, "family"]
        return str(fam.iloc[0]) if len(fam) else variant.split("/")[0]

    def rows(self, variant: str | None = None, metric: str | None = None,
             experiment: str | None = None, workload: str | None = None) -> pd.DataFrame:
        """All rows (measured or with a reason) matching the given fields."""
        frame = self.df
        if variant is not None:  # most look-ups name a variant: use a per-variant index
            frame = self._by_variant().get(variant, frame.iloc[0:0])
        for column, value in (("metric", metric), ("experiment", experiment),
                              ("workload", workload)):
            if value is not None:
                frame = frame[frame[column] == value]
        return frame

    def _by_variant(self) -> dict[str, pd.DataFrame]:
        if getattr(self, "_indexed", None) is not self.df:  # built once per frame
            self._index = {str(v): g for v, g in self.df.groupby("variant", sort=False)}
            self._indexed = self.df
        return self._index

    def measured(self, variant: str, metric: str, experiment: str | None = None,
                 workload: str | None = None, conditions: Conditions | None = None
                 ) -> pd.DataFrame:
        """One value per repetition: measured non-warm-up rows fitting ``conditions`` (see
        :func:`wanted`), readings of one repetition reduced to their median; ``metric``
        "a+b" sums a and b per repetition. Columns: run_id, workload, conditions, rep,
        value, unit (``conditions`` as text, "" when none)."""
        keys = ["run_id", "host", "workload", "conditions", "rep"]
        frames = []
        for part in metric.split("+"):
            r = self.rows(variant, part, experiment, workload)
            r = r[r["value"].notna() & ~r["warmup"]]
            if len(r):
                keep = [wanted(parse_conditions(c), conditions) for c in r["conditions"]]
                r = r[keep]
            r = r.assign(conditions=[conditions_text(parse_conditions(c))
                                     for c in r["conditions"]])
            per_rep = r.groupby(keys, sort=False).agg(value=("value", "median"),
                                                       unit=("unit", "first")).reset_index()
            frames.append(per_rep[keys + ["value", "unit"]])
        joined = frames[0].reset_index(drop=True)
        for other in frames[1:]:
            joined = joined.merge(other, on=keys, how="inner", suffixes=("", "_b"))
            if (joined["unit"] != joined["unit_b"]).any():
                raise ValueError(f"cannot sum {metric}: units differ")
            joined["value"] = joined["value"] + joined["value_b"]
            joined = joined[keys + ["value", "unit"]]
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

    def unit(self, metric: str) -> str:
        first = metric.split("+")[0]
        units = self.df.loc[self.df["metric"] == first, "unit"]
        return str(units.iloc[0]) if len(units) else ""

    def row_reason(self, variant: str, metric: str, experiment: str | None = None) -> str:
        """The reason stored with the rows of ``metric`` (or, when the variant measured
        nothing in ``experiment``, with its rows there: an unavailable or failed variant);
        "" when the dataset gives none."""
        for part in metric.split("+"):
            found = _join_reasons(self.rows(variant, part, experiment)["reason"])
            if found:
                return found
        if experiment is not None:
            rows = self.rows(variant, None, experiment)
            if len(rows) and rows["value"].notna().sum() == 0:
                return _join_reasons(rows["reason"])
        return ""

    def not_comparable(self, variant: str, metric: str, experiment: str | None = None,
                       conditions: Conditions | None = None) -> str:
        """Why the measured rows of ``metric`` that ``conditions`` leave out are not
        comparable (:data:`NOT_COMPARABLE`, e.g. "in-memory filesystem, not a host directory
        (fs=memory)"); "" when no such rows were left out."""
        found = []
        for part in metric.split("+"):
            r = self.rows(variant, part, experiment)
            for text in r.loc[r["value"].notna(), "conditions"].unique():
                cond = parse_conditions(text)
                if wanted(cond, conditions):
                    continue
                found += [f"{why} ({k}={v})" for (k, v), why in NOT_COMPARABLE.items()
                          if cond.get(k, DEFAULTS.get(k)) == v]
        return "; ".join(dict.fromkeys(found))

    def _why_empty(self, variant: str, metric: str, experiment: str | None,
                   conditions: Conditions | None) -> str:
        """The text of a summary line with no sample: not comparable, or not measured and
        why (naming the asked conditions when other conditions were measured)."""
        excluded = self.not_comparable(variant, metric, experiment, conditions)
        if excluded:
            return f"not comparable: {excluded}"
        why = self.row_reason(variant, metric, experiment)
        if not why and conditions:
            r = self.rows(variant, metric, experiment)
            if r["value"].notna().any():
                asked = ", ".join(f"{k}={v if isinstance(v, str) else '|'.join(v)}"
                                  for k, v in sorted(conditions.items()))
                why = f"{NOT_IN_DATASET} ({variant} has no {metric} rows with {asked})"
        return "not measured: " + (why or self.reason(variant, metric, experiment))

    def reason(self, variant: str, metric: str, experiment: str | None = None) -> str:
        """Why ``metric`` has no value for ``variant``: the rows' reason, else what is absent."""
        return self.row_reason(variant, metric, experiment) or self.absent(
            variant, [metric], [experiment] if experiment else [])

    def absent(self, variant: str, metrics: Sequence[str], experiments: Sequence[str]) -> str:
        """The "not in this dataset" reason, naming what is missing."""
        if not len(self.rows(variant)):
            return f"{NOT_IN_DATASET} (no rows for {variant})"
        exps = [e for e in dict.fromkeys(experiments) if e]
        if exps and not any(len(self.rows(variant, None, e)) for e in exps):
            return f"{NOT_IN_DATASET} (no {' / '.join(exps)} rows for {variant})"
        return f"{NOT_IN_DATASET} ({variant} has no {' / '.join(dict.fromkeys(metrics))} rows)"

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
                                         "conditions", "rep", "value", "unit"])
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

    def kernel_reason(self, variant: str, metric: str, kernel: str,
                      experiment: str = "cpu") -> str:
        """Why ``variant`` has no ``metric`` samples of one cpu kernel."""
        rows = self.rows(variant, metric, experiment)
        rows = rows[np.array([wanted(parse_conditions(c), {"kernel": kernel})
                              for c in rows["conditions"]], dtype=bool)]
        found = _join_reasons(rows["reason"])
        if found:
            return found
        if len(rows) or not len(self.rows(variant, None, experiment)):
            return self.reason(variant, metric, experiment)
        return f"{NOT_IN_DATASET} ({variant} has no {metric} rows of kernel {kernel})"

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


def _join_reasons(reasons: Iterable[str], keep: int = 2) -> str:
    """Distinct non-empty reasons, the first ``keep`` in full, then how many more."""
    found = [r for r in dict.fromkeys(reasons) if r]
    text = "; ".join(found[:keep])
    return text + (f" (+{len(found) - keep} other reasons)" if len(found) > keep else "")



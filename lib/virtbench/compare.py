"""Two runs side by side, cell by cell, like ``pyperf compare_to``.

A cell is (experiment, variant, workload, metric, conditions) measured in both runs. For
each: the ratio of medians B / A with its bootstrap CI, a two-sided Mann-Whitney U test,
Holm-corrected over every cell compared, and a plain verdict ("1.32x [1.25, 1.40]
slower", "no significant difference"). The repetition is the unit: one value per
repetition (see :meth:`virtbench.dataset.Dataset.measured`).

The two sides can be two hosts of one campaign (``RUN@HOST_A`` and ``RUN@HOST_B``);
:func:`between_hosts` sets every host of a campaign beside one of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from virtbench import catalog, stats
from virtbench.dataset import Dataset

MIN_N = 3  # fewer samples on a side: no test (the U test cannot reach p < 0.05 at 2 vs 2)
COLUMNS = ["experiment", "variant", "workload", "metric", "conditions", "unit", "n_a",
           "median_a", "n_b", "median_b", "ratio", "ratio_low", "ratio_high", "p", "p_holm",
           "verdict"]


def _cells(ds: Dataset, experiments: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    rows = ds.df[ds.df["value"].notna() & ~ds.df["warmup"]]
    if experiments:
        rows = rows[rows["experiment"].isin(experiments)]
    if metrics:
        rows = rows[rows["metric"].isin(metrics)]
    return rows[["experiment", "variant", "workload", "metric"]].drop_duplicates()


def _sample(ds: Dataset, cell: pd.Series, conditions: str) -> np.ndarray:
    data = ds.measured(cell["variant"], cell["metric"], cell["experiment"], cell["workload"],
                       conditions=_asked(conditions))
    return data.loc[data["conditions"] == conditions, "value"].to_numpy(float)


def _asked(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(", ")) if text else {}


def _condition_sets(ds: Dataset, cell: pd.Series) -> list[str]:
    """Every condition set of a cell, opt-in ones included."""
    from virtbench.dataset import conditions_text, parse_conditions

    rows = ds.rows(cell["variant"], cell["metric"], cell["experiment"], cell["workload"])
    rows = rows[rows["value"].notna() & ~rows["warmup"]]
    return list(dict.fromkeys(conditions_text(parse_conditions(c)) for c in rows["conditions"]))


def _words(metric: str, experiment: str, unit: str) -> tuple[str, str]:
    """How to say "more" and "less" of a metric: slower/faster for times."""
    if unit in ("ms", "s", "us", "ns"):
        return "slower", "faster"
    try:
        better = catalog.get(experiment, metric).better
    except ValueError:
        better = ""
    if better == "lower":
        return "higher (worse)", "lower (better)"
    if better == "higher":
        return "higher (better)", "lower (worse)"
    return "higher", "lower"


def compare(a: Dataset, b: Dataset, experiments: Sequence[str] = (),
            metrics: Sequence[str] = (), alpha: float = 0.05, n_boot: int = 9999
            ) -> pd.DataFrame:
    """One line per cell measured in both runs (see the module docstring)."""
    for ds in (a, b):
        hosts = ds.host_names()
        if len(hosts) > 1:
            raise ValueError(f"run {ds.run_id} holds rows of {len(hosts)} hosts "
                             f"({', '.join(hosts)}); compare one host with another, e.g. "
                             f"{ds.run_id}@{hosts[0]} {ds.run_id}@{hosts[1]}")
    both = _cells(a, experiments, metrics).merge(_cells(b, experiments, metrics))
    lines = []
    for _, cell in both.iterrows():
        sets = [c for c in _condition_sets(a, cell) if c in set(_condition_sets(b, cell))]
        for cond in sets:
            sa, sb = _sample(a, cell, cond), _sample(b, cell, cond)
            if not (sa.size and sb.size):
                continue
            line = dict(cell, conditions=cond, unit=a.unit(cell["metric"]), n_a=sa.size,
                        median_a=float(np.median(sa)), n_b=sb.size,
                        median_b=float(np.median(sb)), p=math.nan)
            if np.median(sa) != 0:
                est = stats.ratio_ci(sb, sa, n_resamples=n_boot)
                line.update(ratio=est.value, ratio_low=est.low, ratio_high=est.high)
            if np.all(sa == sa[0]) and np.all(sb == sa[0]):
                line["verdict"] = "no difference (identical samples)"
            elif min(sa.size, sb.size) >= MIN_N:
                line["p"] = float(sps.mannwhitneyu(sb, sa, alternative="two-sided").pvalue)
            lines.append(line)
    table = pd.DataFrame(lines).reindex(columns=COLUMNS)
    tested = table["p"].notna()
    table.loc[tested, "p_holm"] = stats._holm(table.loc[tested, "p"].to_numpy(float))
    table["verdict"] = [r.verdict if isinstance(r.verdict, str) else _verdict(r, alpha)
                        for r in table.itertuples()]
    return table


def between_hosts(ds: Dataset, reference: str | None = None, experiments: Sequence[str] = (),
                  metrics: Sequence[str] = (), n_boot: int = 9999) -> pd.DataFrame:
    """Every other host of a campaign against ``reference`` (default: its first host), cell
    by cell: the columns of :func:`compare` after ``host_a`` and ``host_b`` (ratios are
    host_b / host_a). Empty when the run has one host."""
    hosts = ds.host_names()
    reference = reference or (hosts[0] if hosts else "")
    base = ds.for_host(reference) if hosts else ds
    tables = [compare(base, ds.for_host(h), experiments, metrics, n_boot=n_boot)
              .assign(host_a=reference, host_b=h) for h in hosts if h != reference]
    columns = ["host_a", "host_b", *COLUMNS]
    if not tables:
        return pd.DataFrame(columns=columns)
    return pd.concat(tables, ignore_index=True)[columns]


def _verdict(r, alpha: float) -> str:
    if not (isinstance(r.p_holm, float) and math.isfinite(r.p_holm)):
        return f"not tested (n = {r.n_a} vs {r.n_b}; a test needs {MIN_N} per run)"
    if r.p_holm >= alpha:
        return "no significant difference"
    more, less = _words(r.metric, r.experiment, r.unit)
    if not math.isfinite(r.ratio):
        return more if r.median_b > r.median_a else less
    factor, low, high = ((r.ratio, r.ratio_low, r.ratio_high) if r.ratio >= 1
                         else (1 / r.ratio, 1 / r.ratio_high, 1 / r.ratio_low))
    word = more if r.ratio >= 1 else less
    return f"{factor:.2f}x [{low:.2f}, {high:.2f}] {word}"


def format_table(table: pd.DataFrame, run_a: str, run_b: str) -> str:
    """The comparison as text lines, one per cell."""
    if table.empty:
        return f"no cell was measured in both {run_a} and {run_b}"
    out = []
    for r in table.itertuples():
        cond = f" [{r.conditions}]" if r.conditions else ""
        out.append(f"{r.experiment} {r.variant} {r.workload} {r.metric}{cond}: "
                   f"{stats._fmt(r.median_a)} -> {stats._fmt(r.median_b)} {r.unit} "
                   f"(n={r.n_a}/{r.n_b}): {r.verdict}")
    return "\n".join(out)

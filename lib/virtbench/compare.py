"""Two runs side by side, cell by cell, like ``pyperf compare_to``.

A cell is (experiment, variant, workload, metric, conditions) measured in both runs. For
each: the ratio of medians B / A with its bootstrap CI, a two-sided Mann-Whitney U test,
Holm-corrected over every cell compared, and a verdict whose words follow from those numbers:
"1.24x slower [1.10, 1.41], p = 0.003", "not significant (p = 0.21)", or "not testable: 3
vs 3 samples cannot reach p < 0.05" (the smallest two-sided p the U test can give at those
sizes is 0.1). The repetition is the unit: one value per repetition (see
:meth:`virtbench.dataset.Dataset.measured`).

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

COLUMNS = ["experiment", "variant", "workload", "metric", "conditions", "unit", "n_a",
           "median_a", "n_b", "median_b", "ratio", "ratio_low", "ratio_high", "p", "p_holm",
           "outcome", "verdict"]
#: What a cell's comparison found, in the order the summary line counts them.
OUTCOMES = ("slower", "faster", "higher", "lower", "not significant", "not testable",
            "identical")


def smallest_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p the Mann-Whitney U test can reach with samples of these
    sizes (no ties): 2 / C(n_a + n_b, n_a); 1 when a side is empty."""
    if min(n_a, n_b) < 1:
        return 1.0
    return min(1.0, 2 / math.comb(n_a + n_b, n_a))


def format_p(p: float) -> str:
    """A p-value as "p < 0.001" or to two significant digits ("p = 0.021")."""
    if not math.isfinite(p):
        return "p not computed"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {float(f'{p:.2g}'):g}"


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
    from virtbench.conditions import conditions_text, parse_conditions

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
                line.update(outcome="identical", verdict="no difference (identical samples)")
            elif smallest_p(sa.size, sb.size) < alpha:
                line["p"] = float(sps.mannwhitneyu(sb, sa, alternative="two-sided").pvalue)
            else:
                line.update(outcome="not testable", verdict=(
                    f"not testable: {sa.size} vs {sb.size} samples cannot reach p < {alpha:g} "
                    f"(the smallest p at these sizes is {smallest_p(sa.size, sb.size):.2g})"))
            lines.append(line)
    table = pd.DataFrame(lines).reindex(columns=COLUMNS)
    tested = table["p"].notna()
    table.loc[tested, "p_holm"] = stats._holm(table.loc[tested, "p"].to_numpy(float))
    judged = [(r.outcome, r.verdict) if isinstance(r.verdict, str) else _verdict(r, alpha)
              for r in table.itertuples()]
    table["outcome"] = [o for o, _ in judged]
    table["verdict"] = [v for _, v in judged]
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


def _verdict(r, alpha: float) -> tuple[str, str]:
    """(outcome, verdict text) of a tested cell: the words follow from ratio, CI and p."""
    said = format_p(r.p_holm) + (" after Holm" if r.p_holm != r.p else "")
    if r.p_holm >= alpha:
        return "not significant", f"not significant ({said})"
    more, less = _words(r.metric, r.experiment, r.unit)
    word = more if r.median_b > r.median_a else less
    outcome = word.split(" ")[0]
    if not math.isfinite(r.ratio):
        return outcome, f"{word} ({said})"
    factor, low, high = ((r.ratio, r.ratio_low, r.ratio_high) if r.ratio >= 1
                         else (1 / r.ratio, 1 / r.ratio_high, 1 / r.ratio_low))
    return outcome, f"{factor:.2f}x {word} [{low:.2f}, {high:.2f}], {said}"


def summary_line(table: pd.DataFrame) -> str:
    """How many cells came out which way: "12 cells: 3 slower, 1 faster, 8 not significant"."""
    counts = table["outcome"].value_counts() if len(table) else pd.Series(dtype=int)
    parts = [f"{counts[o]} {o}" for o in OUTCOMES if counts.get(o)]
    return f"{len(table)} cells: {', '.join(parts)}" if parts else f"{len(table)} cells"


def format_table(table: pd.DataFrame, run_a: str, run_b: str) -> str:
    """The comparison as text lines, one per cell (A and B medians with units, B/A with its
    CI, the verdict), and the summary line."""
    if table.empty:
        return f"no cell was measured in both {run_a} and {run_b}"
    out = []
    for r in table.itertuples():
        cond = f" [{r.conditions}]" if r.conditions else ""
        ratio = ""
        if isinstance(r.ratio, float) and math.isfinite(r.ratio):
            ci = (f"[{r.ratio_low:.3g}, {r.ratio_high:.3g}]"
                  if math.isfinite(r.ratio_low) and math.isfinite(r.ratio_high)
                  else f"(no CI at n = {min(r.n_a, r.n_b)})")
            ratio = f"; B/A {r.ratio:.3g} {ci}"
        out.append(f"{r.experiment} {r.variant} {r.workload} {r.metric}{cond}: "
                   f"{stats.human(r.median_a, r.unit)} -> {stats.human(r.median_b, r.unit)} "
                   f"(n = {r.n_a} / {r.n_b}{ratio}): {r.verdict}")
    out.append(f"{run_a} -> {run_b}: {summary_line(table)}")
    return "\n".join(out)

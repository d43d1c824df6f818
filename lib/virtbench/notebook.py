"""What every report notebook does first, in one call: open its run, the published figures
and the claims check of its claims, set the plot style and say which data it shows.

A notebook measures nothing: ``virtbench reproduce --rerun`` measures a run, then executes
the notebooks on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import pandas as pd

from virtbench import claims, plots, published, stats
from virtbench.dataset import Dataset

N_BOOT = 9999  # bootstrap resamples of a report
N_BOOT_QUICK = 999  # ... in quick mode


class Report(NamedTuple):
    """The data a report notebook analyses."""

    ds: Dataset  # the run
    pub: pd.DataFrame  # the published figures (papers/*.csv)
    policy: stats.Policy  # the verdict policy
    check: pd.DataFrame  # the claims check of the notebook's claims (claims.check)


def header_html(ds: Dataset) -> str:
    """The run, its host and size in one line; the variants folded below it."""
    import html

    measured = int(ds.df["value"].notna().sum())
    variants = ds.variants()
    listed = ", ".join(html.escape(v) for v in variants) or "none"
    return (f"<p><b>Run</b> <code>{html.escape(ds.run_id)}</code> · <b>host</b> "
            f"{html.escape(ds.host_line())} · {len(ds.df)} rows, {measured} with a value</p>"
            f'<details class="vb-details"><summary>{len(variants)} variants in this run'
            f"</summary><p>{listed}</p></details>")


def open_report(notebook: str, run_id: str = "reference", datasets: str = "",
                variants: Sequence[str] = (), quick: bool = False, min_n: int = 6,
                margin: float = 0.05, show: bool = True) -> Report:
    """Load ``datasets/<run_id>`` (``datasets`` "": the default root) restricted to
    ``variants`` (names, families or globs; none: all), the published figures, and check the
    claims mapped to ``notebook`` under the verdict policy (``min_n``, ``margin``); quick
    mode shortens the bootstrap. ``show`` displays the run's header line."""
    ds = Dataset.load(run_id, datasets or None, list(variants),
                      n_boot=N_BOOT_QUICK if quick else N_BOOT)
    pub = published.load()
    policy = stats.Policy(min_n=min_n, margin=margin)
    check = claims.check(ds, notebook=notebook, pub=pub, policy=policy)
    plots.set_style()
    if show:
        from IPython.display import HTML, display

        display(HTML(header_html(ds)))
    return Report(ds, pub, policy, check)

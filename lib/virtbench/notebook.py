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


def check_parameters(run_id: object, datasets: object, variants: object, quick: object,
                     min_n: object, margin: object) -> None:
    """ValueError naming the first notebook parameter of the wrong type or value, and what
    is valid (papermill hands ``-p min_n abc`` over as the string "abc")."""
    from virtbench import platforms
    from virtbench.results import check_run_id

    def bad(name: str, value: object, valid: str) -> ValueError:
        return ValueError(f"notebook parameter {name} = {value!r}: {valid}")

    if not isinstance(run_id, str):
        raise bad("run_id", run_id, "a run id (text), e.g. reference")
    for part in filter(None, run_id.partition("@")[::2]):
        check_run_id(part)
    if not isinstance(datasets, str):
        raise bad("datasets", datasets, "a folder (text), empty for the default")
    if not isinstance(quick, bool):
        raise bad("quick", quick, "True or False (papermill: -p quick True)")
    if isinstance(min_n, bool) or not isinstance(min_n, int) or min_n < 2:
        raise bad("min_n", min_n, "an integer of at least 2")
    if isinstance(margin, bool) or not isinstance(margin, int | float) \
            or not 0 <= margin < 1:
        raise bad("margin", margin, "a number in [0, 1), e.g. 0.05")
    if isinstance(variants, str) or not isinstance(variants, list | tuple):
        raise bad("variants", variants, "a list of variant names or patterns (papermill: "
                  "-y 'variants: [native, docker/runc]'), empty for all")
    if variants:
        platforms.select(variants=[str(v) for v in variants])  # names the unknown ones


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

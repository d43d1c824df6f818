"""Batch reproduction: execute every notebook with papermill, export HTML, write an index.

``virtbench reproduce`` analyses one dataset (``--run-id``, default ``reference``) or, with
``--rerun``, measures a new one first (every registered experiment on every variant, quick
when ``--quick``). Each notebook runs in the ``python3`` kernel of the interpreter running
this module; one failing notebook does not stop the others. Every executed notebook is
exported to self-contained HTML through the project's nbconvert template
(``lib/virtbench/templates/virtbench``: figures embedded, no code, no scripts, its own
stylesheet), the run's results.csv and host.json are copied to ``OUT/data/RUN_ID/`` and
linked from every page, and ``index.html`` shows a card per report (thumbnail of its first
figure, headline, status, time), the run, the host and the verdict policy.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager

from virtbench import cards
from virtbench.durations import duration_text
from virtbench.paths import PACKAGE_DIR, PROJECT_DIR, datasets_dir, notebooks_dir
from virtbench.provenance import analysis_version, commits_line, provenance
from virtbench.results import RESULTS_FILE, RunStore, check_run_id, new_run_id
from virtbench.store.errors import WriteFailed

NOTEBOOKS_DIR = notebooks_dir()
#: The notebook that sets a campaign's hosts side by side (reports of a multi-host run).
HOSTS_NOTEBOOK = NOTEBOOKS_DIR / "campaign" / "hosts.ipynb"
KERNEL_NAME = "python3"
HEADLINE_TAG = "headline"
DEFAULT_RUN = "reference"
NOTEBOOK_TIMEOUT_S = 1800
# The order in which --rerun measures; experiments registered later run after these.
EXPERIMENT_ORDER = ("startup", "memory", "disk", "cpu", "io", "http", "cpu_usage", "density",
                    "isolation")

Progress = Callable[[str], None]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class NotebookResult:
    """The outcome of one notebook: status, the error if any, its headline and files."""

    name: str
    status: str                  # "ok" or "failed"
    seconds: float
    headline: str = ""
    error: str = ""
    ipynb: Path | None = None
    html: Path | None = None
    thumbnail: str = ""          # the first figure as a small PNG data: URI ("" if none)
    thumbnail_alt: str = ""      # ... and its alt text (what the figure shows)


class SameInterpreterKernelManager(AsyncKernelManager):
    """Starts a Python kernel with the interpreter running this process (the venv's).

    jupyter_client already does this for kernelspecs whose command is a bare ``python``;
    this also covers a user-level ``python3`` kernelspec that names another interpreter.
    """

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        if cmd and self.kernel_spec is not None and self.kernel_spec.language == "python":
            cmd[0] = sys.executable
        return cmd


def kernel_python(kernel_name: str = KERNEL_NAME) -> str:
    """The interpreter that executes the notebooks (the one running this process)."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(kernel_name)  # raises if there is no such kernel
    if spec.language != "python":
        raise ValueError(f"kernel {kernel_name!r} is {spec.language}, not python")
    return sys.executable


def notebooks(only: Sequence[str] = (), folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The notebooks, sorted by name; ``only`` keeps those whose name contains any entry."""
    found = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if only:
        found = [p for p in found if any(o in p.stem for o in only)]
    return found


@contextmanager
def _library_on_path() -> Iterator[None]:
    """Make ``import virtbench`` work in the kernel even when the package is not installed."""
    lib = str(PACKAGE_DIR.parent)
    old = os.environ.get("PYTHONPATH")
    parts = [p for p in (old or "").split(os.pathsep) if p]
    if lib not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([lib, *parts])
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def headline_of(nb: nbformat.NotebookNode) -> str:
    """The text printed by the cell tagged ``headline`` (empty if none ran)."""
    for cell in nb.cells:
        if HEADLINE_TAG not in cell.get("metadata", {}).get("tags", []):
            continue
        texts = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                texts.append(out.get("text", ""))
            elif "data" in out and "text/plain" in out["data"]:
                texts.append(str(out["data"]["text/plain"]).strip("'\""))
        return " ".join(" ".join(texts).split())
    return ""


TEMPLATES_DIR = PACKAGE_DIR / "templates"
TEMPLATE_NAME = "virtbench"  # lib/virtbench/templates/virtbench: conf.json, index.html.j2, CSS
PROJECT_NAME = "virtbench"
DATA_DIR = "data"
DATA_FILES = (RESULTS_FILE, "host.json")
THUMB_WIDTH = 320
THUMB_RATIO = 0.6  # height / width of a thumbnail at most


@dataclass(frozen=True)
class DataLink:
    """A file of the analysed run, copied beside the reports: its path relative to ``out``."""

    href: str
    text: str


def copy_data(run_dir: Path, run_id: str, out: Path) -> list[DataLink]:
    """Copy the run's results.csv and host.json into ``out/data/RUN_ID/``; return the links
    (relative to ``out``) of the files that exist."""
    target = out / DATA_DIR / run_id
    links = []
    for name in DATA_FILES:
        source = run_dir / name
        if not source.is_file():
            continue
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target / name)
        links.append(DataLink(f"{DATA_DIR}/{run_id}/{name}", f"data: {name}"))
    if (run_dir / "hosts").is_dir():  # a campaign: each host's host.json
        shutil.copytree(run_dir / "hosts", target / "hosts", dirs_exist_ok=True)
    return links


def export_html(ipynb: Path, target: Path, *, run_id: str = "",
                data: Sequence[DataLink] = (),
                provenance: Sequence[tuple[str, str]] = ()) -> Path:
    """Export an executed notebook to one self-contained HTML file without code cells.

    The page is rendered by the project's own nbconvert template (no JupyterLab CSS, no
    scripts, figures embedded) with a header: the project, a link back to ``index.html``, the
    run id and links to the run's data; then what made it (``provenance``: label, text).
    The headline sentence, computed by the notebook's last cell, is shown right after the
    intro (:func:`lead_with_headline`).
    """
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(extra_template_basedirs=[str(TEMPLATES_DIR)],
                            template_name=TEMPLATE_NAME)
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.embed_images = True
    resources = {"virtbench": {
        "project": PROJECT_NAME, "index": "index.html", "run_id": run_id,
        "name": target.stem, "title": f"{PROJECT_NAME}: {target.stem}" + (
            f" ({run_id})" if run_id else ""),
        "data": [{"href": link.href, "text": link.text} for link in data],
        "provenance": [{"label": k, "text": v} for k, v in provenance]}}
    nb = lead_with_headline(nbformat.read(ipynb, as_version=4))
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    target.write_text(body, encoding="utf-8")
    return target


def lead_with_headline(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with its cell tagged ``headline`` moved right after the first Markdown
    cell (the intro): a report opens with its finding, though the sentence is computed last
    from everything above it. A notebook without such a cell is returned as it is."""
    cells = list(nb.cells)
    tagged = [i for i, c in enumerate(cells)
              if HEADLINE_TAG in c.get("metadata", {}).get("tags", [])]
    intro = next((i for i, c in enumerate(cells) if c.cell_type == "markdown"), None)
    if not tagged or intro is None or tagged[0] < intro:
        return nb
    cell = cells.pop(tagged[0])
    cells.insert(intro + 1, cell)
    moved = nbformat.from_dict(dict(nb))
    moved.cells = cells
    return moved


def first_figure(nb: nbformat.NotebookNode) -> str:
    """The first PNG figure among the notebook's outputs as a small PNG ``data:`` URI
    (empty when there is none); when Pillow is there, the top of a tall figure, scaled to
    ``THUMB_WIDTH`` pixels wide (without it, the page's CSS scales the full figure)."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            png = out.get("data", {}).get("image/png")
            if not png:
                continue
            raw = base64.b64decode("".join(png) if isinstance(png, list) else png)
            try:
                from PIL import Image

                with Image.open(io.BytesIO(raw)) as img:
                    if img.height > THUMB_RATIO * img.width:  # a tall figure: its top part
                        img = img.crop((0, 0, img.width, round(THUMB_RATIO * img.width)))
                    if img.width > THUMB_WIDTH:
                        height = max(1, round(img.height * THUMB_WIDTH / img.width))
                        img = img.convert("RGB").resize((THUMB_WIDTH, height),
                                                        Image.Resampling.LANCZOS)
                    buffer = io.BytesIO()
                    img.save(buffer, format="PNG", optimize=True)
                    raw = buffer.getvalue()
            except ImportError:
                pass  # the full-size figure, scaled by the page's CSS
            return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")
    return ""


def first_figure_alt(nb: nbformat.NotebookNode) -> str:
    """The alt text of the first PNG figure among the notebook's outputs (empty if none or
    it has none): the words the index gives its thumbnail."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("data", {}).get("image/png"):
                meta = out.get("metadata", {}).get("image/png", {})
                return str(meta.get("alt", "")) if isinstance(meta, dict) else ""
    return ""


def execute(path: Path, out: Path, parameters: dict, *, kernel_name: str = KERNEL_NAME,
            timeout: float = NOTEBOOK_TIMEOUT_S, data: Sequence[DataLink] = (),
            provenance: Sequence[tuple[str, str]] = ()) -> NotebookResult:
    """Run one notebook with papermill into ``out/executed/``, then export its HTML.

    Never raises for a failing notebook: the result says what failed.
    """
    import papermill as pm

    executed = out / "executed" / path.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    error = ""
    try:
        with _library_on_path():
            pm.execute_notebook(str(path), str(executed), parameters=parameters,
                                kernel_name=kernel_name, cwd=str(PROJECT_DIR),
                                progress_bar=False, log_output=False,
                                execution_timeout=timeout,
                                kernel_manager_class=SameInterpreterKernelManager,
                                extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    except pm.PapermillExecutionError as exc:
        error = f"{exc.ename}: {exc.evalue}".strip()
        error = f"cell {exc.exec_count}: {error}"
    except Exception as exc:  # a kernel that does not start, a malformed notebook, ...
        error = "".join(traceback.format_exception_only(exc)).strip()
    seconds = time.perf_counter() - start
    result = NotebookResult(path.stem, "failed" if error else "ok", seconds, error=error)
    if executed.exists():
        result.ipynb = executed
        try:
            nb = nbformat.read(executed, as_version=4)
            result.headline = headline_of(nb)
            result.thumbnail = first_figure(nb)
            result.thumbnail_alt = first_figure_alt(nb)
            result.html = export_html(executed, out / f"{path.stem}.html",
                                      run_id=str(parameters.get("run_id", "")), data=data,
                                      provenance=provenance)
        except Exception as exc:
            result.status = "failed"
            detail = "".join(traceback.format_exception_only(exc)).strip()
            result.error = "; ".join(x for x in (result.error, f"HTML export: {detail}") if x)
    return result


def host_facts(run_dir: Path) -> dict:
    """The run's host.json for the index; an unreadable one leaves the host unknown there."""
    from virtbench.host import read_host_json
    from virtbench.results import DatasetError

    try:
        return read_host_json(run_dir)
    except DatasetError:
        return {}


def quick_mode(host: dict) -> str:
    """How much of the run was measured in quick mode, from its host.json invocations:
    "" (none, or unknown), "quick mode" (all) or "partly quick mode (K of N invocations)"."""
    flags = [bool((inv.get("parameters") or {}).get("quick"))
             for inv in host.get("invocations") or [] if isinstance(inv, dict)]
    quick = sum(flags)
    if not quick:
        return ""
    if quick == len(flags):
        return "quick mode"
    return f"partly quick mode ({quick} of {len(flags)} invocations)"


def _card(r: NotebookResult) -> str:
    name = html.escape(r.name)
    title = f'<a href="{html.escape(r.html.name)}">{name}</a>' if r.html else name
    alt = html.escape(r.thumbnail_alt or f"first figure of {r.name}", quote=True)
    thumb = (f'<img class="vb-thumb" src="{r.thumbnail}" alt="{alt}">'
             if r.thumbnail else '<div class="vb-thumb-none">no figure</div>')
    if r.html:
        thumb = f'<a href="{html.escape(r.html.name)}" tabindex="-1">{thumb}</a>'
    status = ("ok" if r.status == "ok" else
              f'<span class="vb-failed">failed: {html.escape(r.error[:400])}</span>')
    headline = html.escape(r.headline) or '<span class="vb-muted">no headline</span>'
    return (f'<li class="vb-card">{thumb}<h3>{title}</h3>'
            f'<div class="vb-headline">{headline}</div>'
            f'<div class="vb-status">{status} &middot; {r.seconds:.0f} s</div></li>')


def _provenance(host: dict, run_id: str) -> list[tuple[str, str]]:
    """What makes these reports (see :func:`virtbench.provenance.provenance`), with the
    engines installed here compared with those that measured the run."""
    from virtbench.host import collect

    return provenance(host, run_id, analysis_version(), collect().get("versions", {}))


def provenance_html(lines: Sequence[tuple[str, str]]) -> str:
    """The provenance lines as the definition list both the index and the reports show."""
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in lines)
    return f'<dl class="vb-provenance">{items}</dl>' if items else ""


def write_index(results: Sequence[NotebookResult], out: Path, run_id: str, host: dict,
                data: Sequence[DataLink] = (),
                made_by: Sequence[tuple[str, str]] = ()) -> Path:
    """``out/index.html``: a card per notebook (thumbnail of its first figure, link, headline,
    status, time), the run (quick mode only when its data were measured so), host and data."""
    from virtbench.claims import MAP_RULES, host_line
    from virtbench.stats import POLICY

    policy = "".join(f"<li>{html.escape(rule)}</li>" for rule in (*POLICY.rules(), *MAP_RULES))
    css = (TEMPLATES_DIR / TEMPLATE_NAME / "static" / "virtbench.css").read_text()
    ok = sum(r.status == "ok" for r in results)
    hostname = str(host.get("hostname") or "unknown host")
    cards = "\n".join(_card(r) for r in results)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = commits_line(host)
    mode = quick_mode(host)
    links = " &middot; ".join(f'<a class="vb-data" href="{html.escape(d.href)}">'
                              f"{html.escape(d.text)}</a>" for d in data)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{PROJECT_NAME} reports: {html.escape(run_id)}</title>
<style>
{css}</style></head><body>
<header class="vb-header"><a class="vb-project" href="index.html">{PROJECT_NAME}</a>
<span class="vb-sep">&rsaquo;</span><span class="vb-name">reports</span>
<nav class="vb-meta">run <b class="vb-run">{html.escape(run_id)}</b>{' &middot; ' + links
                                                                  if links else ''}</nav>
</header>
<main class="vb-page">
<h1>virtbench: process, container, sandboxed container, WebAssembly and VM, measured here</h1>
{provenance_html(made_by)}
<p class="meta">Run <b>{html.escape(run_id)}</b>{f' ({html.escape(mode)})' if mode else ''}
on {html.escape(hostname)} &middot; host {html.escape(host_line(host))} &middot; measured by
commit {html.escape(commit)} &middot; reports built {when} &middot; {ok} of {len(results)}
notebooks ok</p>
<ul class="vb-cards">
{cards}
</ul>
<p class="meta">Each report holds its claims-check table: claim, source, claimed value,
measured median with 95% CI, verdict. Cells that could not be measured say why. Headlines
count one verdict per published claim and platform family.</p>
<h2>Data</h2>
<p class="meta">The analysed run's raw rows and host description, as copied beside these
reports: {links or 'not available (the run has no results.csv or host.json)'}.</p>
<h2>Verdict policy</h2>
<ul class="meta">{policy}</ul>
</main>
</body></html>
"""
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def reproduce(run_id: str, out: Path, *, quick: bool = False, only: Sequence[str] = (),
              datasets: Path | None = None, variants: Sequence[str] = (),
              folder: Path = NOTEBOOKS_DIR, progress: Progress = _say) -> list[NotebookResult]:
    """Execute the notebooks on one dataset, export them, write the index; never raises for
    a failing notebook. A run of several hosts (a campaign) gets the notebooks once per host
    in ``out/HOST/`` and, in ``out/``, the hosts side by side (:data:`HOSTS_NOTEBOOK`)."""
    from virtbench.dataset import HOST_SEPARATOR
    from virtbench.host import run_hosts

    root = Path(datasets) if datasets else datasets_dir()
    run, _, host = run_id.partition(HOST_SEPARATOR)
    if not host and len(run_hosts(root / run)) > 1:
        return _reproduce_hosts(run_id, out, quick=quick, only=only, datasets=root,
                                variants=variants, folder=folder, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    paths = notebooks(only, folder)
    if not paths:
        raise ValueError(f"no notebooks in {folder}" + (f" matching {list(only)}" if only else ""))
    parameters = {"run_id": run_id, "datasets": str(root), "quick": bool(quick),
                  "variants": list(variants)}
    progress(f"reproducing {len(paths)} notebook(s) on run {run_id} ({root / run}) "
             f"with {kernel_python()} -> {out}/")
    data = copy_data(root / run, run, out)
    facts = run_hosts(root / run).get(host, {}) if host else host_facts(root / run)
    made_by = _provenance(facts, run_id)
    results = []
    for i, path in enumerate(paths, 1):
        progress(f"[{i}/{len(paths)}] {path.stem} ...")
        r = execute(path, out, parameters, data=data, provenance=made_by)
        results.append(r)
        tail = r.headline if r.status == "ok" else r.error
        spent = sum(x.seconds for x in results)
        left = (f"; about {duration_text(spent / i * (len(paths) - i))} left"
                if i < len(paths) else "")
        progress(f"[{i}/{len(paths)}] {path.stem}: {r.status} ({r.seconds:.1f} s{left}) {tail}")
    order = [p.stem for p in notebooks((), folder)]
    shown = cards.merged(results, out, run_id, order) if only else results
    cards.save(shown, out, run_id)
    index = write_index(shown, out, run_id, facts, data, made_by)
    failed = [r for r in results if r.status != "ok"]
    progress(f"{len(results)} notebooks: {len(results) - len(failed)} ok, {len(failed)} failed;"
             f" index: {index}")
    for r in failed:
        where = f" (see {r.html})" if r.html else ""
        progress(f"  failed: {r.name}: {r.error}{where}")
    return results


def _reproduce_hosts(run_id: str, out: Path, *, quick: bool, only: Sequence[str],
                     datasets: Path, variants: Sequence[str], folder: Path,
                     progress: Progress) -> list[NotebookResult]:
    """The reports of a campaign: each host's in ``out/HOST/``, the hosts side by side in
    ``out/`` (its index links to the hosts' reports)."""
    from virtbench.host import run_hosts

    results = []
    for host in run_hosts(datasets / run_id):
        progress(f"host {host}: reports in {out / host}/")
        results += reproduce(f"{run_id}@{host}", out / host, quick=quick, only=only,
                             datasets=datasets, variants=variants, folder=folder,
                             progress=progress)
    parameters = {"run_id": run_id, "datasets": str(datasets), "quick": bool(quick),
                  "variants": list(variants)}
    data = copy_data(datasets / run_id, run_id, out)
    facts = host_facts(datasets / run_id)
    made_by = _provenance(facts, run_id)
    hosts = execute(HOSTS_NOTEBOOK, out, parameters, data=data, provenance=made_by)
    progress(f"{HOSTS_NOTEBOOK.stem}: {hosts.status} ({hosts.seconds:.1f} s) "
             f"{hosts.headline if hosts.status == 'ok' else hosts.error}")
    index = write_index([hosts], out, run_id, facts, data, made_by)
    progress(f"index of the hosts: {index}")
    return [hosts, *results]


def measure(run_id: str | None = None, *, quick: bool = False, reps: int | None = None,
            variants: Sequence[str] = (), experiments: Sequence[str] | None = None,
            datasets: Path | str | None = None, progress: Progress | None = _say,
            force: bool = False) -> str:
    """Measure every registered experiment (or those named) on the chosen variants (names,
    families or globs, see :mod:`virtbench.patterns`; none = all) into a run (new
    unless ``run_id`` names one to resume); return the run id."""
    from virtbench import experiments as exps
    from virtbench import host as host_info
    from virtbench import platforms

    say = progress or (lambda _m: None)
    names = list(experiments) if experiments else (
        [e for e in EXPERIMENT_ORDER if e in exps.EXPERIMENTS]
        + [e for e in exps.EXPERIMENTS if e not in EXPERIMENT_ORDER])
    for name in [n for n in names if n not in exps.EXPERIMENTS]:
        say(f"skipping experiment {name!r}: not registered in this version of virtbench")
    names = [n for n in names if n in exps.EXPERIMENTS]
    from virtbench.patterns import selected

    chosen = [v for v, (family, _) in platforms.VARIANTS.items()
              if selected(variants, v, family)]
    if not chosen:
        raise ValueError(f"no variant matches {list(variants)}; valid: "
                         f"{', '.join(platforms.VARIANTS)}")
    run_id = check_run_id(run_id) if run_id is not None else new_run_id(
        "quick" if quick else "run")
    root = Path(datasets) if datasets else None
    store = RunStore(run_id, root=root, force=force)
    say(f"measuring {', '.join(names)} on {len(chosen)} variant(s) into {store.dir}")
    with store.locked():  # one writer for the whole campaign
        started, before = time.monotonic(), host_info.load()
        entry = {"experiments": names, "quick": quick, "reps": reps,
                 "started_at": before["at"], "load_before": before, "outcome": "interrupted"}
        try:
            for name in names:
                exps.run(exps.get(name), chosen, store, reps=reps or None, quick=quick,
                         progress=progress)
            entry["outcome"] = "completed"
        except Exception as exc:
            entry["outcome"] = f"error: {type(exc).__name__}: {exc}"
            raise
        finally:
            after = host_info.load()
            entry.update(finished_at=after["at"], load_after=after,
                         duration_s=round(time.monotonic() - started, 1),
                         git_commit=host_info.git_commit())
            try:
                host_info.record_campaign(store.dir, entry)
            except WriteFailed:
                if entry["outcome"] == "completed":
                    raise  # else the error in flight already says what could not be written
            say(f"campaign {run_id}: {entry['outcome']} in {entry['duration_s']:.0f} s")
    return run_id


def _known_runs(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if (p / RESULTS_FILE).exists()) \
        if root.exists() else []


def main(args: argparse.Namespace) -> int:
    """``virtbench reproduce [--quick] [--run-id ID] [--rerun] [--out DIR] [--only NAME]``."""
    root = datasets_dir()
    out = Path(args.out)
    unmatched = [o for o in args.only or () if not notebooks([o])]
    if unmatched:  # before anything is measured or read
        raise ValueError(f"--only {unmatched[0]!r} matches no notebook; notebooks: "
                         f"{', '.join(p.stem for p in notebooks())}")
    if args.rerun:
        run_id = measure(getattr(args, "run_id", None), quick=bool(args.quick),
                         force=bool(getattr(args, "force", False)))
    else:
        run_id = DEFAULT_RUN if args.run_id is None else args.run_id
        check_run_id(run_id)
        if not (root / run_id / RESULTS_FILE).exists():
            known = ", ".join(_known_runs(root)) or "none"
            print(f"virtbench reproduce: error: no dataset {root / run_id / RESULTS_FILE} "
                  f"(runs here: {known}); measure one with `virtbench reproduce --rerun "
                  "[--quick]` or name one with --run-id", file=sys.stderr)
            return 2
    results = reproduce(run_id, out, quick=bool(args.quick), only=args.only or (),
                        datasets=root)
    return 0 if all(r.status == "ok" for r in results) else 1

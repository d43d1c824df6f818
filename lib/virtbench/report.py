"""Batch reproduction: execute every notebook with papermill, export HTML, write an index.

``virtbench reproduce`` analyses one dataset (``--run-id``, default ``reference``) or, with
``--rerun``, measures a new one first (every registered experiment on every variant, quick
when ``--quick``). Each notebook runs in the ``python3`` kernel of the interpreter running
this module; one failing notebook does not stop the others. Every executed notebook is
exported to self-contained HTML (figures embedded, no code, no external scripts), and
``index.html`` links them with a headline each, the run and the host.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
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

from virtbench.paths import PACKAGE_DIR, PROJECT_DIR, datasets_dir
from virtbench.results import RESULTS_FILE, RunStore, check_run_id, new_run_id

NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"
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


_EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.I)
_MATHJAX_BLOCK = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->",
                            re.S)
# The lab template's module script that would import mermaid.js from a CDN for diagrams
_MERMAID_SCRIPT = re.compile(
    r"<script type=\"module\">(?:(?!</script>).)*?mermaid(?:(?!</script>).)*</script>", re.S)


def export_html(ipynb: Path, target: Path) -> Path:
    """Export an executed notebook to one self-contained HTML file without code cells."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.embed_images = True
    body, _ = exporter.from_notebook_node(nbformat.read(ipynb, as_version=4))
    body = _MATHJAX_BLOCK.sub("", body)
    body = _EXTERNAL_SCRIPT.sub("", body)
    body = _MERMAID_SCRIPT.sub("", body)
    target.write_text(body, encoding="utf-8")
    return target


def execute(path: Path, out: Path, parameters: dict, *, kernel_name: str = KERNEL_NAME,
            timeout: float = NOTEBOOK_TIMEOUT_S) -> NotebookResult:
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
            result.headline = headline_of(nbformat.read(executed, as_version=4))
            result.html = export_html(executed, out / f"{path.stem}.html")
        except Exception as exc:
            result.status = "failed"
            detail = "".join(traceback.format_exception_only(exc)).strip()
            result.error = "; ".join(x for x in (result.error, f"HTML export: {detail}") if x)
    return result


def host_facts(run_dir: Path) -> dict:
    path = run_dir / "host.json"
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def write_index(results: Sequence[NotebookResult], out: Path, run_id: str, host: dict,
                quick: bool = False) -> Path:
    """``out/index.html``: one line per notebook (link, status, headline), run and host."""
    from virtbench.claims import host_line
    from virtbench.stats import POLICY

    policy = "".join(f"<li>{html.escape(rule)}</li>" for rule in POLICY.rules())

    ok = sum(r.status == "ok" for r in results)
    hostname = str(host.get("hostname") or "unknown host")
    rows = []
    for r in results:
        link = (f'<a href="{html.escape(r.html.name)}">{html.escape(r.name)}</a>' if r.html
                else html.escape(r.name))
        status = ("ok" if r.status == "ok" else
                  f'<span style="color:#a94442">failed: {html.escape(r.error[:400])}</span>')
        rows.append(f"<tr><td>{link}</td><td>{status}</td><td>{html.escape(r.headline)}</td>"
                    f"<td>{html.escape(run_id)} on {html.escape(hostname)}</td>"
                    f"<td>{r.seconds:.0f} s</td></tr>")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = host.get("git_commit") or "unknown"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>virtbench reports: {html.escape(run_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; }}
table {{ border-collapse: collapse; }} td, th {{ border-bottom: 1px solid #ddd;
padding: .4em .6em; text-align: left; vertical-align: top; }}
.meta {{ color: #555; }}
</style></head><body>
<h1>virtbench: process, container, WebAssembly and VM, measured here</h1>
<p class="meta">Run <b>{html.escape(run_id)}</b>{' (quick mode)' if quick else ''} &middot;
host {html.escape(host_line(host))} &middot; commit {html.escape(str(commit))}
&middot; reports built {when} &middot; {ok} of {len(results)} notebooks ok</p>
<table><thead><tr><th>report</th><th>status</th><th>headline</th><th>run and host</th>
<th>time</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<p class="meta">Each report holds its claims-check table: claim, source, claimed value,
measured median with 95% CI, verdict. Cells that could not be measured say why. Headlines
count one verdict per published claim and platform family.</p>
<h2>Verdict policy</h2>
<ul class="meta">{policy}</ul>
</body></html>
"""
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def reproduce(run_id: str, out: Path, *, quick: bool = False, only: Sequence[str] = (),
              datasets: Path | None = None, variants: Sequence[str] = (),
              folder: Path = NOTEBOOKS_DIR, progress: Progress = _say) -> list[NotebookResult]:
    """Execute the notebooks on one dataset, export them, write the index; never raises for
    a failing notebook."""
    root = Path(datasets) if datasets else datasets_dir()
    out.mkdir(parents=True, exist_ok=True)
    paths = notebooks(only, folder)
    if not paths:
        raise ValueError(f"no notebooks in {folder}" + (f" matching {list(only)}" if only else ""))
    parameters = {"run_id": run_id, "datasets": str(root), "quick": bool(quick),
                  "rerun": False, "reps": 0, "variants": list(variants)}
    progress(f"reproducing {len(paths)} notebook(s) on run {run_id} ({root / run_id}) "
             f"with {kernel_python()} -> {out}/")
    results = []
    for i, path in enumerate(paths, 1):
        progress(f"[{i}/{len(paths)}] {path.stem} ...")
        r = execute(path, out, parameters)
        results.append(r)
        tail = r.headline if r.status == "ok" else r.error
        progress(f"[{i}/{len(paths)}] {path.stem}: {r.status} ({r.seconds:.1f} s) {tail}")
    index = write_index(results, out, run_id, host_facts(root / run_id), quick)
    failed = [r for r in results if r.status != "ok"]
    progress(f"{len(results)} notebooks: {len(results) - len(failed)} ok, {len(failed)} failed;"
             f" index: {index}")
    for r in failed:
        where = f" (see {r.html})" if r.html else ""
        progress(f"  failed: {r.name}: {r.error}{where}")
    return results


def measure(run_id: str | None = None, *, quick: bool = False, reps: int | None = None,
            variants: Sequence[str] = (), experiments: Sequence[str] | None = None,
            datasets: Path | str | None = None, progress: Progress | None = _say) -> str:
    """Measure every registered experiment (or those named) on the chosen variants (names,
    families or globs, see :mod:`virtbench.patterns`; none = all) into a run (new
    unless ``run_id`` names one to resume); return the run id."""
    from virtbench import experiments as exps
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
    store = RunStore(run_id, root=root)
    say(f"measuring {', '.join(names)} on {len(chosen)} variant(s) into {store.dir}")
    with store.locked():  # one writer for the whole campaign
        for name in names:
            exps.run(exps.get(name), chosen, store, reps=reps or None, quick=quick,
                     progress=progress)
    return run_id


def _known_runs(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if (p / RESULTS_FILE).exists()) \
        if root.exists() else []


def main(args: argparse.Namespace) -> int:
    """``virtbench reproduce [--quick] [--run-id ID] [--rerun] [--out DIR] [--only NAME]``."""
    root = datasets_dir()
    out = Path(args.out)
    if args.rerun:
        run_id = measure(getattr(args, "run_id", None), quick=bool(args.quick))
    else:
        run_id = DEFAULT_RUN if args.run_id is None else args.run_id
        check_run_id(run_id)
        if not (root / run_id / RESULTS_FILE).exists():
            known = ", ".join(_known_runs(root)) or "none"
            print(f"virtbench reproduce: no dataset {root / run_id / RESULTS_FILE} "
                  f"(runs here: {known}); measure one with `virtbench reproduce --rerun "
                  "[--quick]` or name one with --run-id", file=sys.stderr)
            return 2
    results = reproduce(run_id, out, quick=bool(args.quick), only=args.only or (),
                        datasets=root)
    return 0 if all(r.status == "ok" for r in results) else 1

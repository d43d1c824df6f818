"""The papermill batch: kernel, failure isolation, HTML export, index page, CLI entry."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from virtbench import report
from virtbench.results import load_runs

DATA = Path(__file__).parent / "data"


def _notebook(path: Path, cells: list[str], headline: str | None = None) -> Path:
    nb = new_notebook(cells=[new_code_cell("run_id = 'x'\ndatasets = ''")] +
                      [new_code_cell(c) for c in cells])
    nb.cells[0].metadata["tags"] = ["parameters"]
    if headline is not None:
        cell = new_code_cell(f"print({headline!r})")
        cell.metadata["tags"] = [report.HEADLINE_TAG]
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> tuple[list[report.NotebookResult], Path]:
    """Two tiny notebooks, one failing, run through the real batch on the fixture run."""
    folder = tmp_path_factory.mktemp("notebooks")
    _notebook(folder / "a_fails.ipynb", ["raise RuntimeError('deliberate failure')"])
    _notebook(folder / "b_works.ipynb", [
        "import sys, virtbench\nprint(sys.executable)",
        "import matplotlib.pyplot as plt\nplt.plot([1, 2], [3, 4])\nplt.xlabel('x (ms)')",
    ], headline="all good on {run}")
    out = tmp_path_factory.mktemp("reports")
    results = report.reproduce("fixture_run", out, quick=True, datasets=DATA, folder=folder,
                               progress=lambda _m: None)
    return results, out


def test_one_failing_notebook_does_not_stop_the_rest(batch):
    results, _ = batch
    status = {r.name: r.status for r in results}
    assert status == {"a_fails": "failed", "b_works": "ok"}
    failed = next(r for r in results if r.name == "a_fails")
    assert "RuntimeError" in failed.error and "deliberate failure" in failed.error


def test_kernel_is_the_interpreter_running_the_batch(batch):
    results, _ = batch
    ok = next(r for r in results if r.name == "b_works")
    nb = nbformat.read(ok.ipynb, as_version=4)
    printed = nb.cells[2].outputs[0]["text"].strip()
    assert Path(printed).resolve() == Path(sys.executable).resolve()
    assert report.kernel_python() == sys.executable


def test_parameters_are_injected(batch):
    results, _ = batch
    nb = nbformat.read(next(r for r in results if r.name == "b_works").ipynb, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "fixture_run" in injected[0].source and str(DATA) in injected[0].source


def test_html_is_self_contained_without_code(batch):
    results, out = batch
    for r in results:
        assert r.html is not None and r.html.exists(), r.name
    text = (out / "b_works.html").read_text()
    assert "data:image/png;base64," in text
    assert "cdnjs" not in text and "<script src=" not in text
    assert "plt.plot" not in text  # inputs excluded
    failed = (out / "a_fails.html").read_text()
    assert "deliberate failure" in failed  # the error is shown in the report


def test_index_links_every_notebook_with_status_headline_host_and_run(batch):
    results, out = batch
    index = (out / "index.html").read_text()
    assert 'href="a_fails.html"' in index and 'href="b_works.html"' in index
    assert "failed: cell" in index and "deliberate failure" in index
    assert "all good on {run}" in index
    assert "fixture_run" in index and "CPUs" in index  # run id and host line


def test_headline_is_read_from_the_tagged_cell(batch):
    results, _ = batch
    assert next(r for r in results if r.name == "b_works").headline == "all good on {run}"
    assert next(r for r in results if r.name == "a_fails").headline == ""


def test_notebooks_are_found_sorted_and_filtered(tmp_path):
    for name in ("b", "a", "c_x"):
        _notebook(tmp_path / f"{name}.ipynb", [])
    assert [p.stem for p in report.notebooks(folder=tmp_path)] == ["a", "b", "c_x"]
    assert [p.stem for p in report.notebooks(["x"], folder=tmp_path)] == ["c_x"]
    assert [p.stem for p in report.notebooks()] == sorted(p.stem for p in report.notebooks())
    assert len(report.notebooks()) == 12


def _args(**kw) -> argparse.Namespace:
    base = dict(quick=True, run_id=None, rerun=False, out="reports", only=None)
    base.update(kw)
    return argparse.Namespace(**base)


def test_main_without_the_dataset_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VIRTBENCH_DATASETS", str(tmp_path))
    assert report.main(_args(out=str(tmp_path / "r"))) == 2
    err = capsys.readouterr().err
    assert "no dataset" in err and "reference" in err and "--rerun" in err
    assert not (tmp_path / "r" / "index.html").exists()


def test_main_runs_the_named_notebooks_on_a_run(tmp_path, monkeypatch):
    monkeypatch.setenv("VIRTBENCH_DATASETS", str(DATA))
    code = report.main(_args(run_id="fixture_run", out=str(tmp_path), only=["06_cost"]))
    assert code == 0
    assert (tmp_path / "06_cost.html").exists() and (tmp_path / "index.html").exists()


@pytest.mark.integration
def test_measure_runs_experiments_into_a_new_run(tmp_path):
    messages: list[str] = []
    run_id = report.measure(quick=True, reps=1, variants=["native/static"],
                            experiments=["startup", "no_such_experiment"], datasets=tmp_path,
                            progress=messages.append)
    df = load_runs(run_id, root=tmp_path)
    assert set(df["variant"]) == {"native/static"}
    assert df.loc[df["metric"] == "startup", "value"].notna().all()
    assert any("no_such_experiment" in m and "not registered" in m for m in messages)
    host = json.loads((tmp_path / run_id / "host.json").read_text())
    (campaign,) = host["campaigns"]
    assert campaign["experiments"] == ["startup"] and campaign["outcome"] == "completed"
    assert campaign["duration_s"] > 0 and campaign["finished_at"] >= campaign["started_at"]
    assert campaign["load_before"]["loadavg_1_5_15"] and campaign["load_after"]["at"]
    assert any(f"campaign {run_id}: completed" in m for m in messages)


def test_error_bars_are_never_negative():
    from virtbench.plots import error_bars

    bars = error_bars([10.0, 5.0], [9.0, 5.5], [12.0, 6.0])  # 2nd CI sits above its median
    assert bars.tolist() == [[1.0, 0.0], [2.0, 1.0]]


def test_pages_use_the_project_template_with_run_and_data_links(batch):
    _, out = batch
    text = (out / "b_works.html").read_text()
    assert "<script" not in text and "jp-" not in text  # no scripts, no JupyterLab CSS
    assert 'class="vb-header"' in text and 'href="index.html"' in text
    assert "fixture_run" in text
    assert 'href="data/fixture_run/results.csv"' in text
    assert 'href="data/fixture_run/host.json"' in text
    assert (out / "data" / "fixture_run" / "results.csv").exists()
    assert (out / "data" / "fixture_run" / "host.json").exists()
    assert "max-width" in text and "overflow-x: auto" in text  # phone-width rules


def test_index_has_thumbnails_data_links_and_the_policy(batch):
    _, out = batch
    index = (out / "index.html").read_text()
    assert index.count('class="vb-thumb"') == 1  # b_works has a figure, a_fails none
    assert 'src="data:image/png;base64,' in index
    assert 'href="data/fixture_run/results.csv"' in index
    assert "Verdict policy" in index


def test_quick_mode_is_read_from_the_run_not_from_the_flag():
    quick = {"invocations": [{"parameters": {"quick": True}}] * 2}
    full = {"invocations": [{"parameters": {"quick": False}}]}
    mixed = {"invocations": [{"parameters": {"quick": True}}, {"parameters": {"quick": False}}]}
    assert report.quick_mode(quick) == "quick mode"
    assert report.quick_mode(full) == "" and report.quick_mode({}) == ""
    assert report.quick_mode(mixed) == "partly quick mode (1 of 2 invocations)"


def test_index_of_the_full_reference_run_is_not_labelled_quick(tmp_path):
    import json

    from virtbench.paths import PROJECT_DIR

    host = json.loads((PROJECT_DIR / "datasets" / "reference" / "host.json").read_text())
    result = report.NotebookResult("x", "ok", 1.0, headline="h")
    page = report.write_index([result], tmp_path, "reference", host).read_text()
    assert "quick mode" not in page


def test_first_figure_is_a_small_png(batch):
    import base64
    import io

    from PIL import Image

    results, _ = batch
    nb = nbformat.read(next(r.ipynb for r in results if r.name == "b_works"), as_version=4)
    uri = report.first_figure(nb)
    assert uri.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as img:
        assert img.width <= report.THUMB_WIDTH
    assert report.first_figure(new_notebook()) == ""


def test_tables_align_numbers_and_print_human_units():
    import pandas as pd

    from virtbench import plots

    frame = pd.DataFrame({"variant": ["a", "b"], "median": [9732690.0, 4144.0],
                          "unit": ["B", "ms"], "n": [6, 12],
                          "verdict": ["consistent", "lower than claimed"]})
    text = plots.html_table(frame)
    assert "9.28 MiB" in text and "4.14 s" in text and "e+06" not in text
    assert 'class="data row1 col3 vb-num" >12</td>' in text
    assert 'class="data row0 col0" >a</td>' in text  # text: left-aligned (the table default)
    assert 'vb-ok" >consistent' in text and 'vb-bad" >lower than claimed' in text
    assert 'overflow-x:auto' in text
    assert plots.human(512, "B") == "512 B" and plots.human(2048, "KiB") == "2 MiB"
    assert plots.human(0.25, "s") == "250 ms" and plots.human(12.5, "req/s") == "12.5 req/s"
    folded = plots.details_html("10 rows", frame)
    assert folded.startswith("<details") and "<summary>10 rows</summary>" in folded
    assert "9.28 MiB" in folded
    assert plots.details_html("raw", "<p>x</p>").endswith("<p>x</p></details>")


def test_the_index_names_every_commit_that_measured_the_run():
    from virtbench.provenance import commits_line

    def inv(experiment: str, commit: str) -> dict:
        return {"parameters": {"experiment": experiment}, "git_commit": commit}

    one = {"git_commit": "b" * 40, "invocations": [inv("startup", "a" * 40), inv("cpu", "a" * 40)]}
    assert commits_line(one) == "a" * 12
    two = {"invocations": [inv("startup", "a" * 40), inv("cpu", "a" * 40),
                           inv("speedtest1", "c" * 40), inv("disk", "c" * 40)]}
    assert commits_line(two) == f"{'a' * 12} (startup, cpu), {'c' * 12} (speedtest1, disk)"
    assert commits_line({"git_commit": "d" * 40}) == "d" * 40
    assert commits_line({}) == "unknown"


def test_every_page_and_the_index_say_what_made_them(batch):
    """The analysis commit, the dataset, the measuring commits, the host and the engines,
    read from host.json and this installation, at the top of each page and of the index."""
    from virtbench.host import read_host_json
    from virtbench.provenance import commits_line

    _, out = batch
    host = read_host_json(DATA / "fixture_run")
    for page in ("b_works.html", "index.html"):
        text = (out / page).read_text()
        block = text[text.index('<dl class="vb-provenance">'):]
        block = block[:block.index("</dl>")]
        assert "<dt>analysed by</dt><dd>virtbench " in block
        assert "<dt>dataset</dt><dd>fixture_run</dd>" in block
        assert f"<dt>measured by commit</dt><dd>{commits_line(host)}</dd>" in block
        assert "<dt>host</dt>" in block and "<dt>engines</dt>" in block


def test_provenance_lines_flag_engines_that_differ():
    from virtbench.provenance import engines_line, provenance

    host = {"versions": {"wasmtime-py": "50.0.1", "qemu": "QEMU emulator version 7.2.22 (x)",
                         "docker-engine": "Docker version 20.10.24+dfsg1, build 5d6db84"}}
    assert engines_line(host["versions"]) == (
        "wasmtime (embedded, wheel) 50.0.1; QEMU 7.2.22 (x); Docker engine 20.10.24+dfsg1")
    lines = dict(provenance(host, "r", "virtbench 0.1.0", {"wasmtime-py": "51.0.0"}))
    assert lines["engine drift"] == (
        "wasmtime-py 51.0.0 is installed; run r was measured with 50.0.1")
    assert "engine drift" not in dict(provenance(host, "r", "v", host["versions"]))


def test_durations_read_as_a_person_reads_them():
    from virtbench.durations import duration_text

    assert [duration_text(s) for s in (4.4, 187, 3900)] == ["4 s", "3 min 07 s", "1 h 05 min"]


def test_the_headline_cell_is_shown_right_after_the_intro():
    from nbformat.v4 import new_markdown_cell

    nb = new_notebook(cells=[new_markdown_cell("# intro"), new_code_cell("a = 1"),
                             new_code_cell("plot()"), new_code_cell("print('found')")])
    nb.cells[-1].metadata["tags"] = [report.HEADLINE_TAG]
    moved = report.lead_with_headline(nb)
    assert [c.source for c in moved.cells] == ["# intro", "print('found')", "a = 1", "plot()"]
    assert [c.source for c in nb.cells][-1] == "print('found')"  # the notebook is not changed
    plain = new_notebook(cells=[new_markdown_cell("# intro"), new_code_cell("a = 1")])
    assert [c.source for c in report.lead_with_headline(plain).cells] == ["# intro", "a = 1"]


def test_alt_text_is_read_from_the_figure_titles_and_notes():
    import matplotlib

    matplotlib.use("Agg")
    from virtbench import plots

    fig, ax = plots.plt.subplots()
    ax.set_title("Median startup", loc="left")
    ax.set_xlabel("startup (ms)")
    assert plots.alt_text(fig) == "Median startup. startup (ms)"
    note = plots.no_data("not measured, because docker is absent", "Startup")
    assert plots.alt_text(note) == "Startup. not measured, because docker is absent"
    plots.plt.close("all")


def test_an_empty_claims_chart_says_why_from_the_check():
    import pandas as pd

    from virtbench import plots

    assert "no published claim" in plots.not_measured_because(pd.DataFrame())
    check = pd.DataFrame({"n": [0, 0, 0], "reason": ["docker is absent", "docker is absent",
                                                     "kvm is absent"]})
    said = plots.not_measured_because(check)
    assert said == "not measured, because docker is absent; kvm is absent"


def test_the_overview_grid_text_is_at_least_11_px_at_1280_px():
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    from virtbench import plots

    systems = ["VM", "Docker", "Wasm", "Edera"]
    cells = pd.DataFrame([dict(aspect=a, system=s, verdict="consistent", claimed="1-2 s",
                               measured="1.5 s [1.4, 1.6]") for a in ("startup", "memory")
                          for s in systems])
    fig = plots.verdict_matrix(cells, "grid")
    dpi = fig.get_dpi()
    shown = min(1.0, plots.PAGE_WIDTH_PX / (fig.get_figwidth() * dpi))  # scale on the page
    sizes = [t.get_fontsize() * dpi / 72 * shown for t in fig.axes[0].texts]
    assert sizes and min(sizes) >= 11, sizes
    plots.plt.close("all")


def test_p_values_read_as_p_below_a_thousandth_or_two_digits():
    from virtbench import tables

    assert tables.number_text(0.00002, "p_holm", "") == "< 0.001"
    assert tables.number_text(0.02134, "p", "") == "0.021"


def test_the_overview_grid_states_measured_ranges_in_human_units():
    from virtbench import tables

    assert tables.between_text(9732671, 194675827, "B") == "9.28\u2013186 MiB"
    assert tables.between_text(1538, 3866, "ms") == "1.54\u20133.87 s"
    assert tables.between_text(202.5, 3002.5, "ms") == "202 ms\u20133 s"
    assert tables.between_text(133816, 133816, "B") == "131 KiB"


def test_the_index_thumbnail_is_described_by_its_figure_alt_text():
    from nbformat.v4 import new_output

    cell = new_code_cell("fig")
    cell.outputs = [new_output("display_data", data={"image/png": "iVBORw0KGgo="},
                               metadata={"image/png": {"alt": "Startup claims"}})]
    assert report.first_figure_alt(new_notebook(cells=[new_code_cell("x"), cell])) == \
        "Startup claims"
    assert report.first_figure_alt(new_notebook(cells=[new_code_cell("x")])) == ""


def test_reproducing_some_notebooks_keeps_the_other_cards_of_the_same_run(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "a_first.ipynb", ["print(1)"], headline="first says {run}")
    _notebook(folder / "b_second.ipynb", ["print(2)"], headline="second says {run}")
    out = tmp_path / "reports"
    quiet = dict(quick=True, datasets=DATA, folder=folder, progress=lambda _m: None)
    report.reproduce("fixture_run", out, **quiet)
    (folder / "b_second.ipynb").unlink()
    _notebook(folder / "b_second.ipynb", ["print(3)"], headline="second again")
    again = report.reproduce("fixture_run", out, only=["b_second"], **quiet)
    assert [r.name for r in again] == ["b_second"]
    index = (out / "index.html").read_text()
    assert index.index("first says") < index.index("second again")  # notebook order
    assert "second says" not in index and re.search(r"2 of 2\s+notebooks ok", index)
    (out / "a_first.html").unlink()  # a card whose report is gone is not shown
    report.reproduce("fixture_run", out, only=["b_second"], **quiet)
    assert "first says" not in (out / "index.html").read_text()


def test_cards_of_another_run_are_not_merged(tmp_path):
    from virtbench import cards

    (tmp_path / "a.html").write_text("")
    cards.save([report.NotebookResult("a", "ok", 1.0, html=tmp_path / "a.html")], tmp_path,
               "run_one")
    new = [report.NotebookResult("b", "ok", 1.0)]
    assert [c.name for c in cards.merged(new, tmp_path, "run_one", ["a", "b"])] == ["a", "b"]
    assert [c.name for c in cards.merged(new, tmp_path, "run_two", ["a", "b"])] == ["b"]
    (tmp_path / cards.CARDS_FILE).write_text("{not json")
    assert [c.name for c in cards.merged(new, tmp_path, "run_one", ["a", "b"])] == ["b"]

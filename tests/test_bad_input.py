"""Bad input, command by command (issue 26): every class of bad argument ends in a non-zero
exit and one line that says what was wrong (and what is valid), with no traceback and
nothing written: no run folder, no report, no file in the working directory. Each case runs
in this process under a 60 s alarm, so a case that is wrongly accepted fails instead of
measuring."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from virtbench.cli import main

DATA = Path(__file__).parent / "data"
N = ["--variant", "native/static", "--reps", "1", "--no-progress"]
OWN = [*N, "--command", "/bin/true"]
WASM = ["--variant", "wasmtime-cli/jit", "--reps", "1", "--no-progress"]

#: (argv, the text the error line must hold, exit status); ``{tmp}`` is a scratch folder
#: holding bad.toml (not TOML), unknown.toml (a spec with an unknown key), notwasm.wasm and
#: plan.toml (not TOML); the datasets folder holds one valid run, ``fx``.
CASES = [
    # run: experiment, variants, repetitions, run id, options
    (["run", "nope"], "unknown experiment 'nope'; valid: containment, cpu", 2),
    (["run", "startup", "--variant", "nope"], "no variant matches 'nope'", 2),
    (["run", "startup", "--family", "nope"], "unknown family 'nope'; valid: native", 2),
    (["run", "startup", "--reps", "0"], "must be a positive integer (1 or more), got 0", 2),
    (["run", "startup", "--reps", "x"], "'x' is not an integer", 2),
    (["run", "startup", "--run-id", "../up"], "invalid run id '../up'", 2),
    (["run", "startup", *N, "--run-id", "reference"], "shipped reference dataset", 3),
    (["run", "startup", *N, "--seed", "x"], "--seed: invalid int value: 'x'", 2),
    (["run", "startup", *N, "--option", "noequals"], "expects KEY=VALUE, got 'noequals'", 2),
    (["run", "startup", *N, "--option", "nope=1"], "unknown option 'nope' for experiment", 2),
    (["run", "cpu", *N, "--option", "cpu_millions=abc"], "cpu_millions='abc' is invalid", 2),
    # run: your own workload
    (["run", "startup", *N, "--command", "/nonexistent/bin"], "no such file (nor on PATH)", 2),
    (["run", "startup", *WASM, "--wasm", "/nonexistent.wasm"], "does not exist", 2),
    (["run", "startup", *WASM, "--wasm", "{tmp}/notwasm.wasm"], "no \\0asm magic number", 2),
    (["run", "startup", "--variant", "docker/runc", "--reps", "1", "--no-progress", "--image",
      "/nonexistent.tar", "--command", "/x"], "image: /nonexistent.tar: no such file", 2),
    (["run", "startup", *N, "--spec", "/nonexistent.toml"], "/nonexistent.toml: no such", 2),
    (["run", "startup", *N, "--spec", "{tmp}/bad.toml"], "bad.toml:1: not valid TOML", 2),
    (["run", "startup", *N, "--spec", "{tmp}/unknown.toml"], "'frobnicate': unknown key", 2),
    (["run", "startup", *OWN, "--stdin", "/nonexistent"], "stdin: /nonexistent: no such", 2),
    (["run", "startup", *OWN, "--env", "NOEQUALS"], "'NOEQUALS': expected K=V", 2),
    (["run", "startup", *OWN, "--dir", "/nonexistent"], "/nonexistent: no such directory", 2),
    (["run", "startup", *OWN, "--time-limit", "-1"], "-1 is not in (0, 86400] seconds", 2),
    (["run", "startup", *OWN, "--time-limit", "abc"], "invalid float value: 'abc'", 2),
    (["run", "startup", *OWN, "--ok-exit", "x"], "--ok-exit: invalid int value: 'x'", 2),
    (["run", "startup", *OWN, "--success", "["], "'[' is not a regular expression", 2),
    (["run", "startup", *N, "--arg", "x"], "describe your own workload", 2),
    # list, compare, export
    (["list", "nope"], "invalid choice: 'nope'", 2),
    (["list", "metrics", "--experiment", "nope"], "no metrics are declared for", 2),
    (["compare", "fx", "../x"], "invalid run id '../x'", 2),
    (["compare", "fx", "nope"], "no dataset", 2),
    (["compare", "fx", "fx", "--experiment", "nope"], "unknown experiment 'nope'; valid", 2),
    (["compare", "fx", "fx", "--metric", "nope"], "unknown metric 'nope'", 2),
    (["export", "../../other/run", "--format", "csv"], "invalid run id", 2),
    (["export", "nope"], "no dataset", 2),
    (["export", "fx", "--format", "xml"], "invalid choice: 'xml'", 2),
    (["export", "fx", "--format", "csv", "--out", "/nonexistent/dir/fx.csv"],
     "there is no folder /nonexistent/dir", 2),
    # claims, recommend
    (["claims", "--run-id", "a b"], "invalid run id 'a b'", 2),
    (["claims", "--run-id", "nope"], "no dataset", 2),
    (["claims", "--run-id", "fx", "--source", "nope"], "unknown source 'nope'; valid: seed", 2),
    (["claims", "--min-n", "0"], "must be a positive integer (1 or more), got 0", 2),
    (["claims", "--margin", "high"], "invalid float value: 'high'", 2),
    (["claims", "--run-id", "fx", "--margin", "2"], "margin must be in [0, 1), got 2.0", 2),
    (["claims", "--run-id", "fx", "--margin", "-0.1"], "margin must be in [0, 1)", 2),
    (["recommend"], "give at least one budget", 2),
    (["recommend", "--max-start-ms", "abc"], "invalid float value: 'abc'", 2),
    (["recommend", "--max-start-ms", "-5"], "max-start-ms must be a positive number", 2),
    (["recommend", "--max-mem-mib", "0"], "max-mem-mib must be a positive number", 2),
    (["recommend", "--isolation", "nope"], "unknown isolation level 'nope'; valid", 2),
    (["recommend", "--max-start-ms", "10", "--run-id", "nope"], "no dataset", 2),
    # repair
    (["repair", "nope"], "no run 'nope'", 2),
    (["repair", "a/b"], "invalid run id 'a/b'", 2),
    # campaign
    (["campaign", "/nonexistent.toml", "--local", "1"], "cannot read plan", 2),
    (["campaign", "{tmp}/plan.toml", "--local", "1"], "plan.toml: not valid TOML", 2),
    (["campaign", "{tmp}/plan.toml"], "one of the arguments --scheduler --local", 2),
    (["campaign", "{tmp}/plan.toml", "--local", "0"], "must be a positive integer", 2),
    (["campaign", "plan.toml", "--local", "1", "--run-id", "/abs"], "invalid run id", 2),
    # reproduce, selfcheck, doctor, published, worker
    (["reproduce", "--run-id", ".hidden"], "invalid run id '.hidden'", 2),
    (["reproduce", "--run-id", "fx", "--only", "nope"], "--only 'nope' matches no notebook", 2),
    (["reproduce", "--run-id", "nope"], "no dataset", 2),
    (["selfcheck", "--check", "nope"], "unknown selfcheck 'nope'; valid: native_start", 2),
    (["selfcheck", "--rounds", "0"], "must be a positive integer", 2),
    (["selfcheck", "--run-id", "x/../y"], "invalid run id 'x/../y'", 2),
    (["doctor", "--family", "nope"], "invalid choice: 'nope'", 2),
    (["published", "nope"], "unknown source 'nope'; valid sources: seed", 2),
    (["worker"], "the following arguments are required: ADDRESS", 2),
    (["nope"], "invalid choice: 'nope'", 2),
]


def _files(*roots: Path) -> list[str]:
    return sorted(str(p) for root in roots for p in root.rglob("*"))


@pytest.fixture
def place(tmp_path, monkeypatch):
    scratch, datasets, work = tmp_path / "in", tmp_path / "ds", tmp_path / "cwd"
    for folder in (scratch, datasets, work):
        folder.mkdir()
    (scratch / "bad.toml").write_text("this is = = not toml\n")
    (scratch / "unknown.toml").write_text('name = "x"\ncommand = "/bin/true"\nfrobnicate = 1\n')
    (scratch / "notwasm.wasm").write_bytes(b"hello")
    (scratch / "plan.toml").write_text("[[experiment]\n")
    shutil.copytree(DATA / "fixture_run", datasets / "fx")
    monkeypatch.setenv("VIRTBENCH_DATASETS", str(datasets))
    monkeypatch.chdir(work)
    return scratch, datasets, work


def _timeout(*_args) -> None:
    raise TimeoutError("the command was still running after 60 s: the bad input was taken")


@pytest.mark.parametrize(("argv", "said", "status"), CASES,
                         ids=[" ".join(a)[:60] for a, _s, _c in CASES])
def test_bad_input_is_one_clear_line_and_writes_nothing(place, capsys, argv, said, status):
    scratch, datasets, work = place
    before = _files(datasets, work)
    argv = [a.replace("{tmp}", str(scratch)) for a in argv]
    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(60)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # main() routes SIGTERM for a run
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert code == status, err
    assert len(errors) == 1 and said in errors[0], err
    assert "Traceback" not in err
    assert _files(datasets, work) == before


def test_the_table_covers_every_command():
    from virtbench.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command_name")
    named = {argv[0] for argv, _s, _c in CASES}
    assert set(sub.choices) <= named


def test_an_export_that_cannot_be_written_is_one_line_and_leaves_no_part(place, capsys,
                                                                          monkeypatch):
    import pandas as pd

    _scratch, _datasets, work = place

    def full_disk(self, path, **_kw):
        Path(path).write_text("run_id,exp")  # half a file, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    assert main(["export", "fx", "--format", "csv"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "virtbench: error: cannot write fx.csv: No space left on device"
    assert list(work.iterdir()) == []

"""Tool versions in host.json are versions or an explicit "unknown: why"."""

from __future__ import annotations

import stat

from virtbench import host
from virtbench.process import tool_version


def script(tmp_path, name: str, body: str):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_a_crash_is_not_a_version(tmp_path):
    crash = script(tmp_path, "crashy", 'echo "Traceback (most recent call last):" >&2\n'
                                       'echo "  File \\"x.py\\", line 1.5" >&2\nexit 1\n')
    assert tool_version([str(crash), "--version"]) is None
    assert host.version_or_why([str(crash), "--version"]) == (
        f"unknown: `{crash} --version` printed no version")


def test_a_version_line_is_found_on_stdout_or_stderr(tmp_path):
    wrk_like = script(tmp_path, "wrkish", 'echo "Usage: wrkish <options>" >&2\n'
                                          'echo "wrkish 4.1.0 [epoll]" >&2\nexit 1\n')
    assert tool_version([str(wrk_like), "-v"]) == "wrkish 4.1.0 [epoll]"


def test_a_missing_tool_says_so():
    assert host.version_or_why(["no-such-tool-here", "--version"]) == (
        "unknown: no-such-tool-here is not installed")


def test_collected_versions_are_never_a_traceback():
    for name, value in host.collect()["versions"].items():
        assert value is None or not str(value).startswith("Traceback"), name


def test_a_corrupt_host_json_is_named_where_it_is_read(tmp_path):
    import pytest

    from virtbench.dataset import Dataset
    from virtbench.results import DatasetError, Measurement, RunStore, make_rows

    store = RunStore("r", root=tmp_path)
    with store.locked():
        store.write_cell(make_rows([Measurement("startup", 1.0, "ms", "t")], run_id="r",
                                   experiment="startup", family="native",
                                   variant="native/static", workload="noop", rep=0))
    (tmp_path / "r" / "host.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"host\.json"):
        Dataset.load("r", tmp_path)
    with pytest.raises(DatasetError, match=r"host\.json"):
        host.read_host_json(tmp_path / "r")

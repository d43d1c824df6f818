"""The spawn-and-time helper and long-running instances."""

from __future__ import annotations

import resource
import sys

import pytest

from virtbench.process import (
    ProcessTimeout,
    launcher,
    parse_launch_line,
    spawn_and_time,
    start_instance,
)


def test_parse_launch_line():
    line = "VB-LAUNCH wall_ns=612345 status=0 maxrss_kib=548 utime_us=0 stime_us=412\n"
    assert parse_launch_line(line) == {"wall_ns": 612345, "status": 0, "maxrss_kib": 548,
                                       "utime_us": 0, "stime_us": 412}
    with pytest.raises(ValueError, match="VB-LAUNCH"):
        parse_launch_line("garbage")


@pytest.mark.integration
def test_peak_rss_is_the_childs_not_the_harness():
    assert launcher() is not None, "the launch helper must build with clang"
    done = spawn_and_time(["/bin/true"]).check()
    harness_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert done.timed_by == "launch"
    assert 0 < done.peak_rss_kib < harness_kib
    assert done.wall_ns > 0 and done.returncode == 0


@pytest.mark.integration
def test_exit_code_and_output_are_kept():
    done = spawn_and_time(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    with pytest.raises(RuntimeError, match="exited 3: err"):
        done.check()


@pytest.mark.integration
def test_timeout_kills_the_process():
    with pytest.raises(ProcessTimeout, match="did not finish within 0.5 s"):
        spawn_and_time(["/bin/sleep", "30"], timeout=0.5)


@pytest.mark.integration
def test_instance_waits_for_marker_and_is_stopped():
    code = "import time; print('noise'); print('VB-READY x', flush=True); time.sleep(60)"
    with start_instance([sys.executable, "-c", code]) as inst:
        inst.wait_for("VB-READY", timeout=30)
        assert inst.proc.poll() is None
    assert inst.proc.poll() is not None
    assert "noise" in inst.output


@pytest.mark.integration
def test_instance_marker_timeout_and_early_exit_are_reported():
    with start_instance(["/bin/sleep", "30"]) as inst, pytest.raises(ProcessTimeout):
        inst.wait_for("VB-READY", timeout=0.3)
    with start_instance(["/bin/sh", "-c", "echo bye"]) as inst:
        with pytest.raises(RuntimeError, match="exited 0 before 'VB-READY'"):
            inst.wait_for("VB-READY", timeout=30)

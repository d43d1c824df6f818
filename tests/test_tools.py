"""Parsers of sysbench and redis-benchmark over their captured real output (issue 22)."""

from __future__ import annotations

from pathlib import Path

import pytest

from virtbench.workloads.tools import (
    parse_redis_benchmark,
    parse_strace_summary,
    parse_sysbench,
    tool,
)

DATA = Path(__file__).parent / "data" / "tools"


def test_sysbench_cpu_report_gives_events_per_second():
    got = parse_sysbench((DATA / "sysbench_cpu_1.0.20.txt").read_text())
    assert (got.version, got.test, got.threads) == ("1.0.20", "cpu", 1)
    assert got.events_per_s == 617.24 and got.mib_per_s is None
    assert got.events == 1245 and got.total_time_s == 2.0163
    assert (got.latency_avg_ms, got.latency_p95_ms) == (1.59, 12.30)


def test_sysbench_memory_report_gives_mib_per_second():
    got = parse_sysbench((DATA / "sysbench_memory_1.0.20.txt").read_text())
    assert got.test == "memory" and got.mib_per_s == 1022.38 and got.events_per_s is None
    assert got.events == 1048576


def test_sysbench_truncated_report_names_what_is_missing():
    text = (DATA / "sysbench_cpu_1.0.20.txt").read_text().split("General statistics")[0]
    with pytest.raises(ValueError, match="total time"):
        parse_sysbench(text)


@pytest.mark.parametrize("name, set_rps, get_p99", [
    ("redis_benchmark_7.0.15.csv", 10845.99, 10.799),
    ("redis_benchmark_7.0.15_pipelined.csv", 243902.44, 3.423)])
def test_redis_benchmark_csv_per_command(name, set_rps, get_p99):
    got = parse_redis_benchmark((DATA / name).read_text())
    assert set(got) == {"SET", "GET"}
    assert got["SET"].rps == set_rps and got["GET"].p99_ms == get_p99


def test_redis_benchmark_plain_output_is_refused():
    with pytest.raises(ValueError, match="--csv"):
        parse_redis_benchmark("====== SET ======\n  20000 requests completed in 1.84 seconds\n")


def test_unknown_tool_lists_the_valid_ones():
    with pytest.raises(ValueError, match="redis-benchmark"):
        tool("redis-cli")


def test_strace_summary_counts_calls_per_syscall_without_the_total():
    got = parse_strace_summary((DATA / "strace_c_6.1_ls.txt").read_text())
    assert got["close"] == 23 and got["mmap"] == 30 and got["rseq"] == 1
    assert "total" not in got
    assert sum(got.values()) == 145  # the total line's call count


def test_strace_without_a_summary_is_refused():
    with pytest.raises(ValueError, match="strace -c"):
        parse_strace_summary("strace: Process 30020 attached\n")

"""Parsing wrk's report (captured real output) and running it against a native server."""

from __future__ import annotations

from pathlib import Path

import pytest

from virtbench.loadgen import SOCKET_ERRORS, parse_wrk, run_wrk

DATA = Path(__file__).parent / "data"


def test_parse_captured_wrk_output():
    r = parse_wrk((DATA / "wrk_latency.txt").read_text())
    assert r.requests == 395581 and r.duration_s == 2.0
    assert r.requests_per_s == pytest.approx(197686.52)
    assert r.percentiles_ms == pytest.approx({50: 0.036, 75: 0.043, 90: 0.048, 99: 0.091})
    assert r.latency_mean_ms == pytest.approx(0.03859)
    assert r.latency_max_ms == pytest.approx(2.40)
    assert r.errors == 0


def test_parse_errors_and_mixed_units():
    r = parse_wrk((DATA / "wrk_errors.txt").read_text())
    assert r.errors == 2 + 1 + 4
    assert r.p50_ms == pytest.approx(0.784) and r.p99_ms == pytest.approx(53.0)
    assert r.percentiles_ms[90] == pytest.approx(0.95)


def test_refused_connection_is_an_error():
    with pytest.raises(ValueError, match="could not connect"):
        parse_wrk((DATA / "wrk_refused.txt").read_text())
    with pytest.raises(ValueError, match="not a wrk report"):
        parse_wrk("hello")


def test_load_goes_to_loopback_only():
    with pytest.raises(ValueError, match="loopback"):
        run_wrk(80, duration_s=1, host="10.0.0.1")


def test_wait_http_times_out_with_context_on_a_closed_port():
    from virtbench.accounting import free_port
    from virtbench.loadgen import wait_http

    with pytest.raises(TimeoutError, match="no HTTP 200 within 0.2 s; server said nothing"):
        wait_http(free_port(), 0.2, context=lambda: "server said nothing")
    with pytest.raises(RuntimeError, match="exited before answering"):
        wait_http(free_port(), 5, alive=lambda: False)


@pytest.mark.integration
def test_wait_http_sees_a_real_server_answer():
    from virtbench import platforms
    from virtbench.accounting import free_port
    from virtbench.loadgen import http_ok, wait_http
    from virtbench.platforms.base import Workload

    port = free_port()
    with platforms.create("native/static").instance(Workload("http"), port=port):
        assert wait_http(port, 10) > 0 and http_ok(port)
    assert not http_ok(port)


def test_parse_a_real_run_of_10000_connections():
    """`wrk -t2 -c10000 -d5s --latency --timeout 5s` against the epoll server (seed profile)."""
    r = parse_wrk((DATA / "wrk_seed_10k.txt").read_text())
    assert (r.requests, r.duration_s) == (9413, pytest.approx(5.41))
    assert r.requests_per_s == pytest.approx(1738.86) == r.ok_per_s
    assert r.p50_ms == pytest.approx(1070) and r.p99_ms == pytest.approx(1680)
    assert r.errors == 0 and r.socket_errors == dict.fromkeys(SOCKET_ERRORS, 0)


def test_socket_errors_of_a_10000_connection_run_are_counted_by_kind():
    """The same load; the server was killed after 3 s (connections reset, writes refused)."""
    r = parse_wrk((DATA / "wrk_seed_10k_errors.txt").read_text())
    assert r.socket_errors == {"connect": 0, "read": 7560, "write": 2107, "timeout": 0}
    assert r.errors == 7560 + 2107 and r.non_2xx == 0
    assert r.requests == 5185 and r.p99_ms == pytest.approx(1170)


def test_non_2xx_responses_are_errors_not_throughput():
    r = parse_wrk((DATA / "wrk_errors.txt").read_text())
    assert r.non_2xx == 4
    assert r.ok_per_s == pytest.approx(10671.33 * (32014 - 4) / 32014)
    assert r.ok_per_s < r.requests_per_s


def test_a_run_with_no_answer_has_no_latency():
    """10,000 connections to a listener that never answers: wrk prints zeros, not latencies."""
    r = parse_wrk((DATA / "wrk_seed_10k_unanswered.txt").read_text())
    assert r.requests == 0 and r.ok_per_s == 0.0
    assert r.p50_ms is None and r.p99_ms is None


def test_connections_on_a_port_are_counted_until_closed():
    import socket

    from virtbench.loadgen import connections_on, wait_closed

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert connections_on(port) == 0  # the listener itself is not a connection
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        assert connections_on(port) == 1  # the server's end only, not the client's
        assert wait_closed(port, 0.2) == 1
        assert wait_closed(port, 30, stall=0.2) == 1  # none closing: it stops waiting
        client.close()
        accepted.close()
        assert wait_closed(port, 5) == 0

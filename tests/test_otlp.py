"""Application and distributed tracing as OpenTelemetry does them: the OTLP/HTTP collector,
the ``trace`` workload, and the observability probe on each family (real runs marked
integration)."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request

import pytest

from virtbench import otlp, platforms
from virtbench.experiments.observability import probe_otlp
from virtbench.platforms.base import NotSupported
from virtbench.platforms.vm.qemu import Boot, Machine, kernel_cmdline, qemu_argv
from virtbench.workloads import BuildError, build

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"


def request(spans: list[dict]) -> bytes:
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": "svc"}}]},
        "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}).encode()


def test_json_spans_are_read_against_the_otlp_schema():
    body = request([{"traceId": TRACE, "spanId": "00f067aa0ba902b7", "parentSpanId": PARENT,
                     "name": "work", "kind": 1, "startTimeUnixNano": "1",
                     "endTimeUnixNano": "2"}])
    [span] = otlp.parse_spans(body)
    assert span == otlp.Span(TRACE, "00f067aa0ba902b7", PARENT, "work", "svc")
    assert otlp.children_of([span], TRACE, PARENT) == [span]
    assert otlp.children_of([span], TRACE, "0" * 16) == []


def test_protobuf_spans_are_read_too():
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id = bytes.fromhex(TRACE), bytes.fromhex("00f067aa0ba902b7")
    span.parent_span_id, span.name = bytes.fromhex(PARENT), "work"
    [got] = otlp.parse_spans(req.SerializeToString(), "application/x-protobuf")
    assert (got.trace_id, got.parent_span_id, got.name) == (TRACE, PARENT, "work")


@pytest.mark.parametrize(("body", "content_type", "said"), [
    (b'{"resourceSpans": [{"bogus": 1}]}', "application/json", 'no field named "bogus"'),
    (request([{"traceId": "xyz", "spanId": "00"}]), "application/json", "is not hex"),
    (b"not json", "application/json", "not JSON"),
    (b"\x0a\xff", "application/x-protobuf", "not an ExportTraceServiceRequest"),
    (b"{}", "text/plain", "application/json or application/x-protobuf"),
])
def test_what_is_not_an_export_request_is_refused_naming_why(body, content_type, said):
    with pytest.raises(ValueError, match=said.replace("(", r"\(")):
        otlp.parse_spans(body, content_type)


def test_a_traceparent_is_w3c_and_new_each_time():
    header, trace_id, parent = otlp.traceparent()
    assert header == f"00-{trace_id}-{parent}-01" and len(trace_id) == 32 and len(parent) == 16
    assert otlp.traceparent()[1] != trace_id


def test_the_collector_answers_a_request_and_refuses_a_bad_one():
    with otlp.Collector() as collector:
        url = f"http://127.0.0.1:{collector.port}/v1/traces"
        ok = urllib.request.Request(url, data=request([{"traceId": TRACE, "spanId": PARENT}]),
                                    headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(ok, timeout=10) as reply:
            assert reply.status == 200 and reply.read() == b"{}"
        bad = urllib.request.Request(url, data=b"{", headers={"Content-Type":
                                                              "application/json"})
        with pytest.raises(urllib.error.HTTPError, match="400"):
            urllib.request.urlopen(bad, timeout=10)
    assert [s.trace_id for s in collector.spans] == [TRACE]
    assert collector.requests == 1 and len(collector.rejected) == 1


def test_the_trace_workload_is_not_built_for_wasi_and_says_why():
    with pytest.raises(BuildError, match="no sockets that connect"):
        build("trace", "wasm")


def test_a_guest_reaches_only_the_collector_through_its_guestfwd(tmp_path):
    boot = Boot("trace", ("10.0.2.100", "4318", "00-" + TRACE + "-" + PARENT + "-01"),
                guestfwd=("10.0.2.100", 4318))
    machine = Machine("microvm", "tcg")
    argv = " ".join(qemu_argv(machine, tmp_path / "k", tmp_path / "i", boot))
    assert "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:4318-tcp:127.0.0.1:4318" in argv
    assert "hostfwd" not in argv and "vb.net=1" in kernel_cmdline(boot, "tcg")


@pytest.mark.integration
def test_the_trace_workload_exports_a_child_span_to_the_collector():
    exe = build("trace", "static")
    header, trace_id, parent = otlp.traceparent()
    with otlp.Collector() as collector:
        done = subprocess.run([str(exe), "127.0.0.1", str(collector.port), header],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "status=200" in done.stdout and f"trace_id={trace_id}" in done.stdout
    [span] = otlp.children_of(collector.spans, trace_id, parent)
    assert span.service == "virtbench-trace" and span.name == "vb-work"
    assert span.span_id not in ("", "0" * 16) and span.span_id != parent
    refused = subprocess.run([str(exe), "127.0.0.1", "1", header], capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 1 and "connect" in refused.stderr


@pytest.mark.integration
@pytest.mark.parametrize("variant", ["native/static", "docker/runc", "docker/runc-host",
                                     "qemu-tcg/microvm"])
def test_spans_arrive_from_the_instance_with_the_trace_context(variant):
    plat = platforms.create(variant)
    try:
        if not plat.availability.available:
            pytest.skip(f"{variant}: {plat.availability.reason}")
        spans, context, network = probe_otlp(plat)
    finally:
        plat.close()
    assert (spans.metric, spans.value) == ("probe_otlp_spans", 1.0), spans.tags
    assert (context.metric, context.value) == ("probe_trace_context", 1.0), context.tags
    assert context.tags["status"] == "200" and context.tags["spans"] == "1"
    assert (network.metric, network.value) == ("probe_network_trace", 1.0), network.tags
    reach = context.tags["reached_at"]
    if variant in ("docker/runc", "qemu-tcg/microvm"):  # the instance's own address
        assert network.tags["from"] and reach not in network.tags["from"].split(", ")


@pytest.mark.parametrize("variant", ["wasmtime-cli/jit", "docker+wasm/wasmtime-cli"])
def test_a_wasi_module_cannot_export_and_the_probe_says_why(variant):
    plat = platforms.create(variant)
    try:
        with pytest.raises(NotSupported, match="no sockets that connect"):
            plat.collector_route()
    finally:
        plat.close()


def _pcap(frames: list[bytes], linktype: int = 1) -> bytes:
    import struct

    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    return head + b"".join(struct.pack("<IIII", 0, 0, len(f), len(f)) + f for f in frames)


def _tcp_frame(src: str, dst: str, sport: int, dport: int, payload: bytes = b"") -> bytes:
    import socket
    import struct

    tcp = struct.pack(">HHIIBBHHH", sport, dport, 0, 0, 5 << 4, 0x18, 65535, 0, 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return b"\x00" * 12 + b"\x08\x00" + ip + tcp


def test_a_pcap_of_ethernet_frames_gives_its_tcp_packets():
    from virtbench.netcapture import TcpPacket, read_pcap

    arp = b"\xff" * 12 + b"\x08\x06" + b"\x00" * 28
    data = _pcap([_tcp_frame("10.0.2.15", "10.0.2.100", 40000, 4318, b"POST"), arp,
                  _tcp_frame("10.0.2.100", "10.0.2.15", 4318, 40000)])
    assert read_pcap(data) == [TcpPacket("10.0.2.15", "10.0.2.100", 40000, 4318, 4),
                               TcpPacket("10.0.2.100", "10.0.2.15", 4318, 40000, 0)]
    assert read_pcap(data[:-10]) == read_pcap(data)[:1]  # a cut last record is left out


@pytest.mark.parametrize(("data", "said"), [
    (b"\x00" * 10, "shorter than its 24-byte header"),
    (b"\x00" * 24, "magic 00000000"),
    (_pcap([], linktype=113), "link type 113"),
])
def test_what_is_not_an_ethernet_pcap_is_refused(data, said):
    from virtbench.netcapture import read_pcap

    with pytest.raises(ValueError, match=said):
        read_pcap(data)

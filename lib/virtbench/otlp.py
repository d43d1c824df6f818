"""A small OpenTelemetry collector for probes: an OTLP/HTTP receiver of traces.

It accepts ``POST /v1/traces`` with an ExportTraceServiceRequest in either OTLP/HTTP
encoding (JSON, as OpenTelemetry SDKs send it with ``http/json``, or binary protobuf with
``http/protobuf``), read strictly against the OTLP schema of the ``opentelemetry-proto``
package (an unknown field or a malformed id is refused with 400), keeps every span it
receives, and answers ``200`` with an empty ExportTraceServiceResponse. It listens on one
address the harness chooses (a loopback address, or the host's address on a network the
suite created) and a free port, for as long as the ``with`` block lasts. A W3C
``traceparent`` made by :func:`traceparent` is what a probe hands to the traced program,
and :func:`children_of` finds the spans that continued that trace.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = "/v1/traces"
MAX_BODY = 1 << 20


@dataclass(frozen=True)
class Span:
    """One received span: its ids (lowercase hex), name and the service that sent it."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    service: str


def parse_spans(body: bytes, content_type: str = "application/json") -> list[Span]:
    """The spans of an ExportTraceServiceRequest in the OTLP/HTTP JSON or protobuf encoding;
    ValueError naming what is wrong when it is not one."""
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    try:
        if "json" in content_type:
            json_format.Parse(_hex_ids_as_base64(body), request)
        elif "protobuf" in content_type:
            request.ParseFromString(body)
        else:
            raise ValueError(f"content type {content_type!r}: OTLP/HTTP sends "
                             "application/json or application/x-protobuf")
    except (json_format.ParseError, DecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not an ExportTraceServiceRequest: {exc}") from None
    spans = []
    for resource in request.resource_spans:
        service = next((a.value.string_value for a in resource.resource.attributes
                        if a.key == "service.name"), "")
        for scope in resource.scope_spans:
            for span in scope.spans:
                spans.append(Span(span.trace_id.hex(), span.span_id.hex(),
                                  span.parent_span_id.hex(), span.name, service))
    return spans


def _hex_ids_as_base64(body: bytes) -> str:
    """OTLP/HTTP JSON writes trace and span ids as hex strings where the protobuf JSON
    mapping of ``bytes`` is base64: the ids are turned into base64 before parsing (a
    malformed id is a ValueError)."""
    import base64

    def convert(node: object) -> object:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                    if len(value) % 2 or any(c not in "0123456789abcdefABCDEF" for c in value):
                        raise ValueError(f"{key} {value!r} is not hex")
                    value = base64.b64encode(bytes.fromhex(value)).decode()
                out[key] = convert(value)
            return out
        if isinstance(node, list):
            return [convert(v) for v in node]
        return node

    try:
        return json.dumps(convert(json.loads(body)))
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None


def traceparent() -> tuple[str, str, str]:
    """A new W3C trace context: (traceparent header value, trace id, parent span id)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def children_of(spans: list[Span], trace_id: str, parent_span_id: str) -> list[Span]:
    """The spans that continue the trace ``trace_id`` as children of ``parent_span_id``."""
    return [s for s in spans if s.trace_id == trace_id and s.parent_span_id == parent_span_id]


class Collector:
    """An OTLP/HTTP trace receiver on ``address`` (a free port) while the block lasts."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.address = address
        self.spans: list[Span] = []
        self.requests = 0
        self.rejected: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the collector is not running")
        return self._server.server_address[1]

    def __enter__(self) -> Collector:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server interface)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, MAX_BODY))
                try:
                    if self.path != PATH:
                        raise ValueError(f"path {self.path}, not {PATH}")
                    spans = parse_spans(body, self.headers.get("Content-Type") or "")
                except ValueError as exc:
                    with collector._lock:
                        collector.rejected.append(str(exc))
                    self.send_response(400)
                    self.end_headers()
                    return
                with collector._lock:
                    collector.requests += 1
                    collector.spans.extend(spans)
                binary = "protobuf" in (self.headers.get("Content-Type") or "")
                reply = b"" if binary else b"{}"  # an empty ExportTraceServiceResponse
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf" if binary
                                 else "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_args) -> None:  # quiet
                return

        self._server = ThreadingHTTPServer((self.address, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="otlp-collector")
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

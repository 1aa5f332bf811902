"""An OTLP/HTTP receiver for the trace test (infra/telemetry/run.sh).

Accepts `POST /v1/traces` (and `/v1/metrics`) with a protobuf body, as the
OpenTelemetry exporters send it, decodes it with the official definitions
(`opentelemetry-proto`) so a body that is not a valid export request is
refused with 400, and keeps each accepted body as a file in `--out`
(`traces-000001.pb`, …) for the test to read. Answers an empty export
response, as a collector does. Serves `GET /ready` once it listens.

    python receiver.py --port PORT --out DIR
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

SIGNALS = {
    "/v1/traces": ("traces", ExportTraceServiceRequest, ExportTraceServiceResponse),
    "/v1/metrics": ("metrics", ExportMetricsServiceRequest, ExportMetricsServiceResponse),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    numbers = itertools.count(1)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.answer(200 if self.path == "/ready" else 404, b"", "text/plain")

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            signal = SIGNALS.get(self.path)
            if signal is None:
                self.answer(404, b"no such signal", "text/plain")
                return
            name, request_type, response_type = signal
            if self.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            try:
                request_type.FromString(body)
            except Exception as err:  # a DecodeError, whatever its module
                self.answer(400, f"not an OTLP export request: {err}".encode(), "text/plain")
                return
            with lock:
                number = next(numbers)
            (args.out / f"{name}-{number:06d}.pb").write_bytes(body)
            self.answer(200, response_type().SerializeToString(), "application/x-protobuf")

        def answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            print(f"{self.address_string()} {format % args}", flush=True)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"OTLP/HTTP receiver on 127.0.0.1:{args.port}, writing to {args.out}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

"""Real transports: OTLP/HTTP to a loopback receiver, and Arize Phoenix read back over REST."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from local_servers import free_port, stop_process
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

from ib_middleware.compressors import AbstractiveCompressor
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.stage import CompressionStage
from ib_middleware.telemetry import StageTelemetry
from ib_middleware.telemetry import attributes as names
from ib_middleware.testing import FakeCompressor, FakeScorer

PAGE = "Capital expenditure was $1,577 million in 2018. " + "Other filler text here. " * 60
QUERY = "What was capital expenditure?"
MAX_BODY = 8 * 1024 * 1024
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def make_stage(telemetry):
    generator = FakeCompressor(model_id="fake-0", default="Capex was $1,577 million.")
    scorer = FakeScorer(lambda p, z: -1.0 if "Document:" in p else -5.0)
    return CompressionStage(
        [Rung(AbstractiveCompressor(generator, window_tokens=5000), 0.5)],
        estimator=CXMIEstimator(scorer),
        token_budget=50,
        observers=[telemetry],
    )


class Receiver(ThreadingHTTPServer):
    """A tiny OTLP/HTTP receiver: decodes protobuf bodies into a queue; stops itself."""

    daemon_threads = True

    def __init__(self, lifetime_s: float = 60.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=1000)
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05})
        self._deadline = threading.Timer(lifetime_s, self.shutdown)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        self._deadline.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._deadline.cancel()
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)

    def messages(self, kind: type) -> list:
        drained = []
        while not self.received.empty():
            drained.append(self.received.get_nowait())
        for item in drained:
            self.received.put_nowait(item)
        return [message for _, message in drained if isinstance(message, kind)]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver
    routes: ClassVar[dict[str, tuple[type, type]]] = {
        "/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
        "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
    }

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        if self.path not in self.routes or not 0 < length <= MAX_BODY:
            self.send_error(404 if self.path not in self.routes else 413)
            return
        body = self.rfile.read(length)
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request_type, response_type = self.routes[self.path]
        message = request_type()
        message.ParseFromString(body)
        self.server.received.put_nowait((self.path, message))
        payload = response_type().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        del format, args  # keep test output quiet


def otlp_spans(requests):
    return [
        span
        for request in requests
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]


def test_spans_and_metrics_over_otlp_http():
    with Receiver() as receiver:
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces", timeout=10))
        )
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(
                endpoint=f"{receiver.url}/v1/metrics", timeout=10, compression=Compression.Gzip
            ),
            export_interval_millis=3_600_000,
        )
        meter_provider = MeterProvider(metric_readers=[reader])
        telemetry = StageTelemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
        make_stage(telemetry).run([PAGE, "short"], QUERY)
        assert tracer_provider.force_flush(10_000)
        assert meter_provider.force_flush(10_000)
        tracer_provider.shutdown()
        meter_provider.shutdown()
        spans = otlp_spans(receiver.messages(ExportTraceServiceRequest))
        metrics_requests = receiver.messages(ExportMetricsServiceRequest)

    by_name = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    assert set(by_name) == {
        names.SPAN_STAGE,
        names.SPAN_ROUTE,
        "chat fake-0",
        "score_compression fake-scorer",
    }
    [stage_span] = by_name[names.SPAN_STAGE]
    values = {kv.key: kv.value for kv in stage_span.attributes}
    assert values[names.OPENINFERENCE_SPAN_KIND].string_value == "CHAIN"
    assert values[names.STAGE_ITEMS].int_value == 2
    routes = by_name[names.SPAN_ROUTE]
    assert {bytes(route.parent_span_id) for route in routes} == {bytes(stage_span.span_id)}
    accepted = next(
        {kv.key: kv.value for kv in r.attributes}
        for r in routes
        if any(kv.value.string_value == "accepted" for kv in r.attributes)
    )
    assert accepted[names.ROUTE_RUNG].int_value == 0
    assert accepted[names.MI_BITS_PER_TOKEN].double_value > 0.5
    assert accepted[names.MI_SATURATED].HasField("bool_value")

    metrics = {
        metric.name: metric
        for request in metrics_requests
        for resource in request.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    usage = metrics[names.METRIC_TOKEN_USAGE]
    assert usage.unit == "{token}"
    assert list(usage.histogram.data_points[0].explicit_bounds) == [
        float(b) for b in names.TOKEN_USAGE_BUCKETS
    ]
    assert metrics[names.METRIC_OPERATION_DURATION].unit == "s"
    assert metrics[names.METRIC_BITS_PER_TOKEN].unit == "bit/{token}"
    decisions = metrics[names.METRIC_DECISIONS].sum.data_points
    assert sum(point.as_int for point in decisions) == 2


def get_json(url: str) -> dict:
    with DIRECT.open(url, timeout=10) as response:
        return json.load(response)


@pytest.fixture
def phoenix(tmp_path):
    pytest.importorskip("phoenix", reason="Arize Phoenix is not installed")
    port, grpc_port = free_port(), free_port()
    env = {
        **os.environ,
        "PHOENIX_PORT": str(port),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_GRPC_PORT": str(grpc_port),
        "PHOENIX_WORKING_DIR": str(tmp_path / "phoenix"),
        "PHOENIX_TELEMETRY_ENABLED": "false",
        "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
    }
    log = (tmp_path / "phoenix.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "phoenix.server.main", "serve"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 150
        while True:
            if process.poll() is not None:
                pytest.fail(f"phoenix exited: {(tmp_path / 'phoenix.log').read_text()[-2000:]}")
            with contextlib.suppress(OSError), DIRECT.open(f"{url}/healthz", timeout=2) as reply:
                if reply.status == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail("phoenix did not become ready within 150 s")
            time.sleep(0.5)
        yield url
    finally:
        stop_process(process, timeout=30)
        log.close()


@pytest.mark.timeout(240)
def test_phoenix_receives_our_spans(phoenix):
    tracer_provider = TracerProvider()
    exporter = OTLPSpanExporter(endpoint=f"{phoenix}/v1/traces", timeout=20)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    make_stage(StageTelemetry(tracer_provider=tracer_provider)).run([PAGE], QUERY)
    tracer_provider.shutdown()

    deadline = time.monotonic() + 60
    while True:
        spans = get_json(f"{phoenix}/v1/projects/default/spans?limit=100")["data"]
        if len(spans) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(1)
    by_name = {span["name"]: span for span in spans}
    assert set(by_name) == {names.SPAN_STAGE, "chat fake-0", "score_compression fake-scorer"}
    stage_span = by_name[names.SPAN_STAGE]
    assert stage_span["span_kind"] == "CHAIN"
    assert stage_span["parent_id"] is None
    attributes = stage_span["attributes"]
    assert attributes[names.ROUTE_DECISION] == "accepted"
    assert attributes[names.ROUTE_RUNG] == 0
    assert attributes[names.GEN_AI_OPERATION_NAME] == names.OPERATION_STAGE
    assert attributes[names.MI_BITS_PER_TOKEN] > 0.5
    chat = by_name["chat fake-0"]
    assert chat["span_kind"] == "LLM"
    assert chat["parent_id"] == stage_span["context"]["span_id"]
    assert chat["attributes"][names.GEN_AI_REQUEST_MODEL] == "fake-0"
    assert by_name["score_compression fake-scorer"]["span_kind"] == "EVALUATOR"

"""The JSON Lines span file: fields, parent links, metrics file, appending, missing SDK."""

from __future__ import annotations

import json
import sys

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from ib_middleware import EngineError, IBMiddlewareError
from ib_middleware.compressors import AbstractiveCompressor
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.stage import CompressionStage
from ib_middleware.telemetry import attributes as names
from ib_middleware.telemetry import configure_span_file, metrics_path_for
from ib_middleware.telemetry.jsonl import JsonlSpanExporter
from ib_middleware.testing import FakeCompressor, FakeScorer

PAGE = "Capital expenditure was $1,577 million in 2018. " + "Other filler text here. " * 60
REQUIRED = {
    "name",
    "trace_id",
    "span_id",
    "parent_span_id",
    "start_time",
    "end_time",
    "status",
    "attributes",
}


def make_stage(observer, *replies):
    generator = FakeCompressor(model_id="fake-0")
    generator.enqueue(*replies)
    scorer = FakeScorer(lambda p, z: -1.0 if "Document:" in p and z.startswith("GOOD") else -5.0)
    return CompressionStage(
        [Rung(AbstractiveCompressor(generator, window_tokens=5000), 0.5)],
        estimator=CXMIEstimator(scorer),
        token_budget=50,
        observers=[observer],
    )


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_span_file_has_one_record_per_span_with_parent_links(tmp_path):
    path = tmp_path / "out" / "spans.jsonl"
    before = trace.get_tracer_provider()
    with configure_span_file(path, service_name="svc-test") as sink:
        stage = make_stage(sink.telemetry(), "GOOD capex.", EngineError("gone"))
        stage.run([PAGE, "short"], "capex?")
        stage.run([PAGE], "capex?")
    assert trace.get_tracer_provider() is before
    records = read(path)
    assert all(set(record) >= REQUIRED for record in records)
    assert all(record["type"] == "span" for record in records)
    by_id = {record["span_id"]: record for record in records}
    roots = [r for r in records if r["parent_span_id"] is None]
    assert [r["name"] for r in roots] == [names.SPAN_STAGE, names.SPAN_STAGE]
    for record in records:
        assert len(record["trace_id"]) == 32
        assert len(record["span_id"]) == 16
        assert record["start_time"] <= record["end_time"]
        assert record["resource"]["service.name"] == "svc-test"
        assert record["scope"]["name"] == names.INSTRUMENTATION_NAME
        if record["parent_span_id"] is not None:
            parent = by_id[record["parent_span_id"]]
            assert parent["trace_id"] == record["trace_id"]
    failed = next(r for r in records if r["status"]["code"] == "ERROR")
    assert failed["name"] == "chat fake-0"
    assert failed["attributes"][names.ERROR_TYPE] == "EngineError"
    route = next(r for r in records if r["name"] == names.SPAN_ROUTE)
    assert isinstance(route["attributes"][names.COMPRESSION_INPUT_TOKENS], int)

    metrics_lines = read(metrics_path_for(path))
    assert sink.metrics_path == metrics_path_for(path) == tmp_path / "out" / "spans.metrics.jsonl"
    metric_names = {
        metric["name"]
        for line in metrics_lines
        for resource in line["resource_metrics"]
        for scope in resource["scope_metrics"]
        for metric in scope["metrics"]
    }
    assert {names.METRIC_DECISIONS, names.METRIC_TOKEN_USAGE} <= metric_names


def test_span_file_appends_across_runs(tmp_path):
    path = tmp_path / "spans.jsonl"
    for _ in range(2):
        with configure_span_file(path) as sink:
            make_stage(sink.telemetry(), "GOOD capex.").run([PAGE], "q")
    assert sum(r["name"] == names.SPAN_STAGE for r in read(path)) == 2


def test_records_are_strict_json(tmp_path):
    path = tmp_path / "spans.jsonl"
    exporter = JsonlSpanExporter(path)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("t").start_span("x", attributes={"nan": float("nan"), "v": (1, 2)})
    span.set_status(Status(StatusCode.ERROR, "why"))
    span.add_event("happened", {"n": 3})
    span.end()
    provider.shutdown()
    [record] = read(path)
    assert record["attributes"] == {"nan": None, "v": [1, 2]}
    assert record["status"] == {"code": "ERROR", "description": "why"}
    assert record["events"][0]["name"] == "happened"
    assert exporter.export([span]) is SpanExportResult.FAILURE  # shut down: nothing written


def test_shutdown_twice_is_harmless(tmp_path):
    sink = configure_span_file(tmp_path / "spans.jsonl")
    sink.shutdown()
    sink.shutdown()


def test_missing_sdk_gives_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    with pytest.raises(IBMiddlewareError, match=r"pip install 'ib-middleware\[otel\]'"):
        configure_span_file(tmp_path / "spans.jsonl")

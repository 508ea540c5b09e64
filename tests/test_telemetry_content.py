"""Message content: never exported by default; exactly where documented when turned on."""

from __future__ import annotations

import json
import random

import pytest
from opentelemetry.trace import StatusCode

from ib_middleware import EngineError
from ib_middleware.compressors import AbstractiveCompressor, ExtractiveCompressor
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.stage import CompressionStage
from ib_middleware.telemetry import attributes as names
from ib_middleware.telemetry import configure_span_file
from ib_middleware.telemetry.jsonl import span_record
from ib_middleware.telemetry.testing import InMemoryTelemetry
from ib_middleware.testing import FakeCompressor, FakeScorer

QUERY = "Which xylophonic quokka vouched for the zephyr?"


def distinctive_text(seed: int = 7, words: int = 400) -> str:
    rng = random.Random(seed)
    letters = "bcdfghjklmnpqrstvwxzaeiouy"
    sentences = []
    for _ in range(words // 8):
        chosen = ["".join(rng.choice(letters) for _ in range(rng.randint(4, 11))) for _ in range(8)]
        sentences.append(" ".join(chosen).capitalize() + ".")
    return " ".join(sentences)


SECRET = distinctive_text()


def scorer() -> FakeScorer:
    return FakeScorer(lambda p, z: -1.0 if "Document:" in p and z.startswith("GOOD") else -5.0)


def leaking_stage(observer, **options):
    """Every path that handles the raw text: an error quoting it, an extractive rung copying it."""
    failing = FakeCompressor(model_id="leaky")
    failing.enqueue(EngineError(f"could not read: {SECRET[:300]}"))
    rungs = [
        Rung(AbstractiveCompressor(failing, window_tokens=5000), 0.5),
        Rung(ExtractiveCompressor(budget_tokens=40), threshold_bits_per_token=-100.0),
    ]
    return CompressionStage(
        rungs, estimator=CXMIEstimator(scorer()), token_budget=50, observers=[observer], **options
    )


def exported_text(memory) -> str:
    parts = []
    for span in memory.spans():
        parts.append(json.dumps(span_record(span), default=str))
    for metric in memory.metrics().values():
        parts.append(metric.name + (metric.description or "") + (metric.unit or ""))
        parts.extend(json.dumps(dict(p.attributes), default=str) for p in metric.data.data_points)
    return "\n".join(parts)


def leaks(blob: str, text: str, width: int = 20) -> list[str]:
    return [
        text[i : i + width] for i in range(len(text) - width + 1) if text[i : i + width] in blob
    ]


@pytest.fixture
def memory():
    memory = InMemoryTelemetry()
    yield memory
    memory.shutdown()


async def test_no_raw_context_in_any_exported_telemetry_by_default(memory, tmp_path, monkeypatch):
    monkeypatch.delenv(names.CAPTURE_CONTENT_ENV, raising=False)
    with configure_span_file(tmp_path / "spans.jsonl") as sink:
        observers = [memory.telemetry(), sink.telemetry()]
        for observer in observers:
            stage = leaking_stage(observer)
            stage.run([SECRET, "a short note"], QUERY)
            await stage.arun([SECRET], QUERY)
            raising = leaking_stage(observer, on_failure="raise")
            with pytest.raises(EngineError):
                raising.run([SECRET], QUERY)
    assert memory.spans(), "nothing was exported"
    files = (tmp_path / "spans.jsonl").read_text() + sink.metrics_path.read_text()
    for blob in (exported_text(memory), files):
        assert leaks(blob, SECRET) == []
        assert leaks(blob, QUERY) == []
        assert "short note" not in blob


def test_keyword_turns_content_on_where_documented(memory):
    summary = "GOOD the quokka vouched."
    generator = FakeCompressor(model_id="fake-0")
    generator.enqueue(summary)
    stage = CompressionStage(
        [Rung(AbstractiveCompressor(generator, window_tokens=5000), 0.5)],
        estimator=CXMIEstimator(scorer()),
        token_budget=50,
        observers=[memory.telemetry(capture_content=True)],
        # The summary is stand-in text (a GOOD marker); the support rule has its own tests.
        reject_unsupported_figures=False,
    )
    [result] = stage.run([SECRET], QUERY)
    root = memory.span(names.SPAN_STAGE)
    assert root.attributes[names.INPUT_VALUE] == QUERY
    assert root.attributes[names.CONTENT_CONTEXT] == SECRET
    assert root.attributes[names.OUTPUT_VALUE] == result.text == summary
    chat = memory.span("chat fake-0")
    assert chat.attributes[names.OUTPUT_VALUE] == summary
    assert json.loads(chat.attributes[names.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": summary}]}
    ]


def test_content_on_multi_item_route_spans_and_error_messages(memory):
    stage = leaking_stage(memory.telemetry(capture_content=True))
    stage.run([SECRET, "a short note"], QUERY)
    routes = {
        span.attributes[names.ROUTE_DECISION]: span
        for span in memory.spans()
        if span.name == names.SPAN_ROUTE
    }
    assert routes["passthrough"].attributes[names.INPUT_VALUE] == "a short note"
    assert routes["passthrough"].attributes[names.OUTPUT_VALUE] == "a short note"
    assert routes["accepted"].attributes[names.CONTENT_CONTEXT] == SECRET
    failed = memory.span("chat leaky")
    assert failed.status.status_code is StatusCode.ERROR
    assert SECRET[:100] in failed.status.description


def test_raised_invocation_records_the_exception_with_content(memory):
    stage = leaking_stage(memory.telemetry(capture_content=True), on_failure="raise")
    with pytest.raises(EngineError):
        stage.run([SECRET], QUERY)
    root = memory.span(names.SPAN_STAGE)
    [event] = root.events
    assert event.name == "exception"
    assert SECRET[:100] in event.attributes["exception.message"]
    assert root.status.description.startswith("EngineError: could not read")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("false", False), ("", False), (None, False)],
)
def test_environment_variable(memory, monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv(names.CAPTURE_CONTENT_ENV, raising=False)
    else:
        monkeypatch.setenv(names.CAPTURE_CONTENT_ENV, value)
    assert memory.telemetry().capture_content is expected
    assert memory.telemetry(capture_content=False).capture_content is False

"""Spans of the stage: shape, exact attribute names and types, failures, context; sync and async."""

from __future__ import annotations

import subprocess
import sys

import pytest
from ib_estimators import ModelSpec
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from ib_middleware import EngineError
from ib_middleware.compressors import AbstractiveCompressor, ExtractiveCompressor
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.stage import CompressionStage
from ib_middleware.telemetry import StageTelemetry
from ib_middleware.telemetry import attributes as names
from ib_middleware.telemetry.testing import InMemoryTelemetry
from ib_middleware.testing import FakeCompressor, FakeScorer

PAGE = "Capital expenditure was $1,577 million in 2018. " + "Other filler text here. " * 60
QUERY = "What was capital expenditure?"
MODES = ["sync", "async"]


def grounded_scorer() -> FakeScorer:
    def score(prompt: str, z: str) -> float:
        return -1.0 if "Document:" in prompt and z.startswith("GOOD") else -5.0

    return FakeScorer(score)


def make_stage(memory, *replies, thresholds=(0.5, 0.5), scorer=None, telemetry=None, **options):
    generators = [FakeCompressor(model_id=f"fake-{k}") for k in range(len(thresholds))]
    for index, reply in enumerate(replies):
        generators[index % len(generators)].enqueue(reply)
    rungs = [
        Rung(AbstractiveCompressor(g, window_tokens=5000), threshold_bits_per_token=t)
        for g, t in zip(generators, thresholds, strict=True)
    ]
    observer = telemetry or memory.telemetry()
    estimator = CXMIEstimator(scorer or grounded_scorer())
    # The replies are stand-in text (GOOD/BAD markers); the support rule has its own tests.
    return CompressionStage(
        rungs,
        estimator=estimator,
        token_budget=50,
        observers=[observer],
        reject_unsupported_figures=False,
        **options,
    )


async def run(stage, items, mode):
    if mode == "sync":
        return stage.run(items, QUERY)
    return await stage.arun(items, QUERY)


def children(memory, parent):
    return [s for s in memory.spans() if s.parent and s.parent.span_id == parent.context.span_id]


@pytest.fixture
def memory():
    memory = InMemoryTelemetry()
    yield memory
    memory.shutdown()


@pytest.mark.parametrize("mode", MODES)
async def test_accepted_single_item_span_tree(memory, mode):
    stage = make_stage(memory, "GOOD capex was $1,577 million.")
    [result] = await run(stage, [PAGE], mode)
    assert result.decision == "accepted"
    root = memory.span(names.SPAN_STAGE)
    assert root.parent is None
    assert root.kind is SpanKind.INTERNAL
    attributes = dict(root.attributes)
    assert attributes[names.GEN_AI_OPERATION_NAME] == names.OPERATION_STAGE
    assert attributes[names.OPENINFERENCE_SPAN_KIND] == "CHAIN"
    assert attributes[names.ROUTE_DECISION] == "accepted"
    assert attributes[names.ROUTE_RUNG] == 0
    assert isinstance(attributes[names.ROUTE_RUNG], int)
    assert attributes[names.ROUTE_REASON] == result.reason
    assert attributes[names.COMPRESSION_INPUT_TOKENS] == result.input_tokens
    assert attributes[names.COMPRESSION_OUTPUT_TOKENS] == result.output_tokens
    assert attributes[names.COMPRESSION_RATIO] == pytest.approx(result.compression_ratio)
    assert attributes[names.MI_ESTIMATOR] == "cxmi"
    assert attributes[names.MI_BITS_PER_TOKEN] == pytest.approx(result.bits_per_token)
    for key in (names.MI_BITS, names.MI_NATS, names.MI_BITS_PER_TOKEN, names.COMPRESSION_RATIO):
        assert type(attributes[key]) is float, key
    assert attributes[names.MI_SATURATED] is False
    assert attributes[names.THRESHOLD_BITS_PER_TOKEN] == 0.5
    assert names.FLOPS not in attributes  # no model spec given
    assert not [s for s in memory.spans() if s.name == names.SPAN_ROUTE]

    chat, score = sorted(children(memory, root), key=lambda s: s.start_time)
    assert chat.name == "chat fake-0"
    assert chat.kind is SpanKind.CLIENT
    compression = result.attempts[0].compression
    expected = {
        names.GEN_AI_OPERATION_NAME: "chat",
        names.GEN_AI_PROVIDER_NAME: "ib_middleware",
        names.GEN_AI_REQUEST_MODEL: "fake-0",
        names.GEN_AI_USAGE_INPUT_TOKENS: compression.prompt_tokens,
        names.GEN_AI_USAGE_OUTPUT_TOKENS: compression.completion_tokens,
        names.ROUTE_RUNG: 0,
        names.ATTEMPT_ACCEPTED: True,
        names.OPENINFERENCE_SPAN_KIND: "LLM",
    }
    assert expected.items() <= dict(chat.attributes).items()
    assert score.name == "score_compression fake-scorer"
    assert score.attributes[names.GEN_AI_OPERATION_NAME] == names.OPERATION_SCORE
    assert score.attributes[names.GEN_AI_REQUEST_MODEL] == "fake-scorer"
    assert names.GEN_AI_PROVIDER_NAME not in score.attributes  # the scorer's provider is unknown
    assert score.attributes[names.MI_BITS_PER_TOKEN] == pytest.approx(result.bits_per_token)
    for span in (chat, score):
        assert root.start_time <= span.start_time <= span.end_time <= root.end_time
        assert span.status.status_code is StatusCode.UNSET
    assert chat.end_time <= score.start_time
    assert all(names.GEN_AI_OPERATION_NAME in span.attributes for span in memory.spans())


@pytest.mark.parametrize("mode", MODES)
async def test_fallback_records_every_attempt(memory, mode):
    stage = make_stage(memory, "BAD one.", "BAD two.")
    [result] = await run(stage, [PAGE], mode)
    assert result.decision == "fallback"
    root = memory.span(names.SPAN_STAGE)
    assert root.attributes[names.ROUTE_DECISION] == "fallback"
    assert names.ROUTE_RUNG not in root.attributes
    # The deciding estimate of a fallback is the last rung's.
    last = result.attempts[-1]
    assert root.attributes[names.RUNG_NAME] == last.name
    assert root.attributes[names.MI_BITS_PER_TOKEN] == pytest.approx(last.estimate.bits_per_token)
    spans = sorted(children(memory, root), key=lambda s: s.start_time)
    assert [s.name for s in spans] == [
        "chat fake-0",
        "score_compression fake-scorer",
        "chat fake-1",
        "score_compression fake-scorer",
    ]
    assert [s.attributes[names.ROUTE_RUNG] for s in spans] == [0, 0, 1, 1]
    assert {s.attributes[names.ATTEMPT_ACCEPTED] for s in spans} == {False}


@pytest.mark.parametrize("mode", MODES)
async def test_multiple_items_get_one_route_span_each(memory, mode):
    stage = make_stage(memory, "GOOD capex.", thresholds=(0.5,))
    results = await run(stage, ["short one", PAGE], mode)
    assert [r.decision for r in results] == ["passthrough", "accepted"]
    root = memory.span(names.SPAN_STAGE)
    assert root.attributes[names.STAGE_ITEMS] == 2
    assert names.ROUTE_DECISION not in root.attributes
    assert root.attributes[names.COMPRESSION_INPUT_TOKENS] == sum(r.input_tokens for r in results)
    routes = [s for s in memory.spans() if s.name == names.SPAN_ROUTE]
    assert all(route.parent.span_id == root.context.span_id for route in routes)
    by_decision = {route.attributes[names.ROUTE_DECISION]: route for route in routes}
    assert set(by_decision) == {"passthrough", "accepted"}
    assert children(memory, by_decision["passthrough"]) == []
    assert [s.name for s in children(memory, by_decision["accepted"])] == [
        "chat fake-0",
        "score_compression fake-scorer",
    ]
    assert by_decision["accepted"].attributes[names.GEN_AI_OPERATION_NAME] == "route_context"


@pytest.mark.parametrize("mode", MODES)
async def test_compressor_error_marks_its_span(memory, mode):
    stage = make_stage(memory, EngineError("engine died reading the page"), "GOOD capex.")
    [result] = await run(stage, [PAGE], mode)
    assert result.decision == "accepted"
    assert result.rung == 1
    failed = memory.span("chat fake-0")
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes[names.ERROR_TYPE] == "EngineError"
    assert failed.status.description == result.attempts[0].reason
    assert "engine died" not in failed.status.description  # messages only with content capture
    assert memory.span("chat fake-1").status.status_code is StatusCode.UNSET
    assert memory.span(names.SPAN_STAGE).status.status_code is StatusCode.UNSET


@pytest.mark.parametrize("mode", MODES)
async def test_estimator_error_marks_the_scoring_span(memory, mode):
    scorer = grounded_scorer()
    scorer.enqueue(EngineError("scorer refused"))
    stage = make_stage(memory, "GOOD capex.", thresholds=(0.5,), scorer=scorer)
    [result] = await run(stage, [PAGE], mode)
    assert result.decision == "fallback"
    score = memory.span("score_compression")
    assert score.status.status_code is StatusCode.ERROR
    assert score.attributes[names.ERROR_TYPE] == "EngineError"
    assert memory.span("chat fake-0").status.status_code is StatusCode.UNSET


@pytest.mark.parametrize("mode", MODES)
async def test_raised_invocation_marks_the_stage_span(memory, mode):
    stage = make_stage(memory, TimeoutError("page text"), on_failure="raise")
    outer = memory.tracer_provider.get_tracer("agent")
    with outer.start_as_current_span("agent") as agent:
        with pytest.raises(TimeoutError):
            await run(stage, [PAGE], mode)
        assert trace.get_current_span() is agent  # the stage span was detached
    root = memory.span(names.SPAN_STAGE)
    assert root.parent.span_id == agent.get_span_context().span_id
    assert root.status.status_code is StatusCode.ERROR
    assert root.status.description == "TimeoutError"
    assert root.attributes[names.ERROR_TYPE] == "TimeoutError"
    [event] = root.events
    assert dict(event.attributes) == {names.EXCEPTION_TYPE: "TimeoutError"}


class SpyGenerator(FakeCompressor):
    """Remembers which span was current when it was called."""

    def generate(self, messages, settings=None):
        self.seen = trace.get_current_span()
        return super().generate(messages, settings)


@pytest.mark.parametrize("mode", MODES)
async def test_stage_span_is_current_while_compressing(memory, mode):
    spy = SpyGenerator(default="GOOD capex.")
    stage = CompressionStage(
        [Rung(AbstractiveCompressor(spy, window_tokens=5000), 0.5)],
        estimator=CXMIEstimator(grounded_scorer()),
        token_budget=50,
        observers=[memory.telemetry()],
    )
    await run(stage, [PAGE, PAGE + " again"], mode)
    root = memory.span(names.SPAN_STAGE)
    assert spy.seen.get_span_context().span_id == root.context.span_id
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_flops_from_model_specs(memory):
    spec = ModelSpec(n_params=1e6, n_layers=2, d_attn=64)
    telemetry = memory.telemetry(model_specs={"fake-0": spec}, provider_name="vllm")
    stage = make_stage(memory, "GOOD capex.", telemetry=telemetry)
    stage.run([PAGE], QUERY)
    chat = memory.span("chat fake-0")
    assert chat.attributes[names.FLOPS] > 0
    assert chat.attributes[names.GEN_AI_PROVIDER_NAME] == "vllm"
    assert memory.span(names.SPAN_STAGE).attributes[names.FLOPS] == chat.attributes[names.FLOPS]


def test_extractive_rungs_are_not_chat_calls(memory):
    stage = CompressionStage(
        [Rung(ExtractiveCompressor(budget_tokens=20), threshold_bits_per_token=-100.0)],
        estimator=CXMIEstimator(grounded_scorer()),
        token_budget=50,
        observers=[memory.telemetry()],
    )
    stage.run([PAGE], QUERY)
    span = memory.span("extract_context extractive-20")
    assert span.kind is SpanKind.INTERNAL
    assert span.attributes[names.GEN_AI_OPERATION_NAME] == names.OPERATION_EXTRACT
    assert names.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes


class BrokenTracer:
    def start_span(self, *args, **kwargs):
        raise RuntimeError("tracer is broken")


class BrokenTracerProvider(trace.TracerProvider):
    def get_tracer(self, *args, **kwargs):
        return BrokenTracer()


@pytest.mark.parametrize("mode", MODES)
async def test_telemetry_never_breaks_the_stage(mode, caplog):
    telemetry = StageTelemetry(tracer_provider=BrokenTracerProvider())
    stage = make_stage(None, "GOOD capex.", thresholds=(0.5,), telemetry=telemetry)
    [result] = await run(stage, [PAGE], mode)
    assert result.decision == "accepted"
    assert "could not start the stage span" in caplog.text


def test_a_recording_failure_still_ends_the_span_and_restores_context(memory, monkeypatch):
    telemetry = memory.telemetry()
    stage = make_stage(memory, "GOOD capex.", thresholds=(0.5,), telemetry=telemetry)

    def boom(*args, **kwargs):
        raise ValueError("bad result")

    monkeypatch.setattr(telemetry, "_record", boom)
    [result] = stage.run([PAGE], QUERY)
    assert result.decision == "accepted"
    assert memory.span(names.SPAN_STAGE).end_time is not None
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_global_providers_are_left_alone(memory):
    before = trace.get_tracer_provider()
    stage = make_stage(memory, "GOOD capex.", thresholds=(0.5,))
    stage.run([PAGE], QUERY)
    assert trace.get_tracer_provider() is before


def test_instrument_and_uninstrument(memory):
    telemetry = memory.telemetry()
    stage = make_stage(memory, "GOOD capex.", "GOOD again.", thresholds=(0.5,))
    stage.observers = ()
    assert telemetry.instrument(stage) is stage
    telemetry.instrument(stage)
    assert stage.observers == (telemetry,)
    stage.run([PAGE], QUERY)
    telemetry.uninstrument(stage)
    stage.run([PAGE], QUERY)
    assert len([s for s in memory.spans() if s.name == names.SPAN_STAGE]) == 1


def test_importing_telemetry_needs_only_the_api():
    code = (
        "import sys, ib_middleware.telemetry, ib_middleware.telemetry.helpers;"
        "loaded = [m for m in sys.modules if m.startswith('opentelemetry.sdk')];"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)

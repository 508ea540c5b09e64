"""Metrics of the stage: names, units, the conventions' buckets, low-cardinality attributes."""

from __future__ import annotations

import pytest

from ib_middleware import EngineError
from ib_middleware.compressors import AbstractiveCompressor, ExtractiveCompressor
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.stage import CompressionStage
from ib_middleware.telemetry import attributes as names
from ib_middleware.telemetry.testing import InMemoryTelemetry
from ib_middleware.testing import FakeCompressor, FakeScorer

PAGE = "Capital expenditure was $1,577 million in 2018. " + "Other filler text here. " * 60
QUERY = "What was capital expenditure?"
ALLOWED_METRIC_KEYS = {
    names.ROUTE_DECISION,
    names.ROUTE_RUNG,
    names.MI_ESTIMATOR,
    names.ATTEMPT_ACCEPTED,
    names.GEN_AI_OPERATION_NAME,
    names.GEN_AI_PROVIDER_NAME,
    names.GEN_AI_REQUEST_MODEL,
    names.GEN_AI_TOKEN_TYPE,
    names.ERROR_TYPE,
}


def scorer() -> FakeScorer:
    return FakeScorer(lambda p, z: -1.0 if "Document:" in p and z.startswith("GOOD") else -5.0)


@pytest.fixture
def memory():
    memory = InMemoryTelemetry()
    yield memory
    memory.shutdown()


def make_stage(memory, *replies, thresholds=(0.5, 0.5)):
    generators = [FakeCompressor(model_id=f"fake-{k}") for k in range(len(thresholds))]
    for index, reply in enumerate(replies):
        generators[index % len(generators)].enqueue(reply)
    rungs = [
        Rung(AbstractiveCompressor(g, window_tokens=5000), threshold_bits_per_token=t)
        for g, t in zip(generators, thresholds, strict=True)
    ]
    # The replies are stand-in text (GOOD/BAD markers); the support rule has its own tests.
    return CompressionStage(
        rungs,
        estimator=CXMIEstimator(scorer()),
        token_budget=50,
        observers=[memory.telemetry()],
        reject_unsupported_figures=False,
    )


def points(memory, name):
    return list(memory.metric(name).data.data_points)


def by_attributes(memory, name):
    return {frozenset(point.attributes.items()): point for point in points(memory, name)}


async def test_every_metric_with_its_unit_and_buckets(memory):
    stage = make_stage(memory, "GOOD capex.", "GOOD two.", "BAD one.")
    stage.run(["short", PAGE], QUERY)  # passthrough + accepted at rung 0
    await stage.arun([PAGE], QUERY)  # rung 0 rejected, rung 1 accepted
    found = memory.metrics()
    expected_units = {
        names.METRIC_BITS_PER_TOKEN: "bit/{token}",
        names.METRIC_RATIO: "1",
        names.METRIC_DECISIONS: "{decision}",
        names.METRIC_TOKEN_USAGE: "{token}",
        names.METRIC_OPERATION_DURATION: "s",
    }
    assert {name: found[name].unit for name in expected_units} == expected_units
    buckets = {
        names.METRIC_TOKEN_USAGE: names.TOKEN_USAGE_BUCKETS,
        names.METRIC_OPERATION_DURATION: names.DURATION_BUCKETS,
        names.METRIC_BITS_PER_TOKEN: names.BITS_PER_TOKEN_BUCKETS,
        names.METRIC_RATIO: names.RATIO_BUCKETS,
    }
    for name, bounds in buckets.items():
        for point in points(memory, name):
            assert tuple(point.explicit_bounds) == tuple(float(b) for b in bounds), name
    assert names.TOKEN_USAGE_BUCKETS[:3] == (1, 4, 16)
    assert names.DURATION_BUCKETS[-1] == 81.92


async def test_decision_counter_and_ratio_by_decision_and_rung(memory):
    # Replies alternate between the rungs: rung 0 gets GOOD, BAD, BAD; rung 1 GOOD, BAD.
    stage = make_stage(memory, "GOOD capex.", "GOOD two.", "BAD one.", "BAD", "BAD")
    stage.run(["short", PAGE], QUERY)
    await stage.arun([PAGE], QUERY)
    stage.run([PAGE], QUERY)  # both rungs say BAD: fallback
    counts = {
        key: point.value for key, point in by_attributes(memory, names.METRIC_DECISIONS).items()
    }
    assert counts == {
        frozenset({(names.ROUTE_DECISION, "passthrough")}): 1,
        frozenset({(names.ROUTE_DECISION, "accepted"), (names.ROUTE_RUNG, 0)}): 1,
        frozenset({(names.ROUTE_DECISION, "accepted"), (names.ROUTE_RUNG, 1)}): 1,
        frozenset({(names.ROUTE_DECISION, "fallback")}): 1,
    }
    ratios = by_attributes(memory, names.METRIC_RATIO)
    assert ratios[frozenset({(names.ROUTE_DECISION, "passthrough")})].sum == 1.0
    accepted = ratios[frozenset({(names.ROUTE_DECISION, "accepted"), (names.ROUTE_RUNG, 0)})]
    assert accepted.count == 1
    assert accepted.sum > 5


def test_bits_per_token_per_estimate(memory):
    stage = make_stage(memory, "BAD one.", "GOOD two.")
    [result] = stage.run([PAGE], QUERY)
    histogram = by_attributes(memory, names.METRIC_BITS_PER_TOKEN)
    rejected = frozenset(
        {(names.ROUTE_RUNG, 0), (names.MI_ESTIMATOR, "cxmi"), (names.ATTEMPT_ACCEPTED, False)}
    )
    accepted = frozenset(
        {(names.ROUTE_RUNG, 1), (names.MI_ESTIMATOR, "cxmi"), (names.ATTEMPT_ACCEPTED, True)}
    )
    assert set(histogram) == {rejected, accepted}
    assert histogram[accepted].sum == pytest.approx(result.bits_per_token)


def test_gen_ai_client_metrics_for_compressor_calls(memory):
    stage = make_stage(memory, "GOOD capex.", thresholds=(0.5,))
    [result] = stage.run([PAGE], QUERY)
    compression = result.attempts[0].compression
    base = {
        (names.GEN_AI_OPERATION_NAME, "chat"),
        (names.GEN_AI_PROVIDER_NAME, "ib_middleware"),
        (names.GEN_AI_REQUEST_MODEL, "fake-0"),
    }
    usage = by_attributes(memory, names.METRIC_TOKEN_USAGE)
    assert usage[frozenset(base | {(names.GEN_AI_TOKEN_TYPE, "input")})].sum == (
        compression.prompt_tokens
    )
    assert usage[frozenset(base | {(names.GEN_AI_TOKEN_TYPE, "output")})].sum == (
        compression.completion_tokens
    )
    [duration] = points(memory, names.METRIC_OPERATION_DURATION)
    assert frozenset(duration.attributes.items()) == frozenset(base)
    assert duration.count == 1


def test_failed_compressor_call_has_error_type_on_duration(memory):
    stage = make_stage(memory, EngineError("died"), thresholds=(0.5,))
    stage.run([PAGE], QUERY)
    [duration] = points(memory, names.METRIC_OPERATION_DURATION)
    assert duration.attributes[names.ERROR_TYPE] == "EngineError"
    with pytest.raises(LookupError):
        memory.metric(names.METRIC_TOKEN_USAGE)


def test_extractive_compressions_record_no_client_metrics(memory):
    stage = CompressionStage(
        [Rung(ExtractiveCompressor(budget_tokens=20), threshold_bits_per_token=-100.0)],
        estimator=CXMIEstimator(scorer()),
        token_budget=50,
        observers=[memory.telemetry()],
    )
    stage.run([PAGE], QUERY)
    found = memory.metrics()
    assert names.METRIC_TOKEN_USAGE not in found
    assert names.METRIC_OPERATION_DURATION not in found
    assert names.METRIC_DECISIONS in found


def test_metric_attributes_are_low_cardinality(memory):
    stage = make_stage(memory, EngineError("x"), "GOOD capex.", "BAD", "BAD")
    stage.run([PAGE, "tiny"], QUERY)
    stage.run([PAGE + " more"], QUERY)
    for metric in memory.metrics().values():
        for point in metric.data.data_points:
            assert set(point.attributes) <= ALLOWED_METRIC_KEYS, metric.name
            for value in point.attributes.values():
                assert not isinstance(value, str) or len(value) < 40, (metric.name, value)

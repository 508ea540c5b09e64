"""Load: 500 concurrent invocations with fakes, 32 against the real server, RSS over 10,000.

No timing is asserted (bench/load.py reports throughput and latency); these tests check that
every invocation completes with its own answer, that nothing deadlocks (a generous bound turns a
hang into a failure), and that threads, sockets, tasks and memory come back to where they were.
"""

from __future__ import annotations

import asyncio
import gc
import random
import re
from collections.abc import Sequence

import psutil
import pytest
from ib_integrations.openai_compat import OpenAICompatEngine
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from ib_middleware.compressors import AbstractiveCompressor, ApproximateTokenCounter
from ib_middleware.engines import ChatMessage, Generation, GenerationSettings
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.langgraph import MessageCompressor
from ib_middleware.stage import CompressionStage
from ib_middleware.telemetry import StageTelemetry
from ib_middleware.telemetry.testing import InMemoryTelemetry
from ib_middleware.testing import FakeScorer

LIVENESS_S = 240  # a deadlock fails the test instead of hanging it; not a speed check
RSS_RUNS = 10_000
RSS_BOUND_MIB = 16


def context(n: int) -> str:
    return f"Record ID-{n}: capital expenditure was ${n} million. " + "Filler sentence. " * 30


class EchoIdGenerator:
    """A generator that answers with the record id it was given, after a random short wait."""

    model_id = "echo-id"

    def __init__(self) -> None:
        self._rng = random.Random(0)

    @staticmethod
    def _reply(messages: Sequence[ChatMessage]) -> Generation:
        found = re.search(r"ID-\d+", messages[-1].content)
        text = f"GOOD {found.group(0) if found else 'none'} capex noted"
        return Generation(text, "echo-id", 50, 4, 0.0, "stop")

    def generate(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None
    ) -> Generation:
        return self._reply(messages)

    async def agenerate(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None
    ) -> Generation:
        await asyncio.sleep(self._rng.random() / 100)  # interleave the invocations
        return self._reply(messages)


def scorer() -> FakeScorer:
    return FakeScorer(lambda p, z: -1.0 if "Document:" in p and z.startswith("GOOD") else -5.0)


def fake_stage(**options) -> CompressionStage:
    rung = Rung(AbstractiveCompressor(EchoIdGenerator(), window_tokens=5000), 0.5)
    # The replies are stand-in text (GOOD markers); the support rule has its own tests.
    return CompressionStage(
        [rung],
        estimator=CXMIEstimator(scorer()),
        token_budget=50,
        reject_unsupported_figures=False,
        **options,
    )


async def test_500_concurrent_invocations_with_fakes(leaks):
    memory = InMemoryTelemetry()
    stage = fake_stage(observers=[memory.telemetry()])
    compressor = MessageCompressor(stage)
    before = leaks.snapshot()
    tasks_before = len(asyncio.all_tasks())

    async def one(n: int) -> str:
        if n % 2:  # half through the stage, half through the LangGraph message compressor
            [result] = await stage.arun([context(n)], f"capex of record {n}?")
            return result.text
        from langchain_core.messages import HumanMessage, ToolMessage

        messages = [
            HumanMessage(f"capex of record {n}?"),
            ToolMessage(context(n), tool_call_id="c"),
        ]
        out = await compressor.acompress(messages)
        return str(out.messages[1].content)

    async with asyncio.timeout(LIVENESS_S):
        texts = await asyncio.gather(*(one(n) for n in range(500)))
    assert texts == [f"GOOD ID-{n} capex noted" for n in range(500)], "an answer crossed over"
    assert len(asyncio.all_tasks()) == tasks_before
    assert leaks.settled(before) == before
    decisions = memory.metric("ib_middleware.route.decisions")
    assert sum(point.value for point in decisions.data.data_points) == 500
    memory.shutdown()


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_32_concurrent_invocations_against_the_real_server(llama, leaks):
    port = int(llama.root.rsplit(":", 1)[1])
    engine = OpenAICompatEngine(
        model="smollm2", base_url=llama.url, timeout_s=300, max_retries=0, max_concurrency=8
    )
    compressor = AbstractiveCompressor(
        engine, max_tokens=4, window_tokens=1500, token_counter=ApproximateTokenCounter()
    )
    stage = CompressionStage(
        [Rung(compressor, threshold_bits_per_token=-100.0)],
        estimator=CXMIEstimator(scorer()),
        token_budget=10,
        min_output_tokens=1,
    )
    before = leaks.snapshot(port)
    items = [f"Record {n}: capex was ${n} million in 2018; revenue grew." for n in range(32)]
    async with asyncio.timeout(LIVENESS_S * 2):
        results = await asyncio.gather(*(stage.arun([item], "What was capex?") for item in items))
    await engine.aclose()
    for [result] in results:
        assert [attempt.error for attempt in result.attempts] == [None], result.reason
        assert result.decision in ("accepted", "fallback")
    assert leaks.settled(before, port) == before


def rss_mib() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


class Discard(SpanExporter):
    """Exports spans nowhere: an in-memory exporter would keep them all, by design."""

    def export(self, spans):
        return SpanExportResult.SUCCESS


def test_rss_growth_over_10000_invocations_is_bounded():
    """Telemetry on (SDK providers, batch processor), half through the message compressor."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Discard()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    telemetry = StageTelemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    stage = fake_stage(observers=[telemetry])
    compressor = MessageCompressor(stage, cache_size=256)
    from langchain_core.messages import HumanMessage, ToolMessage

    def invoke(n: int) -> None:
        if n % 2:
            stage.run([context(n % 1000)], "capex?")
        else:
            messages = [HumanMessage("capex?"), ToolMessage(context(n), tool_call_id="c")]
            compressor.compress(messages)

    scorer = stage.estimator.scorer  # the fake keeps every request by design: cleared below

    for n in range(500):  # warm up caches, allocator pools and lazy imports
        invoke(n)
    scorer.history.clear()
    start = rss_mib()
    for n in range(RSS_RUNS):
        invoke(n)
        if n % 1000 == 999:
            scorer.history.clear()
    growth = rss_mib() - start
    tracer_provider.shutdown()
    meter_provider.shutdown()
    assert growth < RSS_BOUND_MIB, f"RSS grew {growth:.1f} MiB over {RSS_RUNS} invocations"

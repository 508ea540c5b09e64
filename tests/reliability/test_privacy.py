"""Privacy: with default settings nothing exported quotes the raw context or an API key.

Everything a deployment exports is scanned for any 20-character piece of the context or of the
key: OpenTelemetry spans (attributes, events, status) and metrics, the JSONL span files, log
records at the default levels (with tracebacks), the messages and tracebacks of exceptions our
engines raise, the decisions recorded in LangGraph state and the outputs and errors a LangChain
tracer receives from the stage's own runs. The context travels every path that handles it: an
extractive rung copying it, an error quoting it, a server echoing the request (and its
``Authorization`` header) into a 500, a stalled server, malformed JSON, a raised invocation.
With content capture on, the context appears exactly where docs/telemetry.md says, nowhere else.
"""

from __future__ import annotations

import json
import logging
import random
import traceback
from typing import Any

import pytest
from ib_integrations.openai_compat import OpenAICompatEngine
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, ToolCall, ToolMessage

from ib_middleware.compressors import (
    AbstractiveCompressor,
    ApproximateTokenCounter,
    ExtractiveCompressor,
)
from ib_middleware.errors import EngineError
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.langgraph import MessageCompressor
from ib_middleware.stage import CompressionStage
from ib_middleware.telemetry import attributes as names
from ib_middleware.telemetry import configure_span_file
from ib_middleware.telemetry.jsonl import span_record
from ib_middleware.telemetry.testing import InMemoryTelemetry
from ib_middleware.testing import FakeCompressor, FakeScorer

WIDTH = 20
QUERY = "Which quokka vouched for the zephyr?"
API_KEY = "sk-live-" + "".join(
    random.Random(3).choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(40)
)


def distinctive(seed: int, words: int = 240) -> str:
    rng = random.Random(seed)
    letters = "bcdfghjklmnpqrstvwxzaeiouy"
    sentences = []
    for _ in range(words // 8):
        chosen = ["".join(rng.choice(letters) for _ in range(rng.randint(4, 11))) for _ in range(8)]
        sentences.append(" ".join(chosen).capitalize() + ".")
    return " ".join(sentences)


CONTEXT = distinctive(11)


def windows(text: str) -> set[str]:
    return {text[i : i + WIDTH] for i in range(len(text) - WIDTH + 1)}


def quotes(blob: str, *secrets: str) -> set[str]:
    """The 20-character pieces of ``secrets`` that ``blob`` contains."""
    found = windows(blob)
    return {piece for secret in secrets for piece in windows(secret) & found}


def scorer() -> FakeScorer:
    return FakeScorer(lambda p, z: -1.0 if "Document:" in p and z.startswith("GOOD") else -5.0)


def exported(memory: InMemoryTelemetry) -> str:
    parts = [json.dumps(span_record(span), default=str) for span in memory.spans()]
    for metric in memory.metrics().values():
        parts.append(metric.name + (metric.description or "") + (metric.unit or ""))
        parts.extend(json.dumps(dict(p.attributes), default=str) for p in metric.data.data_points)
    return "\n".join(parts)


def described(error: BaseException) -> str:
    return str(error) + "".join(traceback.format_exception(error))


class Tracer(BaseCallbackHandler):
    """Keeps what a LangChain tracer receives from every run: outputs and errors."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_chain_end(self, outputs: Any, **kwargs: Any) -> None:
        if "ib_middleware:compressor" in (kwargs.get("tags") or []):
            self.seen.append(json.dumps(outputs, default=str))

    def on_chain_error(self, error: BaseException, **kwargs: Any) -> None:
        self.seen.append(described(error))


def leaky_rungs() -> list[Rung]:
    failing = FakeCompressor(model_id="leaky")
    failing.enqueue(EngineError(f"could not read: {CONTEXT[:300]}"))
    return [
        Rung(AbstractiveCompressor(failing, window_tokens=5000), 0.5),
        Rung(ExtractiveCompressor(budget_tokens=40), threshold_bits_per_token=-100.0),
    ]


def server_rung(url: str, timeout_s: float) -> Rung:
    engine = OpenAICompatEngine(
        model="smollm2", base_url=url, api_key=API_KEY, timeout_s=timeout_s, max_retries=0
    )
    compressor = AbstractiveCompressor(
        engine, max_tokens=8, window_tokens=1500, token_counter=ApproximateTokenCounter()
    )
    return Rung(compressor, threshold_bits_per_token=0.5)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_nothing_exported_quotes_the_context_or_the_key(proxy, tmp_path, monkeypatch, caplog):
    monkeypatch.delenv(names.CAPTURE_CONTENT_ENV, raising=False)
    memory = InMemoryTelemetry()
    raised: list[BaseException] = []
    state_and_traces: list[str] = []
    with configure_span_file(tmp_path / "spans.jsonl") as sink:
        observers = [memory.telemetry(), sink.telemetry()]
        ladders = [
            leaky_rungs(),
            [server_rung(proxy.url("echo"), 5), server_rung(proxy.url("502"), 5)],
            [server_rung(proxy.url("stall"), 1), server_rung(proxy.url("503"), 5)],
        ]
        for rungs in ladders:
            stage = CompressionStage(
                rungs, estimator=CXMIEstimator(scorer()), token_budget=50, observers=observers
            )
            stage.run([CONTEXT, "a short note"], QUERY)
            await stage.arun([CONTEXT], QUERY)
            tracer = Tracer()
            call = ToolCall(name="search", args={"q": "zephyr"}, id="c1")
            history = [
                HumanMessage(QUERY),
                AIMessage("", tool_calls=[call]),
                ToolMessage(CONTEXT, tool_call_id="c1"),
            ]
            out = MessageCompressor(stage).compress(history, config={"callbacks": [tracer]})
            state_and_traces += [json.dumps(out.decisions), *tracer.seen]
        for url in (proxy.url("echo"), proxy.url("503")):
            raising = CompressionStage(
                [server_rung(url, 5)],
                estimator=CXMIEstimator(scorer()),
                token_budget=50,
                observers=observers,
                on_failure="raise",
            )
            with pytest.raises(EngineError) as caught:
                raising.run([CONTEXT], QUERY)
            raised.append(caught.value)
    spans = exported(memory)
    memory.shutdown()
    assert "answered HTTP 500" in spans or "EngineError" in spans, "the faults were not exported"
    assert any("Authorization" in str(e) or "bad request" in str(e) for e in raised)
    logs = "\n".join(logging.Formatter().format(record) for record in caplog.records)
    blobs = {
        "spans and metrics": spans,
        "span files": (tmp_path / "spans.jsonl").read_text() + sink.metrics_path.read_text(),
        "log records": logs,
        "exceptions": "\n".join(described(error) for error in raised),
        "decisions and traced runs": "\n".join(state_and_traces),
    }
    for where, blob in blobs.items():
        assert quotes(blob, CONTEXT) == set(), f"{where} quote the context"
        assert quotes(blob, API_KEY) == set(), f"{where} quote the API key"
        assert quotes(blob, QUERY) == set() or where == "decisions and traced runs"


def test_content_capture_puts_the_context_exactly_where_documented():
    """docs/telemetry.md, "Message content": the context appears there and nowhere else."""
    memory = InMemoryTelemetry()
    for items in ([CONTEXT], [CONTEXT, "a short note"]):
        stage = CompressionStage(
            leaky_rungs(),
            estimator=CXMIEstimator(scorer()),
            token_budget=50,
            observers=[memory.telemetry(capture_content=True)],
        )
        stage.run(items, QUERY)
    raising = CompressionStage(
        leaky_rungs(),
        estimator=CXMIEstimator(scorer()),
        token_budget=50,
        observers=[memory.telemetry(capture_content=True)],
        on_failure="raise",
    )
    with pytest.raises(EngineError):
        raising.run([CONTEXT], QUERY)
    found: set[tuple[str, str]] = set()
    for span in memory.spans():
        kind = span.name.split(" ")[0]
        for key, value in (span.attributes or {}).items():
            if quotes(str(value), CONTEXT):
                found.add((kind, key))
        if span.status.description and quotes(span.status.description, CONTEXT):
            found.add((kind, "status"))
        for event in span.events:
            for key, value in (event.attributes or {}).items():
                if quotes(str(value), CONTEXT):
                    found.add((kind, f"{event.name}.{key}"))
    for metric in memory.metrics().values():
        for point in metric.data.data_points:
            assert not quotes(json.dumps(dict(point.attributes), default=str), CONTEXT)
    memory.shutdown()
    documented = {
        (names.SPAN_STAGE, names.CONTENT_CONTEXT),  # the route span of a one-item invocation
        (names.SPAN_ROUTE, names.CONTENT_CONTEXT),
        (names.SPAN_ROUTE, names.INPUT_VALUE),  # several items
        (names.SPAN_STAGE, names.OUTPUT_VALUE),  # the forwarded text (an extract of it here)
        (names.SPAN_ROUTE, names.OUTPUT_VALUE),
        ("extract_context", names.OUTPUT_VALUE),  # the compression, copied from the context
        ("extract_context", names.GEN_AI_OUTPUT_MESSAGES),
        ("chat", "status"),  # the failed call's ErrorType: message
        (names.SPAN_STAGE, "status"),  # the raised invocation
        (names.SPAN_STAGE, "exception.exception.message"),
        (names.SPAN_STAGE, "exception.exception.stacktrace"),
    }
    assert found <= documented, f"undocumented content: {found - documented}"
    assert {(names.SPAN_ROUTE, names.CONTENT_CONTEXT), ("chat", "status")} <= found

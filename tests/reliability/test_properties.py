"""Properties (hypothesis): chunking, message selection under faults, and parser fuzzing.

- Chunking loses nothing and respects the window; map-reduce always ends in a compression or a
  ``CompressionRejectedError``.
- Message selection through the LangGraph node and both agent-middleware modes, with a
  compressor that randomly fails, answers nothing or answers: ids, order and types are kept,
  every tool call keeps its tool message, system and human messages keep their count, and the
  system and latest human message are untouched. (tests/test_langgraph.py checks the message
  compressor itself on well-behaved fakes.)
- The parsers of compressor and engine output take arbitrary JSON without raising anything but
  the engine errors.
"""

from __future__ import annotations

import asyncio
import math
import operator
from types import SimpleNamespace
from typing import Annotated, Any, TypedDict

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ib_integrations import _openai_wire, _sglang_wire
from langchain.agents.middleware import ModelRequest, ModelResponse
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from ib_middleware.compressors import (
    AbstractiveCompressor,
    ApproximateTokenCounter,
    Compression,
    _split_to_fit,
)
from ib_middleware.engines import ScoreRequest
from ib_middleware.errors import CompressionRejectedError, EngineError
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung, check_compression
from ib_middleware.langgraph import (
    DECISIONS_KEY,
    ChatModelGenerator,
    IBMiddleware,
    compression_node,
)
from ib_middleware.stage import CompressionStage
from ib_middleware.testing import FakeCompressor, FakeScorer

SUMMARY = "GOOD capex was $1,577 million"
COUNTER = ApproximateTokenCounter()

# --- chunking -------------------------------------------------------------------------------

texts = st.one_of(
    st.text(max_size=3000),
    st.lists(
        st.sampled_from(["Revenue rose.", "Costs fell!", "\n\n", "- item", "word", "x" * 300, " "]),
        max_size=200,
    ).map(" ".join),
)


def visible(text: str) -> str:
    return "".join(text.split())


@settings(max_examples=150, deadline=None)
@given(text=texts, limit=st.integers(1, 300))
def test_chunks_fit_the_window_and_lose_nothing(text, limit):
    chunks = _split_to_fit(text, COUNTER, limit)
    assert all(COUNTER.count_tokens(chunk) <= limit for chunk in chunks)
    assert visible("".join(chunks)) == visible(text)


class Shrinking:
    """A generator that answers a third of what it was given (or a queued fault)."""

    model_id = "shrinking"

    def __init__(self, faults: list[Any]) -> None:
        self.faults = list(faults)
        self.pieces: list[str] = []

    def generate(self, messages, settings=None):
        from ib_middleware.engines import Generation

        document = messages[-1].content.split("<document>\n", 1)[1].split("\n</document>", 1)[0]
        self.pieces.append(document)
        if self.faults:
            fault = self.faults.pop(0)
            if isinstance(fault, BaseException):
                raise fault
            return Generation(fault, "shrinking", 1, 1, 0.0, "stop")
        return Generation(document[: len(document) // 3], "shrinking", 1, 1, 0.0, "stop")

    async def agenerate(self, messages, settings=None):
        return self.generate(messages, settings)


@settings(max_examples=60, deadline=None)
@given(
    text=texts,
    window=st.integers(64, 400),
    faults=st.lists(st.sampled_from(["", "x" * 5000, EngineError("down")]), max_size=2),
)
def test_map_reduce_ends_in_a_compression_or_a_typed_error(text, window, faults):
    generator = Shrinking(faults)
    compressor = AbstractiveCompressor(generator, window_tokens=window, max_tokens=50)
    try:
        compression = compressor.compress(text, "q?")
    except (CompressionRejectedError, EngineError):
        return
    assert isinstance(compression, Compression)
    assert compression.chunks >= 1
    first_level = generator.pieces[: compression.chunks]
    assert visible("".join(first_level)) == visible(text.replace("</document>", "</ document>"))


# --- message selection and pairing, with faults ------------------------------------------------


class Flaky:
    """A generator whose every answer hypothesis picks: the summary, nothing, or a failure."""

    model_id = "flaky"

    def __init__(self, outcomes: list[str]) -> None:
        self.outcomes = outcomes
        self.calls = 0

    def _next(self) -> Any:
        from ib_middleware.engines import Generation

        outcome = self.outcomes[self.calls % len(self.outcomes)] if self.outcomes else "ok"
        self.calls += 1
        if outcome == "error":
            raise EngineError("flaky engine")
        text = "" if outcome == "empty" else SUMMARY
        return Generation(text, "flaky", 1, 1, 0.0, "stop")

    def generate(self, messages, settings=None):
        return self._next()

    async def agenerate(self, messages, settings=None):
        return self._next()


@st.composite
def histories(draw: Any) -> list[AnyMessage]:
    messages: list[AnyMessage] = [SystemMessage("sys " * draw(st.integers(1, 90)), id="sys")]
    counter = 0
    bodies = st.sampled_from(
        [
            "",
            "short",
            "Capital expenditure was $1,577 million. " * 40,
            [
                {"type": "text", "text": "Capex. " * 80},
                {"type": "image_url", "image_url": {"url": "x"}},
            ],
            '{"rows": [' + ", ".join(str(i) for i in range(400)) + "]}",
        ]
    )
    for turn in range(draw(st.integers(1, 3))):
        messages.append(HumanMessage("question " * draw(st.integers(1, 90)), id=f"h{turn}"))
        for step in range(draw(st.integers(0, 2))):
            calls = []
            for _ in range(draw(st.integers(1, 3))):
                counter += 1
                calls.append(ToolCall(name="search", args={"n": counter}, id=f"c{counter}"))
            messages.append(
                AIMessage(
                    "thinking " * draw(st.integers(0, 90)), tool_calls=calls, id=f"a{turn}{step}"
                )
            )
            for call in calls:
                messages.append(
                    ToolMessage(draw(bodies), tool_call_id=call["id"], id=f"t{call['id']}")
                )
        messages.append(AIMessage("answer", id=f"final{turn}"))
    return messages


def flaky_stage(outcomes: list[str]) -> CompressionStage:
    scorer = FakeScorer(lambda p, z: -1.0 if "Document:" in p and z.startswith("GOOD") else -5.0)
    rung = Rung(AbstractiveCompressor(Flaky(outcomes), window_tokens=5000), 0.5)
    return CompressionStage([rung], estimator=CXMIEstimator(scorer), token_budget=50)


def check_structure(before: list[Any], after: list[Any]) -> None:
    assert [(m.id, type(m)) for m in after] == [(m.id, type(m)) for m in before]
    for old, new in zip(before, after, strict=True):
        if isinstance(old, ToolMessage):
            assert new.tool_call_id == old.tool_call_id
        if isinstance(old, AIMessage):
            assert new.tool_calls == old.tool_calls
        assert new.content in (old.content, SUMMARY)
    answered = {m.tool_call_id for m in after if isinstance(m, ToolMessage)}
    called = {c["id"] for m in after if isinstance(m, AIMessage) for c in m.tool_calls}
    assert answered == called, "a tool call lost its tool message"
    for kind in (SystemMessage, HumanMessage):
        assert sum(isinstance(m, kind) for m in after) == sum(isinstance(m, kind) for m in before)
    latest = max(i for i, m in enumerate(before) if isinstance(m, HumanMessage))
    assert after[latest] == before[latest]
    assert after[0] == before[0]


outcome_lists = st.lists(st.sampled_from(["ok", "empty", "error"]), min_size=1, max_size=4)
KINDS = st.sampled_from([("tool",), ("tool", "human"), ("tool", "human", "ai")])


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    ib_decisions: Annotated[list[dict[str, Any]], operator.add]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=histories(), outcomes=outcome_lists, kinds=KINDS)
def test_node_keeps_structure_under_faults(messages, outcomes, kinds):
    graph = StateGraph(State)
    graph.add_node("compress", compression_node(flaky_stage(outcomes), kinds=kinds))
    graph.add_edge(START, "compress")
    graph.add_edge("compress", END)
    out = graph.compile().invoke({"messages": messages, "ib_decisions": []})
    check_structure(messages, out["messages"])
    for decision in out[DECISIONS_KEY]:
        assert decision["decision"] in ("passthrough", "accepted", "fallback")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=histories(), outcomes=outcome_lists, kinds=KINDS, use_async=st.booleans())
def test_agent_middleware_call_mode_keeps_structure_under_faults(
    messages, outcomes, kinds, use_async
):
    middleware = IBMiddleware(flaky_stage(outcomes), mode="call", kinds=kinds)
    request = ModelRequest(model=None, messages=messages, state={"messages": messages})
    seen: list[Any] = []

    def handler(request: ModelRequest) -> ModelResponse:
        seen[:] = request.messages
        return ModelResponse(result=[AIMessage("done")])

    async def ahandler(request: ModelRequest) -> ModelResponse:
        return handler(request)

    if use_async:
        asyncio.run(middleware.awrap_model_call(request, ahandler))
    else:
        middleware.wrap_model_call(request, handler)
    check_structure(messages, seen)


# --- fuzzing the parsers of compressor and engine output ----------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300), tokens_in=st.integers(0, 500), tokens_out=st.integers(0, 500))
def test_check_compression_takes_any_text(text, tokens_in, tokens_out):
    compression = Compression(text, "m", "abstractive", tokens_in, tokens_out, 0, 0, 1, 1, 0.0)
    verdict = check_compression(compression, min_output_tokens=4)
    if verdict is None:
        assert text.strip()
        assert tokens_out < tokens_in


@settings(max_examples=300, deadline=None)
@given(body=json_values, secret=st.text(min_size=8, max_size=30))
def test_server_error_messages_are_short_and_keyless(body, secret):
    text = _openai_wire.short(body, f"fallback {secret}", secret)
    assert len(text) <= 160
    assert secret not in text


def generate_answers() -> Any:
    choice = st.fixed_dictionaries(
        {"message": st.one_of(json_values, st.fixed_dictionaries({"content": json_values}))},
        optional={"finish_reason": json_values},
    )
    usage = st.one_of(
        json_values,
        st.fixed_dictionaries({"prompt_tokens": json_values, "completion_tokens": json_values}),
    )
    return st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"choices": st.one_of(json_values, st.lists(choice, max_size=2)), "usage": usage},
            optional={"model": json_values},
        ),
    )


@settings(max_examples=300, deadline=None)
@given(body=generate_answers())
def test_sglang_generation_parser_raises_only_engine_errors(body):
    try:
        generation = _sglang_wire.parse_generation(body, "m", 0.0)
    except EngineError:
        return
    assert isinstance(generation.text, str)


@settings(max_examples=300, deadline=None)
@given(
    body=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "meta_info": st.one_of(
                    json_values,
                    st.fixed_dictionaries(
                        {
                            "input_token_logprobs": st.lists(
                                st.one_of(
                                    json_values, st.tuples(st.floats(), st.integers(0, 5)).map(list)
                                ),
                                max_size=4,
                            ),
                            "cached_tokens": json_values,
                        }
                    ),
                )
            }
        ),
    ),
    z_ids=st.lists(st.integers(0, 5), max_size=3),
)
def test_sglang_score_parser_raises_only_engine_errors(body, z_ids):
    try:
        values, cached = _sglang_wire.parse_scores(body, z_ids)
    except EngineError:
        return
    assert len(values) == len(z_ids)
    assert all(math.isfinite(v) for v in values)
    assert cached is None or isinstance(cached, int)


def completion(body: Any) -> Any:
    """An answer as the ``openai`` client builds it: validated when it can be, else as is."""
    try:
        return openai.types.Completion.model_validate(body)
    except Exception:
        return openai.types.Completion.model_construct(**body) if isinstance(body, dict) else body


@settings(max_examples=300, deadline=None)
@given(
    body=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "id": st.just("c"),
                "object": st.just("text_completion"),
                "created": st.just(0),
                "model": st.just("m"),
                "choices": st.lists(
                    st.fixed_dictionaries(
                        {
                            "text": st.just("x"),
                            "index": st.just(0),
                            "finish_reason": st.just("length"),
                            "logprobs": st.one_of(
                                st.none(),
                                st.fixed_dictionaries(
                                    {
                                        "token_logprobs": st.lists(
                                            st.one_of(st.none(), st.floats()), max_size=6
                                        )
                                    }
                                ),
                            ),
                            "prompt_logprobs": json_values,
                        }
                    ),
                    max_size=2,
                ),
                "usage": st.one_of(
                    st.none(),
                    st.fixed_dictionaries(
                        {
                            "prompt_tokens": st.integers(0, 6),
                            "completion_tokens": st.integers(0, 2),
                            "total_tokens": st.integers(0, 8),
                        }
                    ),
                ),
            }
        ),
    ),
    method=st.sampled_from(["echo", "prompt_logprobs"]),
    ids=st.lists(st.integers(0, 9), max_size=5),
    has_bos=st.booleans(),
)
def test_prompt_logprob_readers_never_raise(body, method, ids, has_bos):
    response = completion(body)
    found = _openai_wire.entries(response, method, ids)
    assert found is None or isinstance(found, list)
    aligned = _openai_wire.prompt_entries(response, method, ids, has_bos=has_bos)
    assert aligned is None or len(aligned) <= len(found or [])


@settings(max_examples=200, deadline=None)
@given(content=st.one_of(st.text(), st.lists(st.one_of(st.text(), json_values), max_size=4)))
def test_chat_model_replies_of_any_shape_become_text(content):
    message = SimpleNamespace(content=content, usage_metadata=None, response_metadata={})
    generator = ChatModelGenerator.__new__(ChatModelGenerator)
    generator._model_id = "m"
    generation = generator._generation(message, 0.0)
    assert isinstance(generation.text, str)


def test_score_request_shapes_are_unchanged():
    # The fuzzed readers above work on what ScoreRequest batches produce; keep the type honest.
    assert ScoreRequest("p", "c").prompt == "p"
    assert FakeCompressor(default="x").generate([]).text == "x"
    with pytest.raises(EngineError):
        _sglang_wire.parse_scores({}, [1])

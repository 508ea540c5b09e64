"""The relevance gate: a page with nothing the query needs is pruned to a one-line note."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.tools import tool

from ib_middleware.build import build_stage
from ib_middleware.config import StageConfig
from ib_middleware.judging.relevance import RelevantInformationEstimator
from ib_middleware.judging.routing import Rung, route_action
from ib_middleware.langgraph import MARKER_KEY, IBMiddleware, MessageCompressor
from ib_middleware.policy import Policy, PolicyRung, default_policy_path
from ib_middleware.registry import register_engine
from ib_middleware.selection import SegmentCompressor
from ib_middleware.stage import CompressionStage, ContextItem, pruned_note
from ib_middleware.testing import FakeScorer

MODES = ["sync", "async"]
QUERY = "What was 3M's capital expenditure in 2018?"
RELEVANT = "3M capital expenditure was $1,577 million in 2018. " + "Other text here. " * 60
DISTRACTOR = "Boeing capital expenditure was $1,722 million in 2018. " + "Other text here. " * 60


def scorer_function(prompt: str, continuation: str) -> float:
    """The query is cheap after a passage naming 3M; the relevant part after its figure."""
    if continuation == QUERY:
        return -1.0 if "3M" in prompt else -8.0
    return -1.0 if "1,577" in prompt else -6.0


def gated_stage(prune_below: float | None = 0.5) -> CompressionStage:
    return CompressionStage(
        [Rung(SegmentCompressor(budget_tokens=40), threshold_bits_per_token=0.5)],
        estimator=RelevantInformationEstimator(FakeScorer(scorer_function)),
        token_budget=20,
        prune_below=prune_below,
    )


async def run(stage: CompressionStage, items: list[ContextItem], mode: str):
    if mode == "sync":
        return stage.run(items, QUERY)
    return await stage.arun(items, QUERY)


def test_route_action_prunes_before_it_accepts():
    assert route_action(0.9, 0.1, 0.5, 0.2) == "prune"
    assert route_action(0.9, 0.3, 0.5, 0.2) == "accept"
    assert route_action(0.4, 0.3, 0.5, 0.2) == "escalate"
    assert route_action(0.9, None, 0.5, 0.2) == "accept", "no query figure: the gate is silent"
    assert route_action(0.9, 0.0, 0.5, None) == "accept", "no gate"


@pytest.mark.parametrize("mode", MODES)
async def test_a_distractor_page_is_pruned_and_the_relevant_page_accepted(mode):
    items = [ContextItem(RELEVANT, "tool:search"), ContextItem(DISTRACTOR, "tool:search")]
    relevant, distractor = await run(gated_stage(), items, mode)
    assert relevant.decision == "accepted"
    assert "1,577" in relevant.text
    assert distractor.decision == "pruned"
    assert distractor.rung is None
    assert distractor.text == pruned_note("tool:search", distractor.input_tokens)
    assert distractor.text.startswith("[search result: nothing relevant to the question;")
    assert distractor.output_tokens < 20 < distractor.input_tokens
    [attempt] = distractor.attempts
    assert attempt.pruned
    assert not attempt.accepted
    assert attempt.estimate is not None
    assert attempt.estimate.query_fraction == pytest.approx(0.0)
    assert "nothing relevant to the query" in distractor.reason
    record = distractor.to_dict(include_text=False)
    assert record["decision"] == "pruned"
    assert "text" not in record


@pytest.mark.parametrize("mode", MODES)
async def test_without_a_gate_nothing_is_pruned(mode):
    items = [ContextItem(DISTRACTOR, "tool:search")]
    [result] = await run(gated_stage(prune_below=None), items, mode)
    assert result.decision != "pruned"


@pytest.mark.parametrize("mode", MODES)
async def test_a_pruned_tool_message_keeps_its_original_in_the_marker(mode):
    call = ToolCall(name="search", args={"q": "capex"}, id="c1")
    history = [
        HumanMessage(QUERY, id="h1"),
        AIMessage("", tool_calls=[call], id="a1"),
        ToolMessage(DISTRACTOR, tool_call_id="c1", id="t1"),
    ]
    compressor = MessageCompressor(gated_stage())
    out = compressor.compress(history) if mode == "sync" else await compressor.acompress(history)
    message = out.messages[2]
    assert message.content.startswith("[search result: nothing relevant")
    assert message.tool_call_id == "c1"
    assert message.id == "t1"
    marker = message.response_metadata[MARKER_KEY]
    assert marker["decision"] == "pruned"
    assert marker["original"] == DISTRACTOR, "the original stays retrievable"
    assert out.decisions[0]["decision"] == "pruned"


def test_the_gate_threshold_comes_from_the_config_or_the_policy(tmp_path):
    # A gate fitted on the default ladder's first rung (the policy names its rungs). The
    # policy records no stage (fitted_for None, as a version-2 file), so the fake scorer may
    # use it; tests/test_calibration_policy.py covers a policy that records one.
    rungs = [
        PolicyRung(name=rung.name, threshold_bits_per_token=0.5) for rung in StageConfig().rungs
    ]
    policy = Policy.load(default_policy_path()).model_copy(
        update={"prune_below": 0.25, "rungs": rungs, "fitted_for": None}
    )
    path = policy.save(tmp_path / "policy.json")
    register_engine("fake-gate-scorer", lambda **options: FakeScorer(scorer_function, **options))
    scorer = {"engine": "fake-gate-scorer", "options": {}}
    assert build_stage(StageConfig(policy=path, estimator={"scorer": scorer})).prune_below == 0.25
    overridden = StageConfig(policy=path, prune_below=0.1, estimator={"scorer": scorer})
    assert build_stage(overridden).prune_below == 0.1
    off = StageConfig(policy=path, relevance_gate=False, estimator={"scorer": scorer})
    assert build_stage(off).prune_below is None
    other_ladder = StageConfig(
        policy=path,
        estimator={"scorer": scorer},
        rungs=[{"name": "rows", "compressor": {"kind": "segments"}}],
    )
    assert build_stage(other_ladder).prune_below is None, "fitted on another first rung"


def test_a_pruned_decision_is_on_its_span_and_in_the_decision_counter():
    from ib_middleware.telemetry import attributes as names
    from ib_middleware.telemetry.testing import InMemoryTelemetry

    memory = InMemoryTelemetry()
    try:
        stage = gated_stage()
        stage.observers = (memory.telemetry(),)
        stage.run([ContextItem(DISTRACTOR, "tool:search")], QUERY)
        [route] = [s for s in memory.spans() if names.ROUTE_DECISION in (s.attributes or {})]
        assert route.attributes[names.ROUTE_DECISION] == "pruned"
        assert route.attributes[names.MI_QUERY_FRACTION] == pytest.approx(0.0)
        assert "nothing relevant" in str(route.attributes[names.ROUTE_REASON])
        points = memory.metric(names.METRIC_DECISIONS).data.data_points
        assert [dict(p.attributes) for p in points] == [{names.ROUTE_DECISION: "pruned"}]
    finally:
        memory.shutdown()


class CountingCounter:
    """A token counter that remembers every text it counted."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def count_tokens(self, text: str) -> int:
        self.texts.append(text)
        return len(text) // 4 + 1


@pytest.mark.parametrize("mode", MODES)
async def test_a_tool_output_is_tokenised_once_on_its_way_through(mode):
    counter = CountingCounter()
    stage = CompressionStage(
        [Rung(SegmentCompressor(budget_tokens=40, token_counter=counter), 0.5)],
        estimator=RelevantInformationEstimator(FakeScorer(scorer_function)),
        token_budget=20,
        token_counter=counter,
    )
    call = ToolCall(name="search", args={"q": "capex"}, id="c1")
    history = [
        HumanMessage(QUERY, id="h1"),
        AIMessage("", tool_calls=[call], id="a1"),
        ToolMessage(RELEVANT, tool_call_id="c1", id="t1"),
    ]
    compressor = MessageCompressor(stage)
    out = compressor.compress(history) if mode == "sync" else await compressor.acompress(history)
    assert out.results[0].decision == "accepted"
    assert counter.texts.count(RELEVANT) == 1, "planner, stage and compressor share one count"
    assert out.results[0].input_tokens == len(RELEVANT) // 4 + 1


class ToolThenAnswer(FakeMessagesListChatModel):
    """Calls the search tool, then answers; remembers what it was shown."""

    seen: ClassVar[list[list[Any]]] = []

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _generate(self, messages: Any, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return super()._generate(messages, *args, **kwargs)


@pytest.mark.parametrize("mode", MODES)
async def test_create_agent_sees_the_note_for_a_distractor_and_counts_it_once(mode):
    @tool
    def search(company: str) -> str:
        """Return a filing page."""
        return DISTRACTOR

    counter = CountingCounter()
    stage = CompressionStage(
        [Rung(SegmentCompressor(budget_tokens=40, token_counter=counter), 0.5)],
        estimator=RelevantInformationEstimator(FakeScorer(scorer_function)),
        token_budget=20,
        token_counter=counter,
        prune_below=0.5,
    )
    call = ToolCall(name="search", args={"company": "3M"}, id="call-1")
    model = ToolThenAnswer(responses=[AIMessage("", tool_calls=[call]), AIMessage("unknown")])
    ToolThenAnswer.seen = []
    graph = create_agent(model, tools=[search], middleware=[IBMiddleware(stage)])
    inputs = {"messages": [HumanMessage(QUERY)]}
    state = graph.invoke(inputs) if mode == "sync" else await graph.ainvoke(inputs)
    tool_message = next(m for m in state["messages"] if isinstance(m, ToolMessage))
    assert tool_message.content.startswith("[search result: nothing relevant")
    assert tool_message.response_metadata[MARKER_KEY]["original"] == DISTRACTOR
    assert model.seen[-1][-1].content == tool_message.content, "the model read the note"
    assert counter.texts.count(DISTRACTOR) == 1

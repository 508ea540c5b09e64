"""The relevance gate: a page with nothing the query needs is pruned to a one-line note."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolCall, ToolMessage

from ib_middleware.build import build_stage
from ib_middleware.config import StageConfig
from ib_middleware.langgraph import MARKER_KEY, MessageCompressor
from ib_middleware.policy import Policy, default_policy_path
from ib_middleware.registry import register_engine
from ib_middleware.relevance import RelevantInformationEstimator
from ib_middleware.routing import Rung, route_action
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
    policy = Policy.load(default_policy_path()).model_copy(update={"prune_below": 0.25})
    path = policy.save(tmp_path / "policy.json")
    register_engine("fake-gate-scorer", lambda **options: FakeScorer(scorer_function, **options))
    scorer = {"engine": "fake-gate-scorer", "options": {}}
    assert build_stage(StageConfig(policy=path, estimator={"scorer": scorer})).prune_below == 0.25
    overridden = StageConfig(policy=path, prune_below=0.1, estimator={"scorer": scorer})
    assert build_stage(overridden).prune_below == 0.1
    off = StageConfig(policy=path, relevance_gate=False, estimator={"scorer": scorer})
    assert build_stage(off).prune_below is None

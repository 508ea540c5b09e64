"""The demo's research agent: a ReAct loop whose search tool's JSON is judged result by result."""

from __future__ import annotations

import json

from langchain_core.messages import HumanMessage, ToolMessage

from ib_middleware.compressors import ApproximateTokenCounter
from ib_middleware.judging.relevance import RelevantInformationEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.lab.data.hotpotqa import load_hotpotqa
from ib_middleware.lab.demo import (
    ResearchReport,
    build_research_agent,
    research_call,
    search_tool,
)
from ib_middleware.selection import SegmentCompressor
from ib_middleware.stage import CompressionStage
from ib_middleware.testing import FakeCompressor, FakeScorer

QUESTIONS = load_hotpotqa()[:2]
COUNT = ApproximateTokenCounter().count_tokens


def stage(*, token_budget: int, threshold: float) -> CompressionStage:
    rung = Rung(SegmentCompressor(budget_tokens=30), threshold_bits_per_token=threshold)
    return CompressionStage(
        [rung],
        estimator=RelevantInformationEstimator(FakeScorer(lambda p, z: -1.0)),
        token_budget=token_budget,
    )


def test_search_tool_returns_the_ten_results_of_the_question_asked() -> None:
    search = search_tool(QUESTIONS)
    found = search.invoke({"query": QUESTIONS[1].question})
    assert [r["title"] for r in found["results"]] == [p.title for p in QUESTIONS[1].paragraphs]
    assert search.invoke({"query": "not a question of the sample"}) == {"results": []}


def test_within_budget_the_agent_reads_every_result_and_every_fact() -> None:
    agent = build_research_agent(
        stage(token_budget=100_000, threshold=0.0),
        FakeCompressor(default="Yes."),
        search_tool(QUESTIONS),
    )
    call = research_call(agent, QUESTIONS[0], COUNT)
    assert call.facts_kept is True
    assert call.raw_tokens == call.forwarded_tokens
    assert call.answer == "Yes."
    assert len(call.results) == 10


def test_over_budget_each_result_gets_its_own_decision_and_facts_are_checked() -> None:
    answerer = FakeCompressor(default="An answer.")
    agent = build_research_agent(
        stage(token_budget=50, threshold=0.0), answerer, search_tool(QUESTIONS)
    )
    state = agent.invoke({"messages": [HumanMessage(QUESTIONS[0].question)]})
    [tool_message] = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    shown = json.loads(tool_message.content)  # still the search tool's JSON
    assert len(shown["results"]) == 10
    [record] = state["ib_decisions"]
    assert len(record["results"]) == 10
    call = research_call(agent, QUESTIONS[0], COUNT)
    assert call.forwarded_tokens < call.raw_tokens
    assert set(call.decisions) <= {"accepted", "fallback", "pruned", "passthrough"}
    supporting = [row for row in call.results if row.supporting]
    assert supporting
    assert all(row.facts_kept is not None for row in supporting)
    assert call.facts_kept == all(row.facts_kept for row in supporting)
    # The model read the compressed results: its prompt holds the question and the JSON.
    prompt = answerer.history[0][-1].content
    assert QUESTIONS[0].question in prompt
    report = ResearchReport((call,))
    assert report.summary()["search_calls"] == 1
    assert "search calls" in report.summary_line()

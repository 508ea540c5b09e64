"""The demo's research agent: a ReAct loop whose search tool returns ten results.

``agent -> tools -> agent``, the shape of LangGraph's ReAct template, with the stage added by
``add_compression`` on the tool node, as a user would add it. The ``search`` tool returns the
bundled HotpotQA sample's ten paragraphs for the question (CC BY-SA 4.0; see
``ib_middleware.lab.data.hotpotqa``) as the JSON a search tool returns, a dict with a
``results`` list, which ``ToolNode`` dumps to the tool message: the stage judges it result by
result. The agent's one tool call is scripted (a 135M model cannot call tools reliably); after
the results, the embedded SmolLM2 answers from what it reads.

Per call the report gives the tokens of the tool output in and out, each result's decision,
and whether every supporting-fact sentence (HotpotQA's annotation) survived word for word.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool, tool
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typing_extensions import TypedDict

from ib_middleware.engines import Generator
from ib_middleware.lab.data.hotpotqa import HotpotQuestion
from ib_middleware.lab.workloads import results_json, sentence_contained
from ib_middleware.langgraph import (
    DECISIONS_KEY,
    MARKER_KEY,
    Decisions,
    GeneratorChatModel,
    add_compression,
    latest_human_text,
    message_text,
)
from ib_middleware.stage import CompressionStage

__all__ = [
    "ResearchCall",
    "ResearchReport",
    "ResearchState",
    "ScriptedToolCaller",
    "build_research_agent",
    "render_call",
    "research_call",
    "search_tool",
    "yes_no",
]

SEARCH_TOOL = "search"
_ANSWER_TOKENS = 32


class ScriptedToolCaller(GeneratorChatModel):
    """SmolLM2 answers; the tool call before it is scripted (a 135M model cannot call tools).

    While the conversation holds no tool result yet, the reply is the scripted ``tool_call``
    (``{"name": ..., "args": ...}``); after it, the generator writes the answer from what it
    sees. Swap this class for a real tool-calling model (ChatOpenAI, ChatAnthropic, ...).

    SmolLM2 sees the conversation as one user turn (question, tool results), which a 135M
    model follows far better than a multi-turn tool transcript.

    Example:
        >>> from ib_middleware.testing import FakeCompressor
        >>> model = ScriptedToolCaller(
        ...     generator=FakeCompressor(default="Paris."),
        ...     tool_call={"name": "search", "args": {"query": "capital of France"}},
        ... )
        >>> model.invoke("What is the capital of France?").tool_calls[0]["args"]
        {'query': 'capital of France'}
    """

    tool_call: dict[str, Any]
    layout: Literal["roles", "single_turn"] = "single_turn"
    instruction: str = "Answer in one sentence."
    max_tokens: int = 96

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        if any(isinstance(m, ToolMessage) for m in messages):
            return super()._generate(messages, stop, run_manager, **kwargs)
        return self._scripted_call(messages)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        if any(isinstance(m, ToolMessage) for m in messages):
            return await super()._agenerate(messages, stop, run_manager, **kwargs)
        return self._scripted_call(messages)

    def _scripted_call(self, messages: Sequence[BaseMessage]) -> ChatResult:
        call = {**self.tool_call, "id": f"call-{len(messages)}", "type": "tool_call"}
        reply = AIMessage("", tool_calls=[call])
        return ChatResult(generations=[ChatGeneration(message=reply)])


def search_tool(questions: Sequence[HotpotQuestion]) -> BaseTool:
    """A ``search`` tool over the bundled results: the ten results of the question asked.

    Example:
        >>> from ib_middleware.lab.data.hotpotqa import load_hotpotqa
        >>> [first, *_] = load_hotpotqa()
        >>> found = search_tool([first]).invoke({"query": first.question})
        >>> len(found["results"]), sorted(found["results"][0])
        (10, ['content', 'title', 'url'])
    """
    by_question = {question.question: question for question in questions}

    @tool(SEARCH_TOOL)
    def search(query: str) -> dict[str, Any]:
        """Search the web; returns the top ten results (title, content, url)."""
        found = by_question.get(query)
        return json.loads(results_json(found)) if found is not None else {"results": []}

    return search


class ResearchState(TypedDict, total=False):
    """The research agent's state: the conversation and the stage's decisions."""

    messages: Annotated[list[AnyMessage], add_messages]
    ib_decisions: Decisions


def build_research_agent(
    stage: CompressionStage, answerer: Generator, search: BaseTool
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The ReAct loop (``agent -> tools -> agent``) with ``add_compression`` on its tools.

    Example:
        ::

            agent = build_research_agent(build_stage(), answerer, search_tool(questions))
            state = agent.invoke({"messages": [HumanMessage(question.question)]})
    """

    def agent(state: ResearchState) -> dict[str, Any]:
        messages = state.get("messages", [])
        call = {"name": SEARCH_TOOL, "args": {"query": latest_human_text(messages)}}
        model: BaseChatModel = ScriptedToolCaller(
            generator=answerer, tool_call=call, max_tokens=_ANSWER_TOKENS
        )
        return {"messages": [model.invoke(messages)]}

    builder: StateGraph[Any, Any, Any, Any] = StateGraph(ResearchState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([search]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    add_compression(builder, stage, after="tools")
    return builder.compile(name="ib_middleware_research_demo")


@dataclass(frozen=True)
class ResultRow:
    """What happened to one search result."""

    title: str
    supporting: bool
    decision: str
    raw_tokens: int
    forwarded_tokens: int
    facts_kept: bool | None
    """A result holding supporting facts: whether all of them survived; None otherwise."""


@dataclass(frozen=True)
class ResearchCall:
    """One question through the research agent: its search call and the answer."""

    question: str
    gold: str
    answer: str
    raw_tokens: int
    forwarded_tokens: int
    facts_kept: bool
    """Whether every supporting-fact sentence of the question survived in what the agent read."""
    results: tuple[ResultRow, ...] = field(default_factory=tuple)
    wall_s: float = 0.0

    @property
    def decisions(self) -> dict[str, int]:
        """How many results got each decision."""
        return dict(Counter(row.decision for row in self.results))


def _result_rows(
    question: HotpotQuestion, shown: str, record: dict[str, Any] | None
) -> tuple[ResultRow, ...]:
    record = record or {}
    entries = record.get("results") or []
    try:
        shown_results = json.loads(shown).get("results", [])
    except (ValueError, AttributeError):
        shown_results = []
    rows = []
    for index, paragraph in enumerate(question.paragraphs):
        entry = entries[index] if index < len(entries) else {}
        sentences = question.supporting_sentences(paragraph.title)
        shown_result = shown_results[index] if index < len(shown_results) else None
        text = json.dumps(shown_result, ensure_ascii=False) if shown_result else ""
        rows.append(
            ResultRow(
                title=paragraph.title,
                supporting=bool(sentences),
                decision=str(entry.get("decision") or record.get("decision", "-")),
                raw_tokens=int(entry.get("input_tokens", 0)),
                forwarded_tokens=int(entry.get("output_tokens", 0)),
                facts_kept=all(sentence_contained(s, text) for s in sentences)
                if sentences
                else None,
            )
        )
    return tuple(rows)


def research_call(
    agent: CompiledStateGraph[Any, Any, Any, Any],
    question: HotpotQuestion,
    count_tokens: Callable[[str], int],
) -> ResearchCall:
    """Run one question through ``agent`` and measure its search call.

    ``count_tokens`` counts a text's tokens (the stage's ``token_counter.count_tokens``).
    """
    started = time.perf_counter()
    state = agent.invoke({"messages": [HumanMessage(question.question)]})
    messages = state.get("messages", [])
    tool_message = next(m for m in messages if isinstance(m, ToolMessage))
    shown = message_text(tool_message) or ""
    marker = tool_message.response_metadata.get(MARKER_KEY, {})
    original = marker.get("original")
    raw = original if isinstance(original, str) else shown  # unchanged: no original kept
    records = [r for r in state.get(DECISIONS_KEY, []) if r.get("tool_call_id")]
    record = records[-1] if records else None
    sentences = question.supporting_sentences()
    return ResearchCall(
        question=question.question,
        gold=question.answer,
        answer=" ".join((message_text(messages[-1]) or "").split()),
        raw_tokens=count_tokens(raw),
        forwarded_tokens=count_tokens(shown),
        facts_kept=all(sentence_contained(sentence, shown) for sentence in sentences),
        results=_result_rows(question, shown, record),
        wall_s=time.perf_counter() - started,
    )


@dataclass(frozen=True)
class ResearchReport:
    """The research agent's run: its calls, in order.

    Example:
        >>> call = ResearchCall("Who?", "Ann", "Ann.", 1000, 300, True)
        >>> ResearchReport((call,)).summary()["token_savings"]
        0.7
    """

    calls: tuple[ResearchCall, ...]

    def summary(self) -> dict[str, Any]:
        """Calls, tokens in and out, savings, and the share of calls keeping every fact."""
        raw = sum(call.raw_tokens for call in self.calls)
        forwarded = sum(call.forwarded_tokens for call in self.calls)
        decisions: Counter[str] = Counter()
        for call in self.calls:
            decisions.update(call.decisions)
        kept = sum(call.facts_kept for call in self.calls)
        return {
            "search_calls": len(self.calls),
            "raw_tokens": raw,
            "forwarded_tokens": forwarded,
            "token_savings": round(1.0 - forwarded / raw, 4) if raw else 0.0,
            "calls_keeping_every_fact": kept,
            "supporting_facts_kept": kept / len(self.calls) if self.calls else None,
            "result_decisions": dict(decisions),
        }

    def summary_line(self) -> str:
        """One line: tokens in and out, savings, and the calls that kept every fact.

        Example:
            >>> call = ResearchCall("Who?", "Ann", "Ann.", 1000, 300, True)
            >>> for part in ResearchReport((call,)).summary_line().split("; "):
            ...     print(part)
            1 search calls: 1000 tokens of results -> 300 read (70% saved)
            every supporting fact kept in 1/1
        """
        s = self.summary()
        kept = s["calls_keeping_every_fact"]
        return (
            f"{s['search_calls']} search calls: {s['raw_tokens']} tokens of results -> "
            f"{s['forwarded_tokens']} read ({s['token_savings']:.0%} saved); "
            f"every supporting fact kept in {kept}/{s['search_calls']}"
        )


def yes_no(value: bool | None) -> str:
    """A table cell for a judgement: yes, no, or - when there was nothing to judge."""
    return "-" if value is None else ("yes" if value else "no")


def render_call(console: Console, number: int, call: ResearchCall) -> None:
    """A table of one search call's results, then the answer and whether the facts survived."""
    table = Table(title=escape(f"S{number} {call.question}"), title_justify="left")
    for column in ("result", "tokens in", "out", "decision", "supporting facts kept"):
        table.add_column(column, justify="left" if column in ("result", "decision") else "right")
    for row in call.results:
        label = f"{row.title}{' (supporting)' if row.supporting else ''}"
        table.add_row(
            escape(label),
            str(row.raw_tokens),
            str(row.forwarded_tokens),
            row.decision,
            yes_no(row.facts_kept),
        )
    table.add_section()
    table.add_row(
        "tool message",
        str(call.raw_tokens),
        str(call.forwarded_tokens),
        "",
        yes_no(call.facts_kept),
    )
    console.print(table)
    console.print(f"  [bold]answer[/]  {escape(call.answer)}")
    console.print(f"  [bold]gold[/]    {escape(call.gold)}  [dim]({call.wall_s:.0f} s)[/]")

"""Wrap an existing LangGraph agent: the before/after diff is four lines.

``build_agent`` is an ordinary tool-calling LangGraph agent (an ``agent`` node and a
``ToolNode``, looping until the model stops calling tools). Give it a stage and it puts
``compression_node`` between the tools and the agent: that is the whole change::

    -   builder = StateGraph(MessagesState)
    +   builder = StateGraph(CompressionState)           # MessagesState + ib_decisions
        ...
    -   builder.add_edge("tools", "agent")
    +   builder.add_node("compress", compression_node(stage))
    +   builder.add_edge("tools", "compress")
    +   builder.add_edge("compress", "agent")

It answers FinanceBench questions with both graphs and prints what the predictor read
(tokens), the compression decisions and both answers.

Models, all offline: the stage is the library default (SmolLM2-135M, then Gemma-3-270M,
CXMI scored by Gemma-3-270M, then the full page). The predictor is the embedded
SmolLM2-135M-Instruct; its one tool call (``search_filings``) is **scripted**, because a
135M model cannot call tools reliably. Put your own tool-calling model in its place.

Runtime, measured on 2 CPU cores shared with other model jobs: 1 min 59 s with
``IB_EXAMPLES_QUICK=1``
(1 question, the predictor answering in at most 32 tokens); the default 3 questions take about
three times that. Idle cores are faster.

    python examples/wrap_langgraph_agent.py [--questions 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool, tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from ib_middleware.lab.data import load_financebench
from ib_middleware.lab.demo import FilingPages
from ib_middleware.langgraph import DECISIONS_KEY, CompressionState, compression_node
from ib_middleware.stage import CompressionStage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _support import (
    ScriptedToolCaller,
    example_models,
    predictor_input_tokens,
    quick,
    timed,
)

CASES = load_financebench()
FIRST_HELP = (
    "index of the first question (one per company, as in `make demo`); 0 is Activision "
    "Blizzard, whose page the tiny compressors do not summarise well enough: a fallback"
)


@tool
def search_filings(company: str) -> str:
    """Return the 10-K pages on file for a company (whole pages: long)."""
    case = next((c for c in CASES if c.company.lower() == company.lower()), None)
    return "No filings found." if case is None else case.context


def build_agent(
    model: BaseChatModel, tools: list[BaseTool], stage: CompressionStage | None = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Your agent. With a ``stage``, tool outputs are compressed before the agent reads them."""

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.bind_tools(tools).invoke(state["messages"])]}

    builder: StateGraph[Any, Any, Any, Any] = StateGraph(
        MessagesState if stage is None else CompressionState
    )
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)  # -> "tools" or END
    if stage is None:
        builder.add_edge("tools", "agent")
    else:
        builder.add_node("compress", compression_node(stage))
        builder.add_edge("tools", "compress")
        builder.add_edge("compress", "agent")
    return builder.compile()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=quick(3, 1))
    parser.add_argument("--first", type=int, default=1, help=FIRST_HELP)
    args = parser.parse_args(argv)

    stage, smollm2 = example_models()
    counter = stage.token_counter
    totals = {"before": 0, "after": 0}
    questions = FilingPages(CASES, counter).questions(args.first + args.questions)
    for case in questions[args.first :]:
        print(f"\n{case.company}: {case.query}\n  gold answer: {case.answer}")
        model = ScriptedToolCaller(
            generator=smollm2,
            tool_call={"name": "search_filings", "args": {"company": case.company}},
        )
        for label, graph in (
            ("before", build_agent(model, [search_filings])),
            ("after", build_agent(model, [search_filings], stage)),
        ):
            with timed(f"  {label}: run"):
                state = graph.invoke({"messages": [("user", case.query)]})
            read = predictor_input_tokens(state["messages"][:-1], counter)
            totals[label] += read
            print(f"  {label}: the predictor read {read} tokens; it answered (SmolLM2-135M):")
            print(f"    {' '.join(str(state['messages'][-1].content).split())[:300]}")
            for record in state.get(DECISIONS_KEY, []):
                bits = record["bits_per_token"]
                print(
                    f"    decision: {record['decision']} (rung {record['rung']}), "
                    f"{record['input_tokens']} -> {record['output_tokens']} tokens, "
                    f"{'-' if bits is None else f'{bits:.3f}'} bits/token"
                )
    saved = 1 - totals["after"] / max(1, totals["before"])
    print(
        f"\npredictor input: {totals['before']} tokens before, {totals['after']} after "
        f"({saved:.0%} saved; the tool call is scripted, the answers are SmolLM2-135M's)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

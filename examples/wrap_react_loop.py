"""Wrap a ReAct loop of the common template's shape with each drop-in; see what the model reads.

The graph has the shape of LangGraph's public ReAct agent template: a dataclass ``State``, a
``Context`` dataclass read through ``runtime.context`` (``context_schema``), an async model
node that builds its chat model on every step from the context, and a ``ToolNode`` looping
back to it. It is wrapped, in turn, with each drop-in:

- ``none``: the loop as it is (the baseline);
- ``compression_node``: a node between the tools and the model (``tools -> compress -> agent``);
- ``add_compression``: ``add_compression(builder, stage)`` before ``compile``;
- ``with_compression``: ``with_compression(graph, stage)`` on the compiled graph;
- ``CompressingChatModel``: the model node wraps the model it builds (each step; the stage's
  shared cache keeps it from compressing a tool output twice).

For every model call it prints how many tokens of tool output the model received (a callback
reads what each call was given), and every decision as it is made (``stream_mode="custom"``).

Models: by default the stage is the library default on the embedded models (SmolLM2-135M, then
Gemma-3-270M, CXMI scored by Gemma-3-270M, then the full page; compressions capped at 96
tokens as in ``make demo``) and the model is the embedded SmolLM2-135M-Instruct, whose one tool
call (``search_filings``) is **scripted**: a 135M model cannot call tools reliably. With
``--scripted`` nothing is loaded: the compressor is the extractive one (no model) and the
scorer and the model's answers are scripted, so the run shows the plumbing in a second.

Runtime, on 2 CPU cores shared with other model jobs: ``--scripted`` 17 s with
``IB_EXAMPLES_QUICK=1`` (one question), of which 14 s are imports and the five runs a fraction
of a second. With the embedded models the page is compressed once per drop-in (four
compressions a question) and SmolLM2 answers five times: expect several times the 1 min 59 s
of ``wrap_langgraph_agent.py``'s quick run (an estimate: this mode was not timed).

    python examples/wrap_react_loop.py [--scripted] [--questions 1]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage, BaseMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.runtime import Runtime

from ib_middleware import CompressionStage, CXMIEstimator, ExtractiveCompressor, Rung
from ib_middleware.engines import TokenCounter
from ib_middleware.lab.data import load_financebench
from ib_middleware.lab.demo import FilingPages
from ib_middleware.langgraph import (
    DECISIONS_KEY,
    CompressingChatModel,
    Decisions,
    add_compression,
    compression_node,
    message_text,
    with_compression,
)
from ib_middleware.testing import FakeCompressor, FakeScorer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _support import ScriptedToolCaller, example_models, quick

CASES = load_financebench()
DROP_INS = ("none", "compression_node", "add_compression", "with_compression")
DROP_INS += ("CompressingChatModel",)
GENERATORS: dict[str, Any] = {}  # model name -> engine: what init_chat_model would look up


@tool
def search_filings(company: str) -> str:
    """Return the 10-K pages on file for a company (whole pages: long)."""
    case = next((c for c in CASES if c.company.lower() == company.lower()), None)
    return "No filings found." if case is None else case.context


TOOLS = [search_filings]


# --- the template: state, context, a model node that builds its model, a tool loop ----------


@dataclass
class State:
    """The conversation, and the decisions (declared with their reducer)."""

    messages: Annotated[Sequence[AnyMessage], add_messages] = field(default_factory=list)
    ib_decisions: Decisions = field(default_factory=list)


@dataclass
class Context:
    """What the run is configured with; the model node reads it on every step."""

    model: str = "smollm2"
    system_prompt: str = "You answer questions about company filings from the pages you find."
    company: str = ""  # what the scripted tool call searches for (a real model reads the question)


def make_model(context: Context) -> BaseChatModel:
    """The chat model named in the context, built anew (as ``init_chat_model`` would be)."""
    call = {"name": "search_filings", "args": {"company": context.company}}
    return ScriptedToolCaller(generator=GENERATORS[context.model], tool_call=call)


def build_graph(drop_in: str, stage: CompressionStage) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The ReAct loop, with ``drop_in`` added the way its documentation says."""

    async def call_model(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        model: BaseChatModel = make_model(runtime.context)
        if drop_in == "CompressingChatModel":
            model = CompressingChatModel(model, stage)
        system = SystemMessage(runtime.context.system_prompt)
        reply = await model.bind_tools(TOOLS).ainvoke([system, *state.messages])
        return {"messages": [reply]}

    builder: StateGraph[Any, Any, Any, Any] = StateGraph(State, context_schema=Context)
    builder.add_node("agent", call_model)
    builder.add_node("tools", ToolNode(TOOLS))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)  # -> "tools" or END
    if drop_in == "compression_node":
        builder.add_node("compress", compression_node(stage))
        builder.add_edge("tools", "compress")
        builder.add_edge("compress", "agent")
    else:
        builder.add_edge("tools", "agent")
    if drop_in == "add_compression":
        add_compression(builder, stage, after="tools")
    graph = builder.compile()
    return with_compression(graph, stage) if drop_in == "with_compression" else graph


# --- what each model call received ------------------------------------------------------------


class ToolTokens(BaseCallbackHandler):
    """Counts the tokens of tool output each model call receives (the compressor's are skipped)."""

    def __init__(self, counter: TokenCounter) -> None:
        """Count with ``counter``."""
        self.counter = counter
        self.calls: list[int] = []

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record one model call."""
        if "nostream" in (tags or []):  # the compressor's own model calls
            return
        tools = [m for m in messages[0] if isinstance(m, ToolMessage)]
        self.calls.append(sum(self.counter.count_tokens(message_text(m) or "") for m in tools))


def describe(record: dict[str, Any]) -> str:
    bits = record["bits_per_token"]
    return (
        f"{record['decision']} (rung {record['rung']}), {record['input_tokens']} -> "
        f"{record['output_tokens']} tokens, {'-' if bits is None else f'{bits:.3f}'} bits/token"
    )


async def run_one(drop_in: str, stage: CompressionStage, question: str, context: Context) -> int:
    """Run the loop once; print each model call's tool tokens and each decision as it comes."""
    meter = ToolTokens(stage.token_counter)
    graph = build_graph(drop_in, stage)
    state: dict[str, Any] = {}
    shown = 0
    async for mode, chunk in graph.astream(
        {"messages": [("user", question)]},
        {"callbacks": [meter]},
        context=context,
        stream_mode=["custom", "values"],
    ):
        if mode == "custom":  # a decision, as it is made
            for record in chunk[DECISIONS_KEY]:
                print(f"    decision on {record['source']}: {describe(record)}")
                print(f"      why: {record['reason'][:160]}")
            continue
        state = chunk  # the state after a step: report the model calls that step made
        for tokens in meter.calls[shown:]:
            shown += 1
            print(f"    model call {shown} received {tokens} tokens of tool output")
    answer = " ".join(str(state["messages"][-1].content).split())[:200]
    print(f"    answer: {answer}")
    return meter.calls[-1] if meter.calls else 0


def scripted() -> CompressionStage:
    """No models: the extractive compressor, a scorer that finds every compression informative."""
    GENERATORS["scripted"] = FakeCompressor(default="(scripted answer) See the compressed page.")
    scorer = FakeScorer(lambda prompt, z: -1.0 if "Document:" in prompt else -6.0)
    rung = Rung(ExtractiveCompressor(budget_tokens=96), threshold_bits_per_token=0.1)
    return CompressionStage([rung], estimator=CXMIEstimator(scorer), token_budget=256)


async def main_async(args: argparse.Namespace) -> int:
    if args.scripted:
        stage, model = scripted(), "scripted"
    else:
        stage, GENERATORS["smollm2"] = example_models()
        model = "smollm2"
    questions = FilingPages(CASES, stage.token_counter).questions(args.first + args.questions)
    totals: dict[str, int] = dict.fromkeys(DROP_INS, 0)
    for case in questions[args.first :]:
        print(f"\n{case.company}: {case.query}")
        context = Context(model=model, company=case.company)
        for drop_in in DROP_INS:
            print(f"  [{drop_in}]")
            totals[drop_in] += await run_one(drop_in, stage, case.query, context)
    print("\ntokens of tool output the model read on its last call, over all questions:")
    for drop_in, tokens in totals.items():
        print(f"  {drop_in:<21} {tokens}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scripted", action="store_true", help="no models: show the plumbing")
    parser.add_argument("--questions", type=int, default=quick(2, 1))
    parser.add_argument("--first", type=int, default=1, help="index of the first question")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

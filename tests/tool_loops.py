"""A ReAct loop for each drop-in, with a search tool returning each shape of tool output.

The search results are the langchain-ai/react-agent template's (Tavily's) shape: a dict with a
``results`` list of ``{url, title, content, score}``. The tool returns them as a dict (ToolNode
sends JSON text), as content blocks, as text with the dict as its ``artifact``, or as plain
text. The stage is scripted (a fake scorer behind the relevance gate, BM25 selection), so a
run is fast and its decisions are known: the long relevant result is compressed, the short one
kept, the distractor pruned.
"""

from __future__ import annotations

import json
import re
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool, tool
from langgraph.graph import START, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from ib_middleware.judging.relevance import RelevantInformationEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.langgraph import (
    CompressingChatModel,
    CompressionState,
    IBMiddleware,
    add_compression,
    compression_node,
    with_compression,
)
from ib_middleware.selection import SegmentCompressor
from ib_middleware.stage import CompressionStage
from ib_middleware.testing import tool_call

QUESTION = "What was 3M's capital expenditure in 2018?"
FILLER = "Other text here. " * 30
RESULTS: dict[str, Any] = {
    "query": "3M capex 2018",
    "results": [
        {
            "url": "https://a.example/3m-10k",
            "title": "3M 2018 annual report",
            "content": "3M capital expenditure was $1,577 million in 2018. " + FILLER,
            "score": 0.91,
        },
        {
            "url": "https://b.example/3m-note",
            "title": "3M capex note",
            "content": "3M capital expenditure in 2018 was $1,577 million.",
            "score": 0.84,
        },
        {
            "url": "https://c.example/boeing",
            "title": "Boeing annual report",
            "content": "Boeing capital expenditure was $1,722 million in 2018. " + FILLER,
            "score": 0.52,
        },
    ],
}
PAGE = "\n\n".join(f"{r['title']}\n{r['content']}" for r in RESULTS["results"])
SHAPES = ["json", "blocks", "artifact", "text"]
DROP_INS = [
    "compression_node",
    "add_compression",
    "with_compression",
    "CompressingChatModel",
    "IBMiddleware-tool",
    "IBMiddleware-call",
]
IN_STATE = {"compression_node", "add_compression", "with_compression", "IBMiddleware-tool"}


def score(prompt: str, continuation: str) -> float:
    """The query is likely after a passage naming 3M; the relevant part after its figure."""
    if continuation.startswith(QUESTION):
        return -1.0 if "3M" in prompt else -8.0
    return -1.0 if "1,577" in prompt else -6.0


def make_stage() -> CompressionStage:
    from ib_middleware.testing import FakeScorer

    return CompressionStage(
        [Rung(SegmentCompressor(budget_tokens=40), threshold_bits_per_token=0.5)],
        estimator=RelevantInformationEstimator(FakeScorer(score)),
        token_budget=60,
        prune_below=0.5,
    )


def search_tool(shape: str) -> BaseTool:
    """The search tool, returning its results in ``shape``."""
    if shape == "artifact":

        @tool(response_format="content_and_artifact")
        def search(query: str) -> tuple[str, dict[str, Any]]:
            """Search the web."""
            return PAGE, RESULTS

        return search

    @tool
    def search(query: str) -> Any:
        """Search the web."""
        if shape == "json":
            return RESULTS
        if shape == "blocks":
            return [{"type": "text", "text": r["content"]} for r in RESULTS["results"]]
        return PAGE

    return search


EXPAND_CALL = re.compile(r"expand_context\('(ib-[0-9a-f]+)'\)|\"_ib_original\": \"(ib-[0-9a-f]+)\"")


def shown_id(messages: list[BaseMessage]) -> str | None:
    """The decision id the model was shown in its tool outputs, if any."""
    for message in messages:
        if isinstance(message, ToolMessage):
            text = (
                message.content if isinstance(message.content, str) else json.dumps(message.content)
            )
            found = EXPAND_CALL.search(text)
            if found:
                return found.group(1) or found.group(2)
    return None


class Reader(BaseChatModel):
    """Searches, optionally asks for the original by the id it was shown, then answers.

    What each call was shown goes to ``seen`` (the caller's list).
    """

    seen: Any
    expand: bool = False

    @property
    def _llm_type(self) -> str:
        return "reader"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Reader:
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append(list(messages))
        tools = [m for m in messages if isinstance(m, ToolMessage)]
        if not tools:
            reply: AIMessage = tool_call("search", query="3M capex 2018")
        elif self.expand and len(tools) == 1 and (key := shown_id(messages)):
            reply = tool_call("expand_context", id=key)
        else:
            reply = AIMessage("It was $1,577 million.")
        return ChatResult(generations=[ChatGeneration(message=reply)])


def build(
    drop_in: str,
    stage: CompressionStage,
    tools: list[BaseTool],
    seen: list[Any],
    *,
    expand: bool = False,
    **kept: Any,
) -> Any:
    """The agent with ``drop_in``, as its docs say to add it."""
    if drop_in.startswith("IBMiddleware"):
        mode = drop_in.partition("-")[2]
        middleware = IBMiddleware(
            stage, mode=mode, expand_tool=kept.pop("expandable", False), **kept
        )
        return create_agent(Reader(seen=seen, expand=expand), tools=tools, middleware=[middleware])
    model: Any = Reader(seen=seen, expand=expand)
    if drop_in == "CompressingChatModel":
        model = CompressingChatModel(model, stage, cache_size=0, **kept)

    def agent(state: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    async def aagent(state: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    from langchain_core.runnables import RunnableLambda

    builder = StateGraph(CompressionState)
    builder.add_node("agent", RunnableLambda(agent, afunc=aagent))
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    if drop_in == "compression_node":
        builder.add_node("compress", compression_node(stage, **kept))
        builder.add_edge("tools", "compress")
        builder.add_edge("compress", "agent")
    else:
        builder.add_edge("tools", "agent")
    if drop_in == "add_compression":
        add_compression(builder, stage, **kept)
    graph = builder.compile()
    return with_compression(graph, stage, **kept) if drop_in == "with_compression" else graph


async def run(graph: Any, mode: str) -> dict[str, Any]:
    value = {"messages": [("user", QUESTION)]}
    return graph.invoke(value) if mode == "sync" else await graph.ainvoke(value)


def tool_messages(messages: list[BaseMessage]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]

"""The drop-ins inside a ReAct loop of the common template's shape, sync and async.

The graph: a dataclass ``State``, a ``context_schema`` read through ``runtime.context``, a
model node that builds its model on every step, and a ``ToolNode`` looping back to it. Each
drop-in (``compression_node``, ``add_compression``, ``with_compression``,
``CompressingChatModel`` built inside the node) must show the model a compressed tool output
on its next call, with ``invoke`` and with each stream mode, and make its decisions visible.
"""

from __future__ import annotations

import logging
import operator
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.func import entrypoint
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.pregel.remote import RemoteGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel

from ib_middleware.compressors import AbstractiveCompressor
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.langgraph import (
    DECISIONS_KEY,
    DEFAULT_CACHE_SIZE,
    MARKER_KEY,
    CompressingChatModel,
    CompressionCache,
    Decisions,
    add_compression,
    compression_node,
    with_compression,
)
from ib_middleware.stage import CompressionStage, ContextItem
from ib_middleware.testing import FakeCompressor, FakeScorer, tool_call

MODES = ["sync", "async"]
RUNS = ["invoke", "values", "updates", "messages", "custom", "debug"]
DROP_INS = ["compression_node", "add_compression", "with_compression", "CompressingChatModel"]
QUESTION = "What was 3M's capital expenditure in 2018?"
PAGE = "Capital expenditure was $1,577 million in 2018. " + "Unrelated filler text. " * 60
SUMMARY = "Capex was $1,577 million in 2018."


def make_stage(generator: FakeCompressor | None = None) -> CompressionStage:
    def score(prompt: str, z: str) -> float:
        return -1.0 if "Document:" in prompt and z.startswith("Capex") else -5.0

    rung = Rung(
        AbstractiveCompressor(generator or FakeCompressor(default=SUMMARY), window_tokens=5000),
        threshold_bits_per_token=0.5,
    )
    return CompressionStage([rung], estimator=CXMIEstimator(FakeScorer(score)), token_budget=50)


@tool
def search_filings(company: str) -> str:
    """The 10-K pages on file for a company."""
    return PAGE


class LoopModel(BaseChatModel):
    """Calls ``search_filings`` until it has ``rounds`` tool results, then answers.

    A model built anew on every step cannot keep a script's position, so it decides from
    what it is shown; what each call was shown goes to the shared ``seen`` list.
    """

    seen: Any  # the caller's list (a typed list field would be copied on validation)
    rounds: int = 1

    @property
    def _llm_type(self) -> str:
        return "loop-model"

    def bind_tools(self, tools: Any, **kwargs: Any) -> LoopModel:
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append(list(messages))
        done = sum(isinstance(m, ToolMessage) for m in messages)
        if done < self.rounds:
            reply: AIMessage = tool_call("search_filings", company=f"3M-{done}")
        else:
            reply = AIMessage("It was $1,577 million.")
        return ChatResult(generations=[ChatGeneration(message=reply)])


@dataclass
class State:
    messages: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)
    ib_decisions: Decisions = field(default_factory=list)


@dataclass
class Context:
    model: str = "loop-model"
    seen: list[list[BaseMessage]] = field(default_factory=list)
    rounds: int = 1


def messages_of(state: Any) -> list[AnyMessage]:
    return state["messages"] if isinstance(state, dict) else state.messages


def react_loop(
    drop_in: str, stage: CompressionStage, mode: str, state: Any = State, checkpointer: Any = None
) -> Any:
    """The template's graph; the drop-in is added the way its docs say."""

    def build_model(context: Context) -> Any:  # the template builds its model on every step
        model: Any = LoopModel(seen=context.seen, rounds=context.rounds)
        if drop_in == "CompressingChatModel":
            model = CompressingChatModel(model, stage)
        return model.bind_tools([search_filings])

    def call_model(state: Any, runtime: Runtime[Context]) -> dict[str, Any]:
        return {"messages": [build_model(runtime.context).invoke(messages_of(state))]}

    async def acall_model(state: Any, runtime: Runtime[Context]) -> dict[str, Any]:
        return {"messages": [await build_model(runtime.context).ainvoke(messages_of(state))]}

    builder = StateGraph(state, context_schema=Context)
    builder.add_node("agent", call_model if mode == "sync" else acall_model)
    builder.add_node("tools", ToolNode([search_filings]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    if drop_in == "compression_node":
        builder.add_node("compress", compression_node(stage))
        builder.add_edge("tools", "compress")
        builder.add_edge("compress", "agent")
    else:
        builder.add_edge("tools", "agent")
    if drop_in == "add_compression":
        add_compression(builder, stage, after="tools")
    graph = builder.compile(checkpointer=checkpointer)
    return with_compression(graph, stage) if drop_in == "with_compression" else graph


async def run(graph: Any, run_mode: str, mode: str, context: Context) -> list[Any]:
    value = {"messages": [("user", QUESTION)]}
    if run_mode == "invoke":
        if mode == "sync":
            return [graph.invoke(value, context=context)]
        return [await graph.ainvoke(value, context=context)]
    if mode == "sync":
        return list(graph.stream(value, stream_mode=run_mode, context=context))
    return [item async for item in graph.astream(value, stream_mode=run_mode, context=context)]


def tool_texts(messages: list[BaseMessage]) -> list[str]:
    return [str(m.content) for m in messages if isinstance(m, ToolMessage)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("run_mode", RUNS)
@pytest.mark.parametrize("drop_in", DROP_INS)
async def test_the_model_reads_the_compressed_tool_output(drop_in, run_mode, mode):
    generator = FakeCompressor(default=SUMMARY)
    context = Context()
    items = await run(react_loop(drop_in, make_stage(generator), mode), run_mode, mode, context)
    first, second = context.seen
    assert tool_texts(first) == []
    assert tool_texts(second) == [SUMMARY], "the model's next call reads the compression"
    assert len(generator.history) == 1
    if run_mode in ("invoke", "values"):
        final = items[-1]
        records = final[DECISIONS_KEY] if isinstance(final, dict) else final.ib_decisions
        in_state = drop_in != "CompressingChatModel"  # a chat model has no state to write to
        assert [r["decision"] for r in records] == (["accepted"] if in_state else [])
    if run_mode == "updates":
        nodes = {name for update in items for name in update}
        expected = {"agent", "tools", "compress"} if drop_in == "compression_node" else None
        assert nodes == (expected or {"agent", "tools"}), "node names are the graph's own"
    if run_mode == "messages":
        check_messages_stream(items, drop_in)
    if run_mode == "custom":
        [event] = items
        [record] = event[DECISIONS_KEY]
        assert (record["decision"], record["source"]) == ("accepted", "tool:search_filings")


def check_messages_stream(items: list[Any], drop_in: str) -> None:
    """The compressed tool message streams with its decision; node names are kept."""
    compressed = [
        (message, metadata)
        for message, metadata in items
        if isinstance(message, ToolMessage) and MARKER_KEY in message.response_metadata
    ]
    node = {"compression_node": "compress", "CompressingChatModel": "agent"}.get(drop_in, "tools")
    assert [(m.content, meta["langgraph_node"]) for m, meta in compressed] == [(SUMMARY, node)]
    assert compressed[0][0].response_metadata[MARKER_KEY]["decision"] == "accepted"
    answers = [meta["langgraph_node"] for m, meta in items if isinstance(m, AIMessage)]
    assert answers == ["agent", "agent"]
    raw = [m for m, _ in items if isinstance(m, ToolMessage) and m.content == PAGE]
    if drop_in in ("add_compression", "with_compression"):
        assert raw == [], "the tool node streams only the compressed message"


# --- CompressingChatModel built on every step: one compression per tool output -----------


@pytest.mark.parametrize("mode", MODES)
async def test_a_model_built_each_step_compresses_each_output_once(mode):
    generator = FakeCompressor(default=SUMMARY)
    stage = make_stage(generator)
    context = Context(rounds=2)
    await run(react_loop("CompressingChatModel", stage, mode), "invoke", mode, context)
    assert [len(tool_texts(seen)) for seen in context.seen] == [0, 1, 2]
    assert tool_texts(context.seen[-1]) == [SUMMARY, SUMMARY]
    assert len(generator.history) == 2, "two tool outputs, two compressions (not three)"
    assert len(CompressionCache.shared(stage)) == 2


HISTORY = [
    ("user", QUESTION),
    tool_call("search_filings", call_id="c1", company="3M"),
    ToolMessage(PAGE, tool_call_id="c1", id="t1"),
]


async def ask(model: CompressingChatModel, mode: str) -> AIMessage:
    return model.invoke(HISTORY) if mode == "sync" else await model.ainvoke(HISTORY)


@pytest.mark.parametrize("mode", MODES)
async def test_the_shared_cache_can_be_turned_off(mode):
    generator = FakeCompressor(default=SUMMARY)
    stage = make_stage(generator)
    for _ in range(2):
        await ask(CompressingChatModel(LoopModel(seen=[]), stage, shared_cache=False), mode)
    assert len(generator.history) == 2, "each wrapper with a cache of its own"
    for _ in range(2):
        await ask(CompressingChatModel(LoopModel(seen=[]), stage, cache_size=0), mode)
    assert len(generator.history) == 4, "no cache at all"


@pytest.mark.parametrize("mode", MODES)
async def test_the_cache_is_keyed_by_the_stage_and_its_configuration(mode):
    generator = FakeCompressor(default=SUMMARY)
    stage = make_stage(generator)
    await ask(CompressingChatModel(LoopModel(seen=[]), stage), mode)
    await ask(CompressingChatModel(LoopModel(seen=[]), stage), mode)
    assert len(generator.history) == 1
    stage.token_budget = 40  # reconfigured: earlier answers no longer apply
    await ask(CompressingChatModel(LoopModel(seen=[]), stage), mode)
    assert len(generator.history) == 2
    stage.prune_below = 0.01  # a relevance gate changes decisions too
    await ask(CompressingChatModel(LoopModel(seen=[]), stage), mode)
    assert len(generator.history) == 3
    other = make_stage(generator)  # another stage never reuses this one's results
    await ask(CompressingChatModel(LoopModel(seen=[]), other), mode)
    assert len(generator.history) == 4


def test_the_cache_is_bounded():
    stage = make_stage()
    cache = CompressionCache(max_size=2)
    [result] = stage.run(["short"], "q")
    for query in ("a", "b", "c"):
        cache.put(stage, ContextItem("short", "tool:x"), query, result)
    assert len(cache) == 2
    assert cache.get(stage, ContextItem("short", "tool:x"), "a") is None
    assert CompressionCache.shared(stage, 8).max_size == 8
    assert CompressionCache.shared(stage).max_size == DEFAULT_CACHE_SIZE  # grows to the largest
    assert CompressionCache.shared(stage, 8) is CompressionCache.shared(stage)
    with pytest.raises(ValueError, match="max_size"):
        CompressionCache(max_size=-1)


# --- states of every kind ---------------------------------------------------------------


class TypedState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    ib_decisions: Decisions


class PydanticState(BaseModel):
    messages: Annotated[list[AnyMessage], add_messages] = []
    ib_decisions: Decisions = []


@dataclass
class PlainState:
    messages: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("state", [TypedState, State, PydanticState])
@pytest.mark.parametrize("drop_in", ["compression_node", "add_compression", "with_compression"])
async def test_decisions_land_in_every_kind_of_state(drop_in, state, mode):
    [final] = await run(react_loop(drop_in, make_stage(), mode, state), "invoke", mode, Context())
    [record] = final[DECISIONS_KEY]
    assert record["decision"] == "accepted"
    tool = next(m for m in final["messages"] if isinstance(m, ToolMessage))
    assert (record["message_id"], tool.content) == (tool.id, SUMMARY)


@pytest.mark.parametrize("drop_in", ["compression_node", "add_compression", "with_compression"])
def test_a_state_without_the_key_warns_once(drop_in, caplog):
    caplog.set_level(logging.WARNING, logger="ib_middleware.langgraph")
    graph = react_loop(drop_in, make_stage(), "sync", state=PlainState)
    for _ in range(2):
        graph.invoke({"messages": [("user", QUESTION)]}, context=Context(rounds=2))
    warnings = [r.getMessage() for r in caplog.records if "ib_decisions" in r.getMessage()]
    assert len(warnings) == 1
    assert "Decisions" in warnings[0]


@dataclass
class ReplacingState:
    messages: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)
    ib_decisions: list[dict[str, Any]] = field(default_factory=list)  # no reducer


def test_a_key_without_a_reducer_warns(caplog):
    caplog.set_level(logging.WARNING, logger="ib_middleware.langgraph")
    builder = StateGraph(ReplacingState)
    builder.add_node("tools", ToolNode([search_filings]))
    builder.add_edge(START, "tools")
    add_compression(builder, make_stage())
    assert any("no reducer" in record.getMessage() for record in caplog.records)


def test_the_decisions_type_appends():
    assert Decisions.__metadata__ == (operator.add,)


# --- graphs that cannot be altered say what to use instead --------------------------------


def test_with_compression_without_a_tool_node_names_the_alternatives():
    builder = StateGraph(State)
    builder.add_node("agent", lambda state: {})
    builder.add_edge(START, "agent")
    with pytest.raises(ValueError, match="tools=") as raised:
        with_compression(builder.compile(), make_stage())
    assert "CompressingChatModel" in str(raised.value)
    with pytest.raises(ValueError, match="no node"):
        with_compression(builder.compile(), make_stage(), tools=["search"])


def test_with_compression_refuses_a_graph_it_cannot_alter():
    @entrypoint()
    def workflow(question: str) -> str:
        return question

    with pytest.raises(TypeError, match="CompressingChatModel"):
        with_compression(workflow, make_stage())
    remote = RemoteGraph("agent", url="http://127.0.0.1:9")  # never contacted
    with pytest.raises(TypeError, match="not built with StateGraph"):
        with_compression(remote, make_stage())


def test_add_compression_names_the_missing_node():
    builder = StateGraph(State)
    builder.add_node("agent", lambda state: {})
    with pytest.raises(ValueError, match="its nodes: \\['agent'\\]"):
        add_compression(builder, make_stage(), after="tools")


@pytest.mark.parametrize("mode", MODES)
async def test_with_compression_reaches_tool_nodes_in_subgraphs(mode):
    inner = react_loop("none", make_stage(), mode)
    outer = StateGraph(State, context_schema=Context)
    outer.add_node("research", inner)
    outer.add_edge(START, "research")
    context = Context()
    graph = with_compression(outer.compile(), make_stage())
    await run(graph, "invoke", mode, context)
    assert tool_texts(context.seen[-1]) == [SUMMARY]


@pytest.mark.parametrize("mode", MODES)
async def test_wrapping_twice_compresses_once(mode):
    generator = FakeCompressor(default=SUMMARY)
    stage = make_stage(generator)
    graph = with_compression(react_loop("add_compression", stage, mode), stage)
    graph = with_compression(graph, stage)
    context = Context()
    await run(graph, "invoke", mode, context)
    assert tool_texts(context.seen[-1]) == [SUMMARY]
    assert len(generator.history) == 1

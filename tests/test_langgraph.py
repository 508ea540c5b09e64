"""The LangGraph entry points with fakes: the node, the graph wrapper, the chat-model wrapper.

Every test runs sync and async. One test per bug the incumbents have: a tool message orphaned
by compression, history replaced by an error text when the compressor fails, the latest
human message compressed away.
"""

from __future__ import annotations

import asyncio
import json
import operator
from typing import Annotated, Any, TypedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import (
    FakeMessagesListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.runnables import RunnableLambda
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from pydantic import Field

from ib_middleware.compressors import AbstractiveCompressor
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.langgraph import (
    COMPRESSOR_TAGS,
    DECISIONS_KEY,
    MARKER_KEY,
    STAGE_RUN_NAME,
    ChatModelGenerator,
    CompressingChatModel,
    CompressionState,
    Decisions,
    MessageCompressor,
    RunRecorder,
    compression_node,
    compression_query,
    latest_human_text,
    message_text,
    with_compression,
)
from ib_middleware.stage import CompressionStage
from ib_middleware.testing import FakeCompressor, FakeScorer

MODES = ["sync", "async"]
PAGE = "Capital expenditure was $1,577 million in 2018. " + "Unrelated filler text. " * 60
QUESTION = "What was 3M's capital expenditure in 2018?"
SUMMARY = "Capex was $1,577 million in 2018."  # every figure is in PAGE
MARK = "zebrafinchquartz"  # a compressor output no orchestrator would ever write


def grounded_scorer() -> FakeScorer:
    """Compressions starting with Capex are far likelier with the document than without."""

    def score(prompt: str, z: str) -> float:
        return -1.0 if "Document:" in prompt and z.startswith("Capex") else -5.0

    return FakeScorer(score)


def make_stage(generator: Any = None, **options: Any) -> CompressionStage:
    generator = generator or FakeCompressor(default=SUMMARY)
    rung = Rung(AbstractiveCompressor(generator, window_tokens=5000), threshold_bits_per_token=0.5)
    return CompressionStage(
        [rung], estimator=CXMIEstimator(grounded_scorer()), token_budget=50, **options
    )


def history(*, tool_text: str = PAGE) -> list[AnyMessage]:
    call = ToolCall(name="search", args={"company": "3M", "year": 2018}, id="call-1")
    return [
        SystemMessage("You are a financial analyst.", id="s1"),
        HumanMessage(QUESTION, id="h1"),
        AIMessage("", tool_calls=[call], id="a1"),
        ToolMessage(tool_text, tool_call_id="call-1", name="search", id="t1"),
    ]


async def call(runnable: Any, value: Any, mode: str, **kwargs: Any) -> Any:
    if mode == "sync":
        return runnable.invoke(value, **kwargs)
    return await runnable.ainvoke(value, **kwargs)


async def compress(compressor: MessageCompressor, messages: list[Any], mode: str) -> Any:
    if mode == "sync":
        return compressor.compress(messages)
    return await compressor.acompress(messages)


def assert_paired(messages: list[Any]) -> None:
    """Every tool call has its tool message after it, and every tool message its call."""
    position = {m.tool_call_id: i for i, m in enumerate(messages) if isinstance(m, ToolMessage)}
    calls = {}
    for index, message in enumerate(messages):
        if isinstance(message, AIMessage):
            for tool_call in message.tool_calls:
                calls[tool_call["id"]] = index
                assert tool_call["id"] in position, f"tool call {tool_call['id']} lost its answer"
                assert position[tool_call["id"]] > index
    assert set(position) <= set(calls), "a tool message lost its tool call"


# --- helpers ---------------------------------------------------------------------------------


def test_message_text_and_latest_human():
    assert message_text(ToolMessage("abc", tool_call_id="x")) == "abc"
    assert message_text(HumanMessage([{"type": "image", "url": "u"}])) is None
    messages = [HumanMessage("old"), AIMessage("a"), HumanMessage("new"), AIMessage("b")]
    assert latest_human_text(messages) == "new"
    assert latest_human_text([AIMessage("no human")]) == ""


def test_compression_query_adds_the_tool_call():
    query = compression_query(QUESTION, ToolCall(name="search", args={"q": "capex"}, id="c"))
    assert query.startswith(QUESTION)
    assert 'search({"q": "capex"})' in query
    assert compression_query(QUESTION) == QUESTION
    assert compression_query("", ToolCall(name="t", args={}, id="c")) == "tool call: t({})"


def test_message_compressor_rejects_bad_options():
    with pytest.raises(ValueError, match="kinds"):
        MessageCompressor(make_stage(), kinds=("system",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cache_size"):
        MessageCompressor(make_stage(), cache_size=-1)


# --- MessageCompressor: the shared selection rules ----------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_tool_message_compressed_in_place(mode):
    generator = FakeCompressor(default=SUMMARY)
    out = await compress(MessageCompressor(make_stage(generator)), history(), mode)
    assert [m.id for m in out.messages] == ["s1", "h1", "a1", "t1"]
    tool = out.messages[3]
    assert isinstance(tool, ToolMessage)
    assert (tool.content, tool.tool_call_id, tool.name) == (SUMMARY, "call-1", "search")
    assert tool.response_metadata[MARKER_KEY]["decision"] == "accepted"
    assert out.replaced == [tool]
    [decision] = out.decisions
    assert decision["decision"] == "accepted"
    assert decision["tool_call_id"] == "call-1"
    assert decision["message_id"] == "t1"
    assert "text" not in decision
    json.dumps(decision)  # JSON-ready
    # The query: the latest human message plus the tool call's arguments.
    prompt = generator.history[0][-1].content
    assert QUESTION in prompt
    assert '"company": "3M"' in prompt


@pytest.mark.parametrize("mode", MODES)
async def test_untouched_messages(mode):
    long = "Long text. " * 100
    messages = [
        SystemMessage(long, id="s"),
        HumanMessage(long, id="h-old"),
        AIMessage(long, id="a"),
        ToolMessage("short", tool_call_id="c1", id="t-short"),
        ToolMessage([{"type": "image", "url": "x"}], tool_call_id="c2", id="t-image"),
        ToolMessage(long, tool_call_id="c3", id="t-done", response_metadata={MARKER_KEY: {"x": 1}}),
        HumanMessage(long, id="h-latest"),
    ]
    generator = FakeCompressor(default=SUMMARY)
    compressor = MessageCompressor(make_stage(generator), kinds=("tool",))
    out = await compress(compressor, messages, mode)
    assert out.messages == messages
    assert out.replaced == []
    assert generator.history == []


@pytest.mark.parametrize("mode", MODES)
async def test_older_human_and_ai_text_compressed_when_asked(mode):
    long = "Capital expenditure was $1,577 million in 2018. " + "Filler. " * 80
    call_ = ToolCall(name="search", args={}, id="c1")
    messages = [
        HumanMessage(long, id="h-old"),
        AIMessage(long, tool_calls=[call_], id="a"),
        ToolMessage("ok", tool_call_id="c1", id="t"),
        HumanMessage(QUESTION, id="h-new"),
    ]
    compressor = MessageCompressor(make_stage(), kinds=("human", "ai"))
    out = await compress(compressor, messages, mode)
    assert [m.content for m in out.messages[:2]] == [SUMMARY, SUMMARY]
    assert out.messages[1].tool_calls == messages[1].tool_calls
    assert out.messages[3] == messages[3]
    assert_paired(out.messages)


@pytest.mark.parametrize("mode", MODES)
async def test_cache_skips_repeated_work_and_records_once(mode):
    generator = FakeCompressor(default=SUMMARY)
    compressor = MessageCompressor(make_stage(generator), cache_size=4)
    first = await compress(compressor, history(), mode)
    second = await compress(compressor, history(), mode)
    assert len(generator.history) == 1
    assert second.messages[3].content == SUMMARY
    assert len(first.decisions) == 1
    assert second.decisions == []


# --- incumbent bugs --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_bug_compressor_failure_forwards_the_original(mode):
    generator = FakeCompressor()
    generator.enqueue(RuntimeError("compressor crashed"))
    out = await compress(MessageCompressor(make_stage(generator)), history(), mode)
    tool = out.messages[3]
    assert tool.content == PAGE, "history must not be replaced by an error text"
    assert tool.tool_call_id == "call-1"
    [decision] = out.decisions
    assert decision["decision"] == "fallback"
    assert decision["attempts"][0]["error"] == "RuntimeError: compressor crashed"


class BrokenCounter:
    def __init__(self) -> None:
        self.calls = 0

    def count_tokens(self, text: str) -> int:
        self.calls += 1
        if self.calls > 1:  # selection counts once, then the stage itself fails
            msg = "tokenizer died"
            raise RuntimeError(msg)
        return 10_000


@pytest.mark.parametrize("mode", MODES)
async def test_failure_outside_the_ladder_falls_back_with_the_error(mode):
    stage = make_stage(token_counter=BrokenCounter())
    out = await compress(MessageCompressor(stage), history(), mode)
    assert out.messages[3].content == PAGE
    [decision] = out.decisions
    assert decision["decision"] == "fallback"
    assert "RuntimeError: tokenizer died" in decision["reason"]


@pytest.mark.parametrize("mode", MODES)
async def test_failure_raises_when_the_stage_says_so(mode):
    stage = make_stage(token_counter=BrokenCounter(), on_failure="raise")
    with pytest.raises(RuntimeError, match="tokenizer died"):
        await compress(MessageCompressor(stage), history(), mode)


@pytest.mark.parametrize("mode", MODES)
async def test_bug_latest_human_message_kept(mode):
    long_question = QUESTION + " Context: " + "Pasted filing text. " * 100
    messages = [*history(), HumanMessage(long_question, id="h2")]
    compressor = MessageCompressor(make_stage(), kinds=("tool", "human"))
    out = await compress(compressor, messages, mode)
    assert out.messages[-1] == messages[-1]
    assert out.messages[0] == messages[0]  # the system message too
    assert out.messages[3].content == SUMMARY


@st.composite
def histories(draw: Any) -> list[AnyMessage]:
    messages: list[AnyMessage] = [SystemMessage("sys", id="sys")]
    counter = 0
    for turn in range(draw(st.integers(1, 3))):
        messages.append(HumanMessage(f"question {turn} " * draw(st.integers(1, 80)), id=f"h{turn}"))
        for step in range(draw(st.integers(0, 2))):
            calls = []
            for _ in range(draw(st.integers(1, 3))):
                counter += 1
                calls.append(ToolCall(name="search", args={"n": counter}, id=f"c{counter}"))
            messages.append(
                AIMessage(
                    "thinking " * draw(st.integers(0, 80)), tool_calls=calls, id=f"a{turn}{step}"
                )
            )
            for tool_call in calls:
                size = draw(st.sampled_from([1, 5, 200]))
                text = "Capital expenditure was $1,577 million. " * size
                messages.append(
                    ToolMessage(text, tool_call_id=tool_call["id"], id=f"t{tool_call['id']}")
                )
        messages.append(AIMessage("answer " * draw(st.integers(1, 5)), id=f"final{turn}"))
    return messages


KINDS = st.sampled_from([("tool",), ("tool", "human"), ("tool", "human", "ai")])


def check_structure(messages: list[Any], out: Any) -> None:
    assert [m.id for m in out.messages] == [m.id for m in messages], "order and ids preserved"
    assert [type(m) for m in out.messages] == [type(m) for m in messages]
    for before, after in zip(messages, out.messages, strict=True):
        if isinstance(before, ToolMessage):
            assert after.tool_call_id == before.tool_call_id
        if isinstance(before, AIMessage):
            assert after.tool_calls == before.tool_calls
    assert_paired(out.messages)
    latest = max(i for i, m in enumerate(messages) if isinstance(m, HumanMessage))
    assert out.messages[latest] == messages[latest]
    assert out.messages[0] == messages[0]


@settings(max_examples=40, deadline=None)
@given(messages=histories(), kinds=KINDS)
def test_bug_orphaned_tool_message_property(messages, kinds):
    check_structure(messages, MessageCompressor(make_stage(), kinds=kinds).compress(messages))


@settings(max_examples=20, deadline=None)
@given(messages=histories(), kinds=KINDS)
def test_bug_orphaned_tool_message_property_async(messages, kinds):
    compressor = MessageCompressor(make_stage(), kinds=kinds)
    check_structure(messages, asyncio.run(compressor.acompress(messages)))


# --- compression_node in a StateGraph -------------------------------------------------------


def orchestrator(state: CompressionState) -> dict[str, Any]:
    seen = " | ".join(str(m.content) for m in state["messages"])
    return {"messages": [AIMessage(f"answered from {len(seen)} chars", id="final")]}


def graph_with_node(stage: CompressionStage, **options: Any) -> Any:
    builder = StateGraph(CompressionState)
    builder.add_node("compress", compression_node(stage, **options))
    builder.add_node("agent", orchestrator)
    builder.add_edge(START, "compress")
    builder.add_edge("compress", "agent")
    builder.add_edge("agent", END)
    return builder.compile()


@pytest.mark.parametrize("mode", MODES)
async def test_node_replaces_tool_message_and_records(mode):
    graph = graph_with_node(make_stage())
    state = await call(graph, {"messages": history()}, mode)
    assert [m.id for m in state["messages"]] == ["s1", "h1", "a1", "t1", "final"]
    assert state["messages"][3].content == SUMMARY
    assert state["messages"][3].tool_call_id == "call-1"
    assert_paired(state["messages"])
    [decision] = state[DECISIONS_KEY]
    assert (decision["decision"], decision["rung"], decision["tool_call_id"]) == (
        "accepted",
        0,
        "call-1",
    )


@pytest.mark.parametrize("mode", MODES)
async def test_node_runs_once_per_message(mode):
    generator = FakeCompressor(default=SUMMARY)
    generator.enqueue("BAD unsupported")  # first attempt rejected: full context forwarded
    graph = graph_with_node(make_stage(generator))
    state = await call(graph, {"messages": history()}, mode)
    assert state["messages"][3].content == PAGE
    assert state[DECISIONS_KEY][0]["decision"] == "fallback"
    again = await call(graph, {"messages": state["messages"]}, mode)
    assert len(generator.history) == 1, "a processed message is not compressed again"
    assert again.get(DECISIONS_KEY, []) == []


class DocState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    topic: str
    documents: list[Any]
    ib_decisions: Annotated[list[dict[str, Any]], operator.add]


@pytest.mark.parametrize("mode", MODES)
async def test_node_compresses_documents(mode):
    generator = FakeCompressor(default=SUMMARY)
    node = compression_node(
        make_stage(generator), messages_key=None, documents_key="documents", query_key="topic"
    )
    documents = [PAGE, Document(PAGE, metadata={"source": "10-K p42"}), "short page"]
    update = await call(node, {"topic": "capex 2018", "documents": documents}, mode)
    first, second, third = update["documents"]
    assert first == SUMMARY
    assert isinstance(second, Document)
    assert second.page_content == SUMMARY
    assert second.metadata["source"] == "10-K p42"
    assert second.metadata[MARKER_KEY]["decision"] == "accepted"
    assert third == "short page"
    decisions = update[DECISIONS_KEY]
    assert [d["decision"] for d in decisions] == ["accepted", "accepted", "passthrough"]
    assert [d["document_index"] for d in decisions] == [0, 1, 2]
    assert decisions[1]["source"] == "document:10-K p42"
    assert "capex 2018" in generator.history[0][-1].content


def test_node_needs_something_to_compress():
    with pytest.raises(ValueError, match="nothing to compress"):
        compression_node(make_stage(), messages_key=None)


# --- with_compression ----------------------------------------------------------------------


class AgentState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    notes: str
    ib_decisions: Decisions


def inner_graph() -> Any:
    def agent(state: AgentState) -> dict[str, Any]:
        tool = next(m for m in state["messages"] if isinstance(m, ToolMessage))
        return {"messages": [AIMessage(f"saw: {tool.content}", id="final")], "notes": "kept"}

    builder = StateGraph(AgentState)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    builder.add_edge("agent", END)
    return builder.compile()


@pytest.mark.parametrize("mode", MODES)
async def test_with_compression_compresses_the_incoming_history(mode):
    graph = with_compression(inner_graph(), make_stage(), tools=())
    state = await call(graph, {"messages": history(), "notes": "start"}, mode)
    assert state["messages"][-1].content == f"saw: {SUMMARY}"
    assert state["notes"] == "kept"
    assert state[DECISIONS_KEY][0]["decision"] == "accepted"
    assert_paired(state["messages"])


@pytest.mark.parametrize("mode", MODES)
async def test_with_compression_wraps_a_chat_model(mode):
    model = FakeMessagesListChatModel(responses=[AIMessage("1577", id="final")])
    graph = with_compression(model, make_stage())
    state = await call(graph, {"messages": history()}, mode)
    assert state["messages"][-1].content == "1577"
    assert state["messages"][3].content == SUMMARY
    assert len(state[DECISIONS_KEY]) == 1


# --- streaming and tracing -------------------------------------------------------------------


def distinctive_stage() -> CompressionStage:
    """A stage whose compressor is a LangChain chat model with a distinctive output."""
    model = GenericFakeChatModel(messages=iter([f"Capex was $1,577 million {MARK}"] * 20))
    return make_stage(ChatModelGenerator(model))


def streaming_graph(stage: CompressionStage) -> Any:
    answer = GenericFakeChatModel(messages=iter(["The capex was 1577 million."] * 5))

    def agent(state: CompressionState) -> dict[str, Any]:
        return {"messages": [answer.invoke(state["messages"])]}

    async def aagent(state: CompressionState) -> dict[str, Any]:
        return {"messages": [await answer.ainvoke(state["messages"])]}

    builder = StateGraph(CompressionState)
    builder.add_node("compress", compression_node(stage))
    builder.add_node("agent", RunnableLambda(agent, afunc=aagent))
    builder.add_edge(START, "compress")
    builder.add_edge("compress", "agent")
    builder.add_edge("agent", END)
    return builder.compile()


async def stream_messages(graph: Any, value: Any, mode: str, config: Any) -> list[Any]:
    if mode == "sync":
        return list(graph.stream(value, config, stream_mode="messages"))
    return [item async for item in graph.astream(value, config, stream_mode="messages")]


@pytest.mark.parametrize("mode", MODES)
async def test_compressor_tokens_never_stream_but_are_traced(mode):
    recorder = RunRecorder()
    graph = streaming_graph(distinctive_stage())
    items = await stream_messages(graph, {"messages": history()}, mode, {"callbacks": [recorder]})
    answer = [message for message, _ in items if isinstance(message, AIMessageChunk)]
    streamed = "".join(str(message.content) for message in answer)
    assert streamed == "The capex was 1577 million."
    assert MARK not in streamed
    # The compressed tool message is pushed once, by the node, with its decision on it.
    [(tool, metadata)] = [item for item in items if not isinstance(item[0], AIMessageChunk)]
    assert isinstance(tool, ToolMessage)
    assert (tool.id, metadata["langgraph_node"]) == ("t1", "compress")
    assert tool.response_metadata[MARKER_KEY]["decision"] == "accepted"
    compressor_runs = [run for run in recorder.runs if run.kind == "chat_model"]
    tagged = [run for run in compressor_runs if set(COMPRESSOR_TAGS) <= set(run.tags)]
    assert len(tagged) == 1, "the compressor's call appears in traces, tagged"
    stage_runs = [run for run in recorder.runs if run.name == STAGE_RUN_NAME]
    assert len(stage_runs) == 1
    assert stage_runs[0].decisions[0]["decision"] == "accepted"
    assert tagged[0].parent_run_id == stage_runs[0].run_id


# --- CompressingChatModel ------------------------------------------------------------------


class RecordingModel(FakeMessagesListChatModel):
    """Records what it was asked; bind_tools and structured output are recorded too."""

    seen: list[list[Any]] = Field(default_factory=list)
    bound: list[Any] = Field(default_factory=list)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append(list(messages))
        return super()._generate(messages, stop, run_manager, **kwargs)

    def bind_tools(self, tools, **kwargs):
        self.bound.append(tools)
        return self.bind(**kwargs)

    def with_structured_output(self, schema, *, include_raw=False, **kwargs):
        def parse(messages):
            self.seen.append(list(messages))
            return {"answer": "1577"}

        return RunnableLambda(parse)


def recording_model() -> RecordingModel:
    return RecordingModel(responses=[AIMessage("1577")] * 5)


@pytest.mark.parametrize("mode", MODES)
async def test_chat_model_compresses_before_delegating(mode):
    inner = recording_model()
    model = CompressingChatModel(inner, make_stage())
    reply = await call(model, history(), mode)
    assert reply.content == "1577"
    [seen] = inner.seen
    assert [m.id for m in seen] == ["s1", "h1", "a1", "t1"]
    assert seen[3].content == SUMMARY
    assert reply.response_metadata[DECISIONS_KEY][0]["decision"] == "accepted"


@pytest.mark.parametrize("mode", MODES)
async def test_chat_model_streams_with_decisions_on_the_first_chunk(mode):
    inner = GenericFakeChatModel(messages=iter(["The capex was 1577."]))
    model = CompressingChatModel(inner, stage=make_stage())
    if mode == "sync":
        chunks = list(model.stream(history()))
    else:
        chunks = [chunk async for chunk in model.astream(history())]
    assert "".join(str(c.content) for c in chunks) == "The capex was 1577."
    assert chunks[0].response_metadata[DECISIONS_KEY][0]["decision"] == "accepted"
    assert all(DECISIONS_KEY not in c.response_metadata for c in chunks[1:])


@pytest.mark.parametrize("mode", MODES)
async def test_chat_model_bind_tools_and_structured_output_pass_through(mode):
    inner = recording_model()
    model = CompressingChatModel(inner, make_stage())
    bound = model.bind_tools([{"type": "function", "function": {"name": "search"}}])
    assert inner.bound, "bind_tools reached the wrapped model"
    assert isinstance(bound, CompressingChatModel)
    await call(bound, history(), mode)
    assert inner.seen[-1][3].content == SUMMARY
    structured = model.with_structured_output({"title": "Answer", "type": "object"})
    assert await call(structured, history(), mode) == {"answer": "1577"}
    assert inner.seen[-1][3].content == SUMMARY


@pytest.mark.parametrize("mode", MODES)
async def test_chat_model_streams_only_the_wrapped_model_in_a_graph(mode):
    inner = GenericFakeChatModel(messages=iter(["The capex was 1577."]))
    model = CompressingChatModel(inner, distinctive_stage())

    def agent(state: CompressionState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    async def aagent(state: CompressionState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(CompressionState)
    builder.add_node("agent", RunnableLambda(agent, afunc=aagent))
    builder.add_edge(START, "agent")
    builder.add_edge("agent", END)
    items = await stream_messages(builder.compile(), {"messages": history()}, mode, None)
    chunks = [m for m, _ in items if isinstance(m, AIMessageChunk)]
    assert "".join(str(c.content) for c in chunks) == "The capex was 1577."
    # Before the tokens: the compressed copy the model read (the state keeps the original).
    [(copy, metadata)] = [item for item in items if not isinstance(item[0], AIMessageChunk)]
    assert isinstance(copy, ToolMessage)
    assert (copy.id, copy.content) == ("t1", f"Capex was $1,577 million {MARK}")
    assert metadata["langgraph_node"] == "agent"
    assert items.index((copy, metadata)) == 0


def test_chat_model_needs_a_model_and_a_stage():
    with pytest.raises(TypeError, match="CompressionStage"):
        CompressingChatModel(recording_model())

"""IBMiddleware for LangChain v1 create_agent: hooks, end to end, streaming; sync and async.

The orchestrator is a fake chat model that calls a tool and then answers; the compressor is a
fake (or, in the slow tests, the real embedded SmolLM2 scored by Gemma-3-270M).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import ModelRequest, ModelResponse
from langchain.agents.middleware.types import ExtendedModelResponse
from langchain_core.language_models.fake_chat_models import (
    FakeMessagesListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolCall, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphBubbleUp, GraphInterrupt, ParentCommand
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command, interrupt

from ib_middleware.compressors import AbstractiveCompressor
from ib_middleware.engines import Generation
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.langgraph import (
    COMPRESSOR_TAGS,
    DECISIONS_KEY,
    MARKER_KEY,
    ChatModelGenerator,
    IBMiddleware,
    RunRecorder,
    with_compression,
)
from ib_middleware.stage import CompressionStage
from ib_middleware.testing import FakeCompressor, FakeScorer

MODES = ["sync", "async"]
QUESTION = "What was 3M's capital expenditure in 2018?"
PAGE = "Capital expenditure was $1,577 million in 2018. " + "Unrelated filler text. " * 60
SUMMARY = "Capex was $1,577 million in 2018."  # every figure is in PAGE
MARK = "zebrafinchquartz"  # a compressor output no orchestrator would ever write
CALL = ToolCall(name="search_filings", args={"company": "3M"}, id="call-1")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "react_agent_openai.py"


@tool
def search_filings(company: str) -> str:
    """Return the 10-K pages on file for a company."""
    return PAGE


def make_stage(generator: Any = None, **options: Any) -> CompressionStage:
    def score(prompt: str, z: str) -> float:
        return -1.0 if "Document:" in prompt and z.startswith("Capex") else -5.0

    generator = generator or FakeCompressor(default=SUMMARY)
    rung = Rung(AbstractiveCompressor(generator, window_tokens=5000), threshold_bits_per_token=0.5)
    return CompressionStage(
        [rung], estimator=CXMIEstimator(FakeScorer(score)), token_budget=50, **options
    )


class Orchestrator(FakeMessagesListChatModel):
    """Calls the tool, then answers; tools bind to nothing."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


def orchestrator() -> Orchestrator:
    return Orchestrator(
        responses=[AIMessage("", tool_calls=[CALL], id="ai-call"), AIMessage("1577", id="ai-end")]
    )


def agent(middleware: IBMiddleware) -> Any:
    return create_agent(orchestrator(), tools=[search_filings], middleware=[middleware])


async def invoke(runnable: Any, value: Any, mode: str, config: Any = None) -> Any:
    if mode == "sync":
        return runnable.invoke(value, config)
    return await runnable.ainvoke(value, config)


def assert_paired(messages: list[Any]) -> None:
    answered = [m.tool_call_id for m in messages if isinstance(m, ToolMessage)]
    calls = [c["id"] for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]
    assert answered == calls


# --- hooks -----------------------------------------------------------------------------------


def tool_request() -> ToolCallRequest:
    state = {"messages": [HumanMessage(QUESTION), AIMessage("", tool_calls=[CALL])]}
    return ToolCallRequest(tool_call=CALL, tool=None, state=state, runtime=None)  # type: ignore[arg-type]


async def wrap_tool(middleware: IBMiddleware, result: Any, mode: str) -> Any:
    if mode == "sync":
        return middleware.wrap_tool_call(tool_request(), lambda request: result)

    async def handler(request: ToolCallRequest) -> Any:
        return result

    return await middleware.awrap_tool_call(tool_request(), handler)


@pytest.mark.parametrize("mode", MODES)
async def test_tool_hook_compresses_the_tool_output(mode):
    generator = FakeCompressor(default=SUMMARY)
    middleware = IBMiddleware(make_stage(generator))
    result = ToolMessage(PAGE, tool_call_id="call-1", name="search_filings", id="t1")
    command = await wrap_tool(middleware, result, mode)
    assert isinstance(command, Command)
    [message] = command.update["messages"]
    assert (message.content, message.tool_call_id, message.id) == (SUMMARY, "call-1", "t1")
    assert message.response_metadata[MARKER_KEY]["decision"] == "accepted"
    [decision] = command.update[DECISIONS_KEY]
    assert (decision["decision"], decision["tool_call_id"]) == ("accepted", "call-1")
    prompt = generator.history[0][-1].content
    assert QUESTION in prompt
    assert '"company": "3M"' in prompt


@pytest.mark.parametrize("mode", MODES)
async def test_tool_hook_leaves_short_and_command_results(mode):
    generator = FakeCompressor(default=SUMMARY)
    middleware = IBMiddleware(make_stage(generator))
    short = ToolMessage("3M capex: $1,577M", tool_call_id="call-1")
    assert await wrap_tool(middleware, short, mode) is short
    command = Command(update={"messages": [ToolMessage(PAGE, tool_call_id="call-1")]})
    assert await wrap_tool(middleware, command, mode) is command
    assert generator.history == []


@pytest.mark.parametrize("mode", MODES)
async def test_tool_hook_passes_through_in_call_mode(mode):
    middleware = IBMiddleware(make_stage(), mode="call")
    result = ToolMessage(PAGE, tool_call_id="call-1")
    assert await wrap_tool(middleware, result, mode) is result


def model_request() -> ModelRequest[Any]:
    messages = [
        HumanMessage(QUESTION, id="h1"),
        AIMessage("", tool_calls=[CALL], id="a1"),
        ToolMessage(PAGE, tool_call_id="call-1", id="t1"),
    ]
    return ModelRequest(model=orchestrator(), messages=messages, state={"messages": messages})


async def wrap_model(middleware: IBMiddleware, request: ModelRequest[Any], mode: str) -> Any:
    seen: list[ModelRequest[Any]] = []
    response = ModelResponse(result=[AIMessage("1577")])
    if mode == "sync":

        def handler(request: ModelRequest[Any]) -> ModelResponse[Any]:
            seen.append(request)
            return response

        return middleware.wrap_model_call(request, handler), seen

    async def ahandler(request: ModelRequest[Any]) -> ModelResponse[Any]:
        seen.append(request)
        return response

    return await middleware.awrap_model_call(request, ahandler), seen


@pytest.mark.parametrize("mode", MODES)
async def test_model_hook_compresses_only_the_call(mode):
    generator = FakeCompressor(default=SUMMARY)
    middleware = IBMiddleware(make_stage(generator), mode="call")
    request = model_request()
    result, [seen] = await wrap_model(middleware, request, mode)
    assert [m.id for m in seen.messages] == ["h1", "a1", "t1"]
    assert seen.messages[2].content == SUMMARY
    assert request.messages[2].content == PAGE, "the state's messages are untouched"
    assert isinstance(result, ExtendedModelResponse)
    assert result.command.update[DECISIONS_KEY][0]["decision"] == "accepted"
    # The same history on the next call is served from the cache and not recorded again.
    again, [seen_again] = await wrap_model(middleware, model_request(), mode)
    assert seen_again.messages[2].content == SUMMARY
    assert isinstance(again, ModelResponse)
    assert len(generator.history) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_model_hook_passes_through_in_tool_mode(mode):
    middleware = IBMiddleware(make_stage())
    request = model_request()
    result, [seen] = await wrap_model(middleware, request, mode)
    assert seen is request
    assert isinstance(result, ModelResponse)


def test_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        IBMiddleware(make_stage(), mode="sometimes")  # type: ignore[arg-type]


# --- create_agent end to end ---------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_agent_tool_mode_persists_the_compression(mode):
    state = await invoke(agent(IBMiddleware(make_stage())), {"messages": [QUESTION]}, mode)
    messages = state["messages"]
    assert [type(m).__name__ for m in messages] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    assert messages[2].content == SUMMARY
    assert messages[-1].content == "1577"
    assert_paired(messages)
    [decision] = state[DECISIONS_KEY]
    assert (decision["decision"], decision["rung"], decision["tool_call_id"]) == (
        "accepted",
        0,
        "call-1",
    )


@pytest.mark.parametrize("mode", MODES)
async def test_agent_call_mode_leaves_state_untouched(mode):
    generator = FakeCompressor(default=SUMMARY)
    middleware = IBMiddleware(make_stage(generator), mode="call")
    state = await invoke(agent(middleware), {"messages": [QUESTION]}, mode)
    assert state["messages"][2].content == PAGE
    assert_paired(state["messages"])
    assert [d["decision"] for d in state[DECISIONS_KEY]] == ["accepted"]
    assert len(generator.history) == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("middleware_mode", ["tool", "call"])
async def test_bug_compressor_failure_keeps_the_original(mode, middleware_mode):
    generator = FakeCompressor()
    generator.enqueue(RuntimeError("compressor crashed"))
    middleware = IBMiddleware(make_stage(generator), mode=middleware_mode)
    state = await invoke(agent(middleware), {"messages": [QUESTION]}, mode)
    assert state["messages"][2].content == PAGE, "history must not become an error text"
    assert_paired(state["messages"])
    [decision] = state[DECISIONS_KEY]
    assert decision["decision"] == "fallback"
    assert decision["attempts"][0]["error"] == "RuntimeError: compressor crashed"


@pytest.mark.parametrize("mode", MODES)
async def test_bug_orphaned_tool_message_after_compression(mode):
    calls = [ToolCall(name="search_filings", args={"company": c}, id=f"c{c}") for c in "ABC"]
    model = Orchestrator(responses=[AIMessage("", tool_calls=calls), AIMessage("done")])
    graph = create_agent(
        model, tools=[search_filings], middleware=[IBMiddleware(make_stage(), mode="call")]
    )
    state = await invoke(graph, {"messages": [QUESTION]}, mode)
    assert_paired(state["messages"])
    assert [d["tool_call_id"] for d in state[DECISIONS_KEY]] == ["cA", "cB", "cC"]


# --- streaming: compressor tokens never reach the user, but show in traces ------------------


async def stream(graph: Any, mode: str, recorder: RunRecorder) -> list[Any]:
    value, config = {"messages": [QUESTION]}, {"callbacks": [recorder]}
    if mode == "sync":
        return list(graph.stream(value, config, stream_mode="messages"))
    return [item async for item in graph.astream(value, config, stream_mode="messages")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("middleware_mode", ["tool", "call"])
async def test_compressor_never_streams_but_is_traced(mode, middleware_mode):
    compressor = GenericFakeChatModel(messages=iter([f"Capex was $1,577 million {MARK}"] * 5))
    stage = make_stage(ChatModelGenerator(compressor))
    recorder = RunRecorder()
    items = await stream(agent(IBMiddleware(stage, mode=middleware_mode)), mode, recorder)
    for message, metadata in items:
        assert not set(COMPRESSOR_TAGS) & set(metadata.get("tags", []))
        if isinstance(message, AIMessageChunk | AIMessage):
            assert MARK not in str(message.content)
    # The compressed tool message streams once: the agent's state in tool mode, the copy the
    # model read (pushed from the model node, just before its tokens) in call mode.
    leaked = [(m, meta["langgraph_node"]) for m, meta in items if MARK in str(m.content)]
    assert [(type(m), node) for m, node in leaked] == [
        (ToolMessage, "tools" if middleware_mode == "tool" else "model")
    ]
    assert leaked[0][0].response_metadata[MARKER_KEY]["decision"] == "accepted"
    tagged = [run for run in recorder.runs if run.kind == "chat_model" and "nostream" in run.tags]
    assert len(tagged) == 1, "the compressor's call is in the trace"
    assert "ib_middleware:compressor" in tagged[0].tags


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
@pytest.mark.parametrize("mode", MODES)
async def test_compressor_stays_out_of_the_v3_message_stream(mode):
    compressor = GenericFakeChatModel(messages=iter([f"Capex was $1,577 million {MARK}"] * 5))
    graph = agent(IBMiddleware(make_stage(ChatModelGenerator(compressor)), mode="call"))
    value = {"messages": [QUESTION]}
    if mode == "sync":
        texts = [str(m.text) for m in graph.stream_events(value, version="v3").messages]
    else:
        run = await graph.astream_events(value, version="v3")
        texts = [await m.text async for m in run.messages]
    assert "1577" in texts
    assert not any(MARK in text for text in texts)


# --- the example ------------------------------------------------------------------------------


def test_example_explains_what_to_set_without_an_endpoint():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"OPENAI_BASE_URL", "OPENAI_API_KEY", "IB_DEMO_MODEL"}
    }
    command = [sys.executable, str(EXAMPLE)]
    done = subprocess.run(
        command, check=False, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0
    for needed in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "IB_DEMO_MODEL", "cannot call tools"):
        assert needed in done.stderr
    assert "Traceback" not in done.stderr


# --- the real embedded compressor -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("mode", MODES)
async def test_agent_with_the_embedded_compressor(mode, smollm2_engine, gemma_engine):
    stage = CompressionStage(
        [
            Rung(
                AbstractiveCompressor(smollm2_engine, max_tokens=64),
                threshold_bits_per_token=0.0,
            )
        ],
        estimator=CXMIEstimator(gemma_engine),
        token_budget=64,
    )
    page = (
        "3M Company cash flow statement, 2018. Purchases of property, plant and equipment "
        "(PP&E) were $1,577 million in 2018, $1,373 million in 2017 and $1,420 million in "
        "2016. Proceeds from sale of PP&E and other assets were $262 million. "
    ) * 3

    @tool
    def cash_flow(company: str) -> str:
        """Return the cash flow statement page."""
        return page

    model = Orchestrator(
        responses=[
            AIMessage("", tool_calls=[ToolCall(name="cash_flow", args={"company": "3M"}, id="c")]),
            AIMessage("1577"),
        ]
    )
    graph = create_agent(model, tools=[cash_flow], middleware=[IBMiddleware(stage)])
    state = await invoke(graph, {"messages": [QUESTION]}, mode)
    assert_paired(state["messages"])
    [decision] = state[DECISIONS_KEY]
    tool_text = state["messages"][2].content
    assert decision["decision"] in {"accepted", "fallback"}
    if decision["decision"] == "accepted":
        assert decision["output_tokens"] < decision["input_tokens"]
        assert tool_text != page
        assert decision["attempts"][0]["estimate"]["estimator"] == "cxmi"
    else:
        assert tool_text == page


# --- decisions while streaming; control flow passes through -------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("middleware_mode", ["tool", "call"])
async def test_decisions_stream_as_custom_events(mode, middleware_mode):
    graph = agent(IBMiddleware(make_stage(), mode=middleware_mode))
    value = {"messages": [QUESTION]}
    if mode == "sync":
        events = list(graph.stream(value, stream_mode="custom"))
    else:
        events = [event async for event in graph.astream(value, stream_mode="custom")]
    [event] = events
    [record] = event[DECISIONS_KEY]
    assert (record["decision"], record["tool_call_id"]) == ("accepted", "call-1")


SIGNALS = [
    GraphInterrupt,
    lambda: ParentCommand(Command(graph=Command.PARENT, goto="elsewhere")),
    GraphBubbleUp,
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("make", SIGNALS, ids=["GraphInterrupt", "ParentCommand", "GraphBubbleUp"])
async def test_hooks_reraise_signals_untouched(make, mode):
    for middleware_mode in ("tool", "call"):
        signal = make()
        generator = FakeCompressor()
        generator.enqueue(signal)
        middleware = IBMiddleware(make_stage(generator), mode=middleware_mode)
        with pytest.raises(type(signal)) as raised:
            await call_hook(middleware, mode)
        assert raised.value is signal


async def call_hook(middleware: IBMiddleware, mode: str) -> Any:
    if middleware.mode == "tool":
        result = ToolMessage(PAGE, tool_call_id="call-1", name="search_filings", id="t1")
        return await wrap_tool(middleware, result, mode)
    return await wrap_model(middleware, model_request(), mode)


class AskingCompressor:
    """A compressor that asks a human (``interrupt``) before it answers."""

    model_id = "asking-compressor"

    def __init__(self) -> None:
        self.answers: list[Any] = []

    def generate(self, messages: Any, settings: Any = None) -> Generation:
        self.answers.append(interrupt("May I compress this page?"))
        return Generation(SUMMARY, self.model_id, 1, 1, 0.0, "stop")

    async def agenerate(self, messages: Any, settings: Any = None) -> Generation:
        return self.generate(messages, settings)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("middleware_mode", ["tool", "call"])
async def test_an_interrupt_in_the_compressor_pauses_the_agent(mode, middleware_mode):
    asking = AskingCompressor()
    graph = create_agent(
        orchestrator(),
        tools=[search_filings],
        middleware=[IBMiddleware(make_stage(asking), mode=middleware_mode)],
        checkpointer=InMemorySaver(),
    )
    config = {"configurable": {"thread_id": f"{middleware_mode}-{mode}"}}
    paused = await invoke(graph, {"messages": [QUESTION]}, mode, config)
    assert [item.value for item in paused["__interrupt__"]] == ["May I compress this page?"]
    done = await invoke(graph, Command(resume="yes"), mode, config)
    assert asking.answers == ["yes"]
    assert done["messages"][-1].content == "1577"
    assert [d["decision"] for d in done[DECISIONS_KEY]] == ["accepted"]


class SeeingOrchestrator(Orchestrator):
    """Records what each call was shown."""

    seen: Any  # the caller's list

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append(list(messages))
        return super()._generate(messages, stop, run_manager, **kwargs)


@pytest.mark.parametrize("mode", MODES)
async def test_with_compression_wraps_a_create_agent_graph(mode):
    model = SeeingOrchestrator(
        responses=[AIMessage("", tool_calls=[CALL], id="ai-call"), AIMessage("1577", id="ai-end")],
        seen=[],
    )
    graph = with_compression(create_agent(model, tools=[search_filings]), make_stage())
    value = {"messages": [QUESTION]}
    if mode == "sync":
        items = list(graph.stream(value, stream_mode=["messages", "updates"]))
    else:
        items = [item async for item in graph.astream(value, stream_mode=["messages", "updates"])]
    tools_seen = [m.content for m in model.seen[-1] if isinstance(m, ToolMessage)]
    assert tools_seen == [SUMMARY], "the tool output produced inside the loop was compressed"
    streamed = [chunk for kind, chunk in items if kind == "messages"]
    [(tool, metadata)] = [(m, meta) for m, meta in streamed if isinstance(m, ToolMessage)]
    assert (tool.content, metadata["langgraph_node"]) == (SUMMARY, "tools")
    assert tool.response_metadata[MARKER_KEY]["decision"] == "accepted"
    nodes = {name for kind, update in items if kind == "updates" for name in update}
    assert nodes == {"model", "tools"}, "node names are the agent's own"

"""LangGraph's control flow passes through every guard untouched, sync and async.

A guard that forwards the original content when something fails must not mistake a signal
for a failure: ``GraphBubbleUp`` and its subclasses (``GraphInterrupt`` from ``interrupt()``,
``ParentCommand``, ``GraphDrained``) and task cancellation, raised inside a compressor, a
scorer, an observer or a callback, reach the caller as the same object.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableLambda
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphBubbleUp, GraphDrained, GraphInterrupt, ParentCommand
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from test_langgraph_loop import PAGE, QUESTION, SUMMARY, Context, LoopModel, react_loop, tool_texts

from ib_middleware.compressors import AbstractiveCompressor
from ib_middleware.engines import ChatMessage, Generation, GenerationSettings
from ib_middleware.errors import is_control_flow
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.langgraph import (
    STAGE_RUN_NAME,
    CompressingChatModel,
    CompressionState,
    MessageCompressor,
    add_compression,
    arun_stage,
    compression_node,
    run_stage,
    with_compression,
)
from ib_middleware.stage import CompressionStage, ContextItem
from ib_middleware.testing import FakeCompressor, FakeScorer, tool_call

MODES = ["sync", "async"]
SIGNALS: list[Callable[[], BaseException]] = [
    GraphInterrupt,
    lambda: ParentCommand(Command(graph=Command.PARENT, goto="elsewhere")),
    lambda: GraphDrained("shutdown"),
    GraphBubbleUp,
]
SIGNAL_IDS = ["GraphInterrupt", "ParentCommand", "GraphDrained", "GraphBubbleUp"]
HISTORY = [
    HumanMessage(QUESTION, id="h1"),
    tool_call("search_filings", call_id="c1", company="3M"),
    ToolMessage(PAGE, tool_call_id="c1", name="search_filings", id="t1"),
]


def scorer() -> FakeScorer:
    return FakeScorer(lambda prompt, z: -1.0 if "Document:" in prompt else -5.0)


def make_stage(generator: Any = None, *, score: FakeScorer | None = None, **options: Any) -> Any:
    generator = generator or FakeCompressor(default=SUMMARY)
    rung = Rung(AbstractiveCompressor(generator, window_tokens=5000), 0.5)
    estimator = CXMIEstimator(score or scorer())
    return CompressionStage([rung], estimator=estimator, token_budget=50, **options)


class Raising:
    """A stage observer that raises ``signal`` when the run starts."""

    def __init__(self, signal: BaseException) -> None:
        self.signal = signal

    def run_started(self, query: str, items: Sequence[ContextItem]) -> Any:
        raise self.signal

    def run_finished(self, handle: Any, results: Sequence[Any]) -> None:
        return None

    def run_failed(self, handle: Any, error: BaseException) -> None:
        return None


def with_signal_in(where: str, signal: BaseException) -> CompressionStage:
    """A stage whose compressor, scorer or observer raises ``signal``."""
    if where == "compressor":
        generator = FakeCompressor()
        generator.enqueue(signal)
        return make_stage(generator)
    if where == "scorer":
        score = scorer()
        score.enqueue(signal)
        return make_stage(score=score)
    return make_stage(observers=[Raising(signal)])


def test_the_predicate():
    for make in SIGNALS:
        assert is_control_flow(make())
    assert is_control_flow(asyncio.CancelledError())
    assert not is_control_flow(RuntimeError("engine died"))
    assert not is_control_flow(TimeoutError())


# --- the stage and its traced run ---------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("where", ["compressor", "scorer", "observer"])
@pytest.mark.parametrize("make", SIGNALS, ids=SIGNAL_IDS)
async def test_the_stage_reraises_signals_untouched(make, where, mode):
    signal = make()
    stage = with_signal_in(where, signal)
    with pytest.raises(type(signal)) as raised:
        await run_the_stage(stage, mode)
    assert raised.value is signal


async def run_the_stage(stage: CompressionStage, mode: str) -> Any:
    if mode == "sync":
        return stage.run([PAGE], QUESTION)
    return await stage.arun([PAGE], QUESTION)


class RaisingHandler(BaseCallbackHandler):
    """A callback handler whose errors propagate, raising ``signal`` as the stage run starts."""

    raise_error = True

    def __init__(self, signal: BaseException) -> None:
        self.signal = signal

    def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
        if kwargs.get("name") == STAGE_RUN_NAME:
            raise self.signal


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("make", SIGNALS, ids=SIGNAL_IDS)
async def test_the_traced_stage_run_reraises_a_callbacks_signal(make, mode):
    signal = make()
    with pytest.raises(type(signal)) as raised:
        await run_traced(RaisingHandler(signal), mode)
    assert raised.value is signal


async def run_traced(handler: BaseCallbackHandler, mode: str) -> Any:
    items = [ContextItem(PAGE, "tool:search")]
    config: Any = {"callbacks": [handler]}
    if mode == "sync":
        return run_stage(make_stage(), items, QUESTION, config=config)
    return await arun_stage(make_stage(), items, QUESTION, config=config)


@pytest.mark.parametrize("mode", MODES)
async def test_an_ordinary_callback_error_still_falls_back(mode):
    [result] = await run_traced(RaisingHandler(RuntimeError("tracer down")), mode)
    assert result.decision == "fallback"
    assert "tracer down" in result.reason


# --- every drop-in ------------------------------------------------------------------------


def tool_output(state: Any) -> dict[str, Any]:
    return {"messages": [ToolMessage(PAGE, tool_call_id="c1", name="search_filings")]}


def drop_in(name: str, stage: CompressionStage) -> Callable[[str], Any]:
    """Call the drop-in ``name`` on HISTORY, the way a graph would, sync or async."""
    state = {"messages": HISTORY}
    if name == "MessageCompressor":
        compressor = MessageCompressor(stage)
        sync: Any = lambda: compressor.compress(HISTORY)  # noqa: E731
        run_async: Any = lambda: compressor.acompress(HISTORY)  # noqa: E731
    elif name == "compression_node":
        node = compression_node(stage)
        sync, run_async = (lambda: node.invoke(state)), (lambda: node.ainvoke(state))
    elif name == "add_compression":
        builder = StateGraph(CompressionState)
        builder.add_node("tools", RunnableLambda(tool_output))
        builder.add_edge(START, "tools")
        wrapped = add_compression(builder, stage).nodes["tools"].runnable
        sync, run_async = (lambda: wrapped.invoke(state)), (lambda: wrapped.ainvoke(state))
    elif name == "CompressingChatModel.invoke":
        model = CompressingChatModel(LoopModel(seen=[]), stage, cache_size=0)
        sync, run_async = (lambda: model.invoke(HISTORY)), (lambda: model.ainvoke(HISTORY))
    else:  # CompressingChatModel.stream
        model = CompressingChatModel(LoopModel(seen=[]), stage, cache_size=0)

        async def consume() -> list[Any]:
            return [chunk async for chunk in model.astream(HISTORY)]

        sync, run_async = (lambda: list(model.stream(HISTORY))), consume

    async def call(mode: str) -> Any:
        return sync() if mode == "sync" else await run_async()

    return call


DROP_INS = [
    "MessageCompressor",
    "compression_node",
    "add_compression",
    "CompressingChatModel.invoke",
    "CompressingChatModel.stream",
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", DROP_INS)
@pytest.mark.parametrize("make", SIGNALS, ids=SIGNAL_IDS)
async def test_every_drop_in_reraises_signals_untouched(make, name, mode):
    signal = make()
    call = drop_in(name, with_signal_in("compressor", signal))
    with pytest.raises(type(signal)) as raised:
        await call(mode)
    assert raised.value is signal


# --- interrupt() inside a compressor: the graph pauses, and resumes --------------------------


class AskingCompressor:
    """A compressor that asks a human (``interrupt``) before it answers."""

    model_id = "asking-compressor"

    def __init__(self) -> None:
        self.answers: list[Any] = []

    def generate(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None
    ) -> Generation:
        self.answers.append(interrupt("May I compress this page?"))
        return Generation(SUMMARY, self.model_id, 1, 1, 0.0, "stop")

    async def agenerate(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None
    ) -> Generation:
        return self.generate(messages, settings)


async def invoke(graph: Any, value: Any, mode: str, config: Any, context: Any) -> Any:
    if mode == "sync":
        return graph.invoke(value, config, context=context)
    return await graph.ainvoke(value, config, context=context)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "name", ["compression_node", "add_compression", "with_compression", "CompressingChatModel"]
)
async def test_an_interrupt_in_a_compressor_pauses_the_loop_and_resumes(name, mode):
    asking = AskingCompressor()
    graph = react_loop(name, make_stage(asking), mode, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": f"{name}-{mode}"}}
    context = Context()
    paused = await invoke(graph, {"messages": [("user", QUESTION)]}, mode, config, context)
    [pending] = paused["__interrupt__"]
    assert pending.value == "May I compress this page?"
    assert len(context.seen) == 1, "paused before the model's next call"
    done = await invoke(graph, Command(resume="yes"), mode, config, context)
    assert asking.answers == ["yes"]
    assert tool_texts(context.seen[-1]) == [SUMMARY]
    assert done["messages"][-1].content == "It was $1,577 million."


@pytest.mark.parametrize("mode", MODES)
async def test_an_interrupt_while_compressing_the_incoming_history(mode):
    def agent(state: CompressionState) -> dict[str, Any]:
        return {"messages": [AIMessage(f"read: {state['messages'][-1].content}")]}

    builder = StateGraph(CompressionState)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    builder.add_edge("agent", END)
    asking = AskingCompressor()
    graph = with_compression(
        builder.compile(), make_stage(asking), tools=(), checkpointer=InMemorySaver()
    )
    config = {"configurable": {"thread_id": f"start-{mode}"}}
    await invoke(graph, {"messages": HISTORY}, mode, config, None)
    paused = graph.get_state(config)  # the input step has no values to return yet
    assert [item.value for item in paused.interrupts] == ["May I compress this page?"]
    assert paused.next == ("__start__",)
    done = await invoke(graph, Command(resume="go"), mode, config, None)
    assert asking.answers == ["go"]
    assert done["messages"][-1].content == f"read: {SUMMARY}"


# --- cancellation ------------------------------------------------------------------------


async def test_a_cancelled_error_from_a_compressor_is_not_a_fallback():
    generator = FakeCompressor()
    generator.enqueue(asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await make_stage(generator).arun([PAGE], QUESTION)


class BlockingCompressor:
    """An async compressor that waits until it is cancelled."""

    model_id = "blocking-compressor"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    def generate(self, messages: Any, settings: Any = None) -> Generation:
        raise NotImplementedError

    async def agenerate(self, messages: Any, settings: Any = None) -> Generation:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        raise AssertionError


@pytest.mark.parametrize(
    "name", ["compression_node", "add_compression", "with_compression", "CompressingChatModel"]
)
async def test_cancelling_the_run_cancels_the_compressor(name):
    blocking = BlockingCompressor()
    graph = react_loop(name, make_stage(blocking), "async")
    task = asyncio.ensure_future(
        graph.ainvoke({"messages": [("user", QUESTION)]}, context=Context())
    )
    await asyncio.wait_for(blocking.started.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert blocking.cancelled, "the compressor saw the cancellation, nothing swallowed it"

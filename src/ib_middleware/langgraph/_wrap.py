"""Put the stage into a graph you have: on its builder, or on the compiled graph itself."""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Sequence
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langgraph.constants import START
from langgraph.graph import END, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode
from langgraph.pregel import Pregel
from langgraph.pregel.protocol import PregelProtocol

from ib_middleware.langgraph._common import DECISIONS_KEY, MessageKind
from ib_middleware.langgraph._node import CompressionState, compression_node
from ib_middleware.langgraph._originals import OriginalStore
from ib_middleware.langgraph._outputs import (
    CompressedOutputs,
    InputCompression,
    Originals,
    compress_outputs,
)
from ib_middleware.langgraph._publish import StateKeyCheck
from ib_middleware.stage import CompressionStage

__all__ = ["add_compression", "with_compression"]

_log = logging.getLogger("ib_middleware.langgraph")

_ALTERNATIVES = (
    "add_compression(builder, stage, after=...) on the graph's builder, compression_node(stage) "
    "on every edge out of its tool nodes, or CompressingChatModel(model, stage) for its chat "
    "model (any agent that takes a model takes it)"
)


def _names(after: str | Sequence[str]) -> list[str]:
    return [after] if isinstance(after, str) else list(after)


def add_compression(
    builder: StateGraph[Any, Any, Any, Any],
    stage: CompressionStage,
    *,
    after: str | Sequence[str] = "tools",
    messages_key: str = "messages",
    kinds: Sequence[MessageKind] = ("tool",),
    decisions_key: str | None = DECISIONS_KEY,
    originals: OriginalStore | None = None,
    expandable: bool = False,
) -> StateGraph[Any, Any, Any, Any]:
    """Compress what the named nodes return, on every way out of them, in your builder.

    Each node named in ``after`` (the ``ToolNode``, usually) is replaced by the same node
    followed by the stage, in one node of the same name: every edge, conditional edge,
    ``Command`` and ``Send`` out of it carries the compressed tool messages, the graph's
    shape and node names stay as they are, and ``stream_mode="messages"`` shows each tool
    message once, compressed, from that node. Call it before ``compile``.

    Args:
        builder: Your ``StateGraph``, with its nodes added.
        stage: The compression stage.
        after: The node or nodes whose outputs to compress.
        messages_key: The state key those nodes write messages to.
        kinds: Kinds of message to compress among their outputs.
        decisions_key: State key for the decisions (declare it as ``Decisions``; without it
            the decisions stay on the messages and in the custom stream, with a warning).
        originals: Where originals are kept (``InMemoryOriginalStore``,
            ``LangGraphOriginalStore``); None keeps them on the compressed messages.
        expandable: Show the model each changed output's id, for ``expand_context_tool``.

    Returns:
        The same builder, for chaining.

    Raises:
        ValueError: A named node is not in the builder.

    Example:
        >>> from langgraph.graph import START, StateGraph
        >>> from langgraph.prebuilt import ToolNode, tools_condition
        >>> from ib_middleware.langgraph import CompressionState
        >>> from ib_middleware.judging.online import CXMIEstimator
        >>> from ib_middleware.testing import FakeScorer
        >>> stage = CompressionStage([], estimator=CXMIEstimator(FakeScorer()))
        >>> builder = StateGraph(CompressionState)
        >>> builder = builder.add_node("agent", lambda state: {}).add_node("tools", ToolNode([]))
        >>> builder = builder.add_edge(START, "agent").add_edge("tools", "agent")
        >>> graph = add_compression(builder, stage, after="tools").compile()
        >>> sorted(graph.get_graph().nodes)
        ['__end__', '__start__', 'agent', 'tools']
    """
    names = _names(after)
    missing = [name for name in names if name not in builder.nodes]
    if missing:
        msg = f"add_compression: no node {missing} in the builder; its nodes: {list(builder.nodes)}"
        raise ValueError(msg)
    keep = StateKeyCheck(decisions_key).channels(builder.channels)
    for name in names:
        spec = builder.nodes[name]
        if _is_wrapped(spec.runnable):
            continue
        wrapped = compress_outputs(
            cast("Runnable[Any, Any]", spec.runnable),  # add_node made every node a runnable
            stage,
            name=name,
            messages_key=messages_key,
            kinds=kinds,
            decisions_key=decisions_key if keep else None,
            originals=originals,
            expandable=expandable,
        )
        builder.nodes[name] = dataclasses.replace(spec, runnable=wrapped)
    return builder


def _is_wrapped(runnable: Any) -> bool:
    return isinstance(getattr(runnable, "func", None), CompressedOutputs)


def _rewired(
    graph: Pregel[Any, Any, Any, Any],
    stage: CompressionStage,
    tools: list[str] | None,
    messages_key: str,
    kinds: Sequence[MessageKind],
    *,
    kept: Originals,
) -> tuple[Pregel[Any, Any, Any, Any], list[str]]:
    """A copy of ``graph`` whose tool nodes (and subgraphs') compress their outputs."""
    check = StateKeyCheck(DECISIONS_KEY)
    nodes = dict(graph.nodes)
    wrapped: list[str] = []
    for name, node in graph.nodes.items():
        bound = node.bound
        if name == START:
            continue
        if _is_wrapped(bound):  # compressed already (add_compression, an earlier wrap)
            wrapped.append(name)
        elif (tools is None and isinstance(bound, ToolNode)) or (tools and name in tools):
            decisions_key = DECISIONS_KEY if check.channels(graph.channels) else None
            runnable = compress_outputs(
                bound,
                stage,
                name=name,
                messages_key=messages_key,
                kinds=kinds,
                decisions_key=decisions_key,
                **kept,
            )
            nodes[name] = node.copy({"bound": runnable})
            wrapped.append(name)
        elif tools is None and isinstance(bound, CompiledStateGraph):
            inner, found = _rewired(bound, stage, None, messages_key, kinds, kept=kept)
            if found:
                nodes[name] = node.copy({"bound": inner, "subgraphs": [inner]})
                wrapped.extend(f"{name}/{item}" for item in found)
    copied = copy.copy(graph)
    copied.nodes = nodes
    return copied, wrapped


def _as_node(orchestrator: Any) -> Any:
    if isinstance(orchestrator, BaseChatModel):
        model = orchestrator

        def call(state: Any, config: RunnableConfig) -> dict[str, Any]:
            return {"messages": [model.invoke(state["messages"], config)]}

        async def acall(state: Any, config: RunnableConfig) -> dict[str, Any]:
            return {"messages": [await model.ainvoke(state["messages"], config)]}

        return RunnableLambda(call, afunc=acall, name="orchestrator")
    return orchestrator


def _around(
    runnable: Runnable[Any, Any],
    stage: CompressionStage,
    *,
    kinds: Sequence[MessageKind],
    documents_key: str | None,
    query_key: str | None,
    checkpointer: Any,
    name: str | None,
    kept: Originals,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """``compress -> orchestrator``: for a chat model or a state-to-update runnable."""
    builder: StateGraph[Any, Any, Any, Any] = StateGraph(CompressionState)
    node = compression_node(
        stage, kinds=kinds, documents_key=documents_key, query_key=query_key, **kept
    )
    builder.add_node("compress", node)
    builder.add_node("orchestrator", _as_node(runnable))
    builder.add_edge(START, "compress")
    builder.add_edge("compress", "orchestrator")
    builder.add_edge("orchestrator", END)
    return builder.compile(checkpointer=checkpointer, name=name or "with_compression")


def with_compression(
    graph_or_runnable: Any,
    stage: CompressionStage,
    *,
    tools: str | Sequence[str] | None = None,
    messages_key: str = "messages",
    kinds: Sequence[MessageKind] = ("tool",),
    documents_key: str | None = None,
    query_key: str | None = None,
    checkpointer: Any = None,
    name: str | None = None,
    originals: OriginalStore | None = None,
    expandable: bool = False,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The same graph, compressing every tool output before a model reads it.

    A compiled ``StateGraph`` (``create_agent``, ``create_react_agent``, your own) is copied
    with each tool node followed by the stage inside that node, as ``add_compression`` does,
    so the tool outputs produced inside its loops are compressed on every path into a model
    call; tool nodes are the ``ToolNode`` instances, in subgraphs too, or the nodes named in
    ``tools``. The history the graph is given is compressed once at its start as well. Node
    names, edges, state schema, checkpointer, store and interrupts are those of the original,
    so stream filters by node name keep working. Decisions go to the ``ib_decisions`` key
    when the state declares it (a logged warning says when it does not) and always to the
    compressed messages and the custom stream.

    A chat model becomes ``compress -> orchestrator`` (compress the history, then answer);
    any other runnable that takes the state and returns an update is put in the same place.

    Args:
        graph_or_runnable: A compiled ``StateGraph``, a chat model, or a runnable.
        stage: The compression stage.
        tools: Names of the nodes whose outputs to compress, when they are not ``ToolNode``
            instances; ``()`` compresses only the incoming history.
        messages_key: The state key of the messages.
        kinds: Message kinds to compress (see ``compression_node``).
        documents_key: State key of documents to compress (chat model or runnable only).
        query_key: State key of the query, for documents (chat model or runnable only).
        checkpointer: Replaces the graph's checkpointer (or is passed to ``compile``).
        name: The returned graph's name (default: the original's).
        originals: Where originals are kept (``InMemoryOriginalStore``,
            ``LangGraphOriginalStore``); None keeps them on the compressed messages.
        expandable: Show the model each changed output's id, for ``expand_context_tool``.

    Returns:
        A compiled graph.

    Raises:
        TypeError: A graph that cannot be altered (built without ``StateGraph``).
        ValueError: A graph with no tool node found, or a named node it does not have.

    Example:
        ::

            from langchain.agents import create_agent
            from ib_middleware.langgraph import with_compression

            agent = with_compression(create_agent(model, tools), stage)
            for chunk in agent.stream({"messages": [("user", question)]}, stream_mode="custom"):
                print(chunk["ib_decisions"])  # each decision, as it is made
    """
    kept: Originals = {"originals": originals, "expandable": expandable}
    if isinstance(graph_or_runnable, CompiledStateGraph):
        return _copy_graph(
            graph_or_runnable,
            stage,
            tools=tools,
            messages_key=messages_key,
            kinds=kinds,
            checkpointer=checkpointer,
            name=name,
            kept=kept,
        )
    if isinstance(graph_or_runnable, PregelProtocol):  # the functional API, a remote graph
        msg = (
            f"with_compression cannot alter {type(graph_or_runnable).__name__} "
            f"{graph_or_runnable.get_name()!r}: it was not built with StateGraph. Use "
            + _ALTERNATIVES
        )
        raise TypeError(msg)
    if isinstance(graph_or_runnable, Runnable):
        return _around(
            graph_or_runnable,
            stage,
            kinds=kinds,
            documents_key=documents_key,
            query_key=query_key,
            checkpointer=checkpointer,
            name=name,
            kept=kept,
        )
    msg = "with_compression takes a compiled graph, a chat model or a runnable; use "
    raise TypeError(msg + _ALTERNATIVES)


def _copy_graph(
    graph: CompiledStateGraph[Any, Any, Any, Any],
    stage: CompressionStage,
    *,
    tools: str | Sequence[str] | None,
    messages_key: str,
    kinds: Sequence[MessageKind],
    checkpointer: Any,
    name: str | None,
    kept: Originals,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    named = None if tools is None else _names(tools)
    missing = [item for item in named or [] if item not in graph.nodes]
    if missing:
        msg = f"with_compression: no node {missing} in {graph.get_name()!r}: {list(graph.nodes)}"
        raise ValueError(msg)
    copied, wrapped = _rewired(graph, stage, named, messages_key, kinds, kept=kept)
    if not wrapped and named is None:
        msg = (
            f"with_compression found no ToolNode in {graph.get_name()!r} (nodes: "
            f"{[n for n in graph.nodes if n != START]}): name the nodes that return tool "
            f"messages with tools=[...], pass tools=() to compress only the incoming history, "
            f"or use " + _ALTERNATIVES
        )
        raise ValueError(msg)
    if not isinstance(getattr(graph.nodes[START].bound, "func", None), InputCompression):
        start = InputCompression(stage, kinds, messages_key, DECISIONS_KEY in graph.channels, kept)
        begin = RunnableLambda(start, afunc=start.acall, name="ib_middleware.compress_input")
        copied.nodes[START] = graph.nodes[START].copy({"bound": begin})
    if checkpointer is not None:
        copied.checkpointer = checkpointer
    if name is not None:
        copied.name = name
    _log.debug("with_compression: compressing the outputs of %s", wrapped)
    return copied  # type: ignore[return-value]

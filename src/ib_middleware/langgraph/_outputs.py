"""A node whose tool outputs are compressed before they leave it.

``add_compression`` and ``with_compression`` put the stage here, inside the node that makes
the tool messages (a ``ToolNode``, usually), rather than in a node of its own: then every way
out of that node (an edge, a conditional edge, a ``Command``, a ``Send`` to it) carries the
compressed messages, the graph's node names and edges stay as they were, and
``stream_mode="messages"`` shows the compressed message once, from the node that made it.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda, patch_config
from langgraph.types import Command

from ib_middleware.langgraph._common import DECISIONS_KEY, MessageKind
from ib_middleware.langgraph._messages import CompressedMessages, MessageCompressor
from ib_middleware.langgraph._originals import OriginalStore
from ib_middleware.langgraph._publish import publish_decisions
from ib_middleware.stage import CompressionStage

__all__ = ["CompressedOutputs", "InputCompression", "Originals", "compress_outputs"]


class Originals(TypedDict):
    """Where originals are kept, and whether the model sees their ids."""

    originals: OriginalStore | None
    expandable: bool


def _messages_in(value: Any, key: str) -> list[BaseMessage]:
    """The messages a node's output writes: under ``key``, in Commands, in lists of either."""
    if isinstance(value, BaseMessage):
        return [value]
    if isinstance(value, Command):
        return _messages_in(value.update, key)
    if isinstance(value, Mapping):
        return _messages_in(value.get(key), key)
    if isinstance(value, list | tuple):
        return [message for item in value for message in _messages_in(item, key)]
    return []


def _identified(messages: list[BaseMessage]) -> list[BaseMessage]:
    # The ids add_messages would give them, given now: the decisions can then name them.
    for message in messages:
        if message.id is None:
            message.id = str(uuid.uuid4())
    return messages


def _rewrite(value: Any, key: str, swap: Mapping[int, BaseMessage]) -> Any:
    """``value`` with each message found by ``_messages_in`` replaced by ``swap[id(message)]``."""
    if isinstance(value, BaseMessage):
        return swap.get(id(value), value)
    if isinstance(value, Command):
        return dataclasses.replace(value, update=_rewrite(value.update, key, swap))
    if isinstance(value, Mapping):
        return {**value, key: _rewrite(value[key], key, swap)} if key in value else value
    if isinstance(value, list):
        return [_rewrite(item, key, swap) for item in value]
    if isinstance(value, tuple):
        return tuple(_rewrite(item, key, swap) for item in value)
    return value


def _with_decisions(output: Any, key: str, decisions: list[dict[str, Any]]) -> Any:
    """``output`` that also appends ``decisions`` under ``key``, when its shape allows."""
    if isinstance(output, Mapping):
        return {**output, key: [*output.get(key, []), *decisions]}
    if isinstance(output, Command) and output.graph is None and isinstance(output.update, Mapping):
        return dataclasses.replace(output, update=_with_decisions(output.update, key, decisions))
    if isinstance(output, Command) or (
        isinstance(output, list) and any(isinstance(item, Command) for item in output)
    ):
        # LangGraph takes a list mixing Commands and plain updates.
        return [*(output if isinstance(output, list) else [output]), {key: decisions}]
    return output  # a bare list of messages (a messages-only state) has no place for them


class CompressedOutputs:
    """Runs a node, then compresses the tool messages it returns (sync and async).

    The query of each tool message is the latest human message plus the arguments of the tool
    call it answers, read from the node's input state (for a ``ToolNode`` reached by ``Send``,
    from the graph's state, as the ``ToolNode`` itself reads it).
    """

    def __init__(
        self,
        node: Runnable[Any, Any],
        stage: CompressionStage,
        *,
        name: str,
        messages_key: str = "messages",
        kinds: Sequence[MessageKind] = ("tool",),
        decisions_key: str | None = DECISIONS_KEY,
        originals: OriginalStore | None = None,
        expandable: bool = False,
    ) -> None:
        """Wrap ``node`` (named ``name`` in the graph); see ``compress_outputs``."""
        self.node = node
        self.name = name
        self.compressor = MessageCompressor(
            stage, kinds=kinds, originals=originals, expandable=expandable
        )
        self.messages_key = messages_key
        self.decisions_key = decisions_key

    def _inner(self, config: RunnableConfig) -> RunnableConfig:
        # LangGraph streams the output of every run named like the node: the node's own run
        # under another name keeps its uncompressed messages out of stream_mode="messages".
        return patch_config(config, run_name=f"{self.name}.uncompressed")

    def _history(self, input: Any, config: RunnableConfig) -> list[BaseMessage]:
        state = input
        extract = getattr(self.node, "_extract_state", None)  # a ToolNode's view of the state
        if callable(extract):
            try:
                state = extract(input, config)
            except (AttributeError, KeyError, TypeError, ValueError):
                state = input
        if isinstance(state, list):
            messages: Any = state
        elif isinstance(state, Mapping):
            messages = state.get(self.messages_key)
        else:
            messages = getattr(state, self.messages_key, None)
        return [m for m in messages or [] if isinstance(m, BaseMessage)]

    def _finish(self, output: Any, outputs: list[BaseMessage], out: CompressedMessages) -> Any:
        start = len(out.messages) - len(outputs)
        swap = {
            id(old): new
            for old, new in zip(outputs, out.messages[start:], strict=True)
            if new is not old
        }
        result = _rewrite(output, self.messages_key, swap) if swap else output
        if self.decisions_key and out.decisions:
            result = _with_decisions(result, self.decisions_key, out.decisions)
        # The node's output is what stream_mode="messages" shows: only the custom event here.
        publish_decisions(out.decisions)
        return result

    def __call__(self, input: Any, config: RunnableConfig) -> Any:
        """Run the node, then compress its tool messages."""
        output = self.node.invoke(input, self._inner(config))
        outputs = _identified(_messages_in(output, self.messages_key))
        if not outputs:
            return output
        history = self._history(input, config)
        out = self.compressor.compress([*history, *outputs], config=config, start=len(history))
        return self._finish(output, outputs, out)

    async def acall(self, input: Any, config: RunnableConfig) -> Any:
        """Async twin of ``__call__``."""
        output = await self.node.ainvoke(input, self._inner(config))
        outputs = _identified(_messages_in(output, self.messages_key))
        if not outputs:
            return output
        history = self._history(input, config)
        messages = [*history, *outputs]
        out = await self.compressor.acompress(messages, config=config, start=len(history))
        return self._finish(output, outputs, out)


def compress_outputs(
    node: Runnable[Any, Any],
    stage: CompressionStage,
    *,
    name: str,
    messages_key: str = "messages",
    kinds: Sequence[MessageKind] = ("tool",),
    decisions_key: str | None = DECISIONS_KEY,
    originals: OriginalStore | None = None,
    expandable: bool = False,
) -> Runnable[Any, Any]:
    """``node`` followed by the stage, as one runnable to put in the graph under ``name``.

    Args:
        node: The node's runnable (a ``ToolNode``, or any node that returns tool messages).
        stage: The compression stage.
        name: The node's name in the graph.
        messages_key: The state key the node writes its messages to.
        kinds: The kinds of message to compress among those it returns.
        decisions_key: The state key that receives the decisions (None: not written).
        originals: Where originals are kept (``InMemoryOriginalStore``,
            ``LangGraphOriginalStore``); None keeps them on the compressed messages.
        expandable: Show the model each changed output's id, for ``expand_context_tool``.

    Returns:
        A runnable with sync and async paths whose output is the node's, compressed.
    """
    wrapped = CompressedOutputs(
        node,
        stage,
        name=name,
        messages_key=messages_key,
        kinds=kinds,
        decisions_key=decisions_key,
        originals=originals,
        expandable=expandable,
    )
    return RunnableLambda(wrapped, afunc=wrapped.acall, name=name)


class InputCompression:
    """The graph's START step, compressing the history it is given (dict inputs only)."""

    def __init__(
        self,
        stage: CompressionStage,
        kinds: Sequence[MessageKind],
        messages_key: str,
        keep: bool,
        kept: Originals,
    ) -> None:
        self.compressor = MessageCompressor(stage, kinds=kinds, **kept)
        self.messages_key = messages_key
        self.keep = keep

    def _messages(self, input: Any) -> list[Any] | None:
        if not isinstance(input, Mapping) or not isinstance(input.get(self.messages_key), list):
            return None
        return list(convert_to_messages(input[self.messages_key]))

    def _input(self, input: Any, messages: Any, decisions: list[dict[str, Any]]) -> Any:
        publish_decisions(decisions)
        update = {**input, self.messages_key: messages}
        if self.keep and decisions:
            update[DECISIONS_KEY] = [*input.get(DECISIONS_KEY, []), *decisions]
        return update

    def __call__(self, input: Any, config: RunnableConfig) -> Any:
        messages = self._messages(input)
        if not messages:
            return input
        out = self.compressor.compress(messages, config=config)
        return self._input(input, out.messages, out.decisions)

    async def acall(self, input: Any, config: RunnableConfig) -> Any:
        messages = self._messages(input)
        if not messages:
            return input
        out = await self.compressor.acompress(messages, config=config)
        return self._input(input, out.messages, out.decisions)

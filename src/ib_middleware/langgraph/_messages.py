"""Select the messages worth compressing, run the stage on them, and write them back.

Shared by the LangGraph node, the chat-model wrapper and the agent middleware, so all of them
keep the same rules: system messages and the latest human message are never touched, messages
are never dropped or reordered (a tool call and its tool message stay paired), each replaced
message keeps its id, type, name and tool-call id, and content that is not text is left as
it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig

from ib_middleware.langgraph._cache import CompressionCache
from ib_middleware.langgraph._common import (
    KIND_TYPES,
    MARKER_KEY,
    MessageKind,
    compression_query,
    decision_record,
    latest_human_index,
    latest_human_text,
    marker,
    message_text,
)
from ib_middleware.langgraph._stage_run import arun_stage, run_stage
from ib_middleware.stage import CompressionStage, ContextItem, StageResult

__all__ = ["CompressedMessages", "MessageCompressor"]


def _replaced(message: BaseMessage, result: StageResult, text: str) -> BaseMessage:
    # A copy keeps id, type, name, tool_call_id, tool_calls and artifact: add_messages then
    # replaces the message in place, and the tool call it answers still finds it.
    metadata = {**message.response_metadata, MARKER_KEY: marker(result, quoting=text)}
    update: dict[str, Any] = {"response_metadata": metadata}
    if result.decision in ("accepted", "pruned"):
        update["content"] = result.text
    return message.model_copy(update=update)


@dataclass(frozen=True)
class CompressedMessages:
    """The outcome of compressing a message list.

    Attributes:
        messages: The full list, same length and order, with processed messages replaced.
        replaced: Only the replaced messages (same ids), as an ``add_messages`` update.
        results: The stage's result for each processed message.
        decisions: ``decision_record`` of each newly computed result (cached ones are not
            recorded twice).
        fresh: The replaced messages whose decision is in ``decisions``, in the same order.
    """

    messages: list[BaseMessage]
    replaced: list[BaseMessage] = field(default_factory=list)
    results: list[StageResult] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    fresh: list[BaseMessage] = field(default_factory=list)


@dataclass(frozen=True)
class _Task:
    index: int
    item: ContextItem
    query: str
    extra: dict[str, Any]


class MessageCompressor:
    """Selects the messages worth compressing, runs the stage on them and writes them back.

    A message is compressed when its kind is in ``kinds``, it is not a system message nor the
    latest human message, its content is text, it was not processed before (no ``MARKER_KEY``
    in its ``response_metadata``), and it is over the stage's token budget. A tool message's
    query is the latest human message plus the arguments of the tool call that produced it.

    Example:
        >>> from langchain_core.messages import AIMessage, HumanMessage, ToolCall, ToolMessage
        >>> from ib_middleware.compressors import ExtractiveCompressor
        >>> from ib_middleware.judging.online import CXMIEstimator
        >>> from ib_middleware.judging.routing import Rung
        >>> from ib_middleware.testing import FakeScorer
        >>> scorer = FakeScorer(lambda prompt, z: -1.0 if "Document" in prompt else -9.0)
        >>> stage = CompressionStage(
        ...     [Rung(ExtractiveCompressor(budget_tokens=12), threshold_bits_per_token=0.5)],
        ...     estimator=CXMIEstimator(scorer),
        ...     token_budget=10,
        ... )
        >>> call = ToolCall(name="search", args={"q": "capex"}, id="c1")
        >>> history = [
        ...     HumanMessage("What was capex?", id="h1"),
        ...     AIMessage("", tool_calls=[call], id="a1"),
        ...     ToolMessage("Capex was $1,577 million. " + "Filler. " * 40, tool_call_id="c1"),
        ... ]
        >>> out = MessageCompressor(stage).compress(history)
        >>> out.messages[2].content, out.decisions[0]["decision"]
        ('Capex was $1,577 million.', 'accepted')
    """

    def __init__(
        self,
        stage: CompressionStage,
        *,
        kinds: Sequence[MessageKind] = ("tool",),
        cache_size: int = 0,
        cache: CompressionCache | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Configure the compressor.

        Args:
            stage: The compression stage.
            kinds: Which messages may be compressed: ``tool``, ``human`` (never the latest)
                and ``ai`` (text only; tool calls are kept).
            cache_size: Remember this many results by (text, query) in a cache of this
                compressor's own, so a history sent again is not compressed again (0: none).
            cache: A cache to use instead (``CompressionCache.shared(stage)`` is shared by
                every wrapper of the stage); ``cache_size`` is then ignored.
            metadata: Extra metadata on the traced stage run.
        """
        unknown = sorted(set(kinds) - set(KIND_TYPES))
        if unknown:
            msg = f"kinds must be among {sorted(KIND_TYPES)}, got {unknown}"
            raise ValueError(msg)
        if cache_size < 0:
            msg = f"cache_size must be non-negative, got {cache_size}"
            raise ValueError(msg)
        self.stage = stage
        self.kinds: tuple[MessageKind, ...] = tuple(dict.fromkeys(kinds))
        self._types = tuple(KIND_TYPES[kind] for kind in self.kinds)
        if cache is None and cache_size:
            cache = CompressionCache(cache_size)
        self.cache = cache
        self._metadata = dict(metadata or {})

    def candidate(self, message: BaseMessage) -> str | None:
        """The text to compress when ``message`` qualifies on its own, else None.

        Position rules (system, latest human) are applied by ``compress``.
        """
        counted = self._counted(message)
        return counted[0] if counted is not None else None

    def _counted(self, message: BaseMessage) -> tuple[str, int] | None:
        """The text to compress and its token count (counted here, once), or None."""
        if isinstance(message, SystemMessage) or not isinstance(message, self._types):
            return None
        if MARKER_KEY in message.response_metadata:
            return None
        text = message_text(message)
        if text is None:
            return None
        tokens = self.stage.token_counter.count_tokens(text)
        return (text, tokens) if tokens > self.stage.token_budget else None

    def _plan(self, messages: Sequence[BaseMessage], start: int) -> list[_Task]:
        human = latest_human_text(messages)
        latest = latest_human_index(messages)
        calls = {
            call["id"]: call
            for message in messages
            if isinstance(message, AIMessage)
            for call in message.tool_calls
            if call.get("id")
        }
        tasks = []
        for index, message in enumerate(messages):
            if index == latest or index < start:
                continue
            counted = self._counted(message)
            if counted is None:
                continue
            text, tokens = counted
            extra: dict[str, Any] = {"message_id": message.id, "message_type": message.type}
            if isinstance(message, ToolMessage):
                call = calls.get(message.tool_call_id)
                tool = message.name or (call["name"] if call else None) or "unknown"
                source = f"tool:{tool}"
                query = compression_query(human, call)
                extra["tool_call_id"] = message.tool_call_id
            else:
                source, query = message.type, human
            tasks.append(_Task(index, ContextItem(text, source, tokens), query, extra))
        return tasks

    def _cached(self, task: _Task) -> StageResult | None:
        if self.cache is None:
            return None
        return self.cache.get(self.stage, task.item, task.query)

    def _remember(self, task: _Task, result: StageResult) -> None:
        if self.cache is not None:
            self.cache.put(self.stage, task.item, task.query, result)

    @staticmethod
    def _groups(tasks: Sequence[_Task]) -> dict[str, list[_Task]]:
        groups: dict[str, list[_Task]] = {}
        for task in tasks:
            groups.setdefault(task.query, []).append(task)
        return groups

    def _assemble(
        self,
        messages: Sequence[BaseMessage],
        fresh: Sequence[tuple[_Task, StageResult]],
        cached: Sequence[tuple[_Task, StageResult]],
    ) -> CompressedMessages:
        out = list(messages)
        replaced: list[BaseMessage] = []
        done = sorted([*fresh, *cached], key=lambda pair: pair[0].index)
        for task, result in done:
            out[task.index] = _replaced(messages[task.index], result, task.item.text)
            replaced.append(out[task.index])
        for task, result in fresh:
            self._remember(task, result)
        return CompressedMessages(
            messages=out,
            replaced=replaced,
            results=[result for _, result in done],
            decisions=[
                decision_record(result, quoting=task.item.text, **task.extra)
                for task, result in fresh
            ],
            fresh=[out[task.index] for task, _ in fresh],
        )

    def _split(
        self, messages: Sequence[BaseMessage], start: int
    ) -> tuple[list[_Task], list[tuple[_Task, StageResult]]]:
        todo, cached = [], []
        for task in self._plan(messages, start):
            hit = self._cached(task)
            if hit is None:
                todo.append(task)
            else:
                cached.append((task, hit))
        return todo, cached

    def compress(
        self,
        messages: Sequence[BaseMessage],
        *,
        config: RunnableConfig | None = None,
        start: int = 0,
    ) -> CompressedMessages:
        """Compress the qualifying messages, one traced stage run per distinct query.

        Only messages from position ``start`` on are candidates; the ones before it are read
        for the question and the tool calls (the history of a node's new tool outputs).
        """
        todo, cached = self._split(messages, start)
        fresh: list[tuple[_Task, StageResult]] = []
        for query, group in self._groups(todo).items():
            items = [task.item for task in group]
            results = run_stage(self.stage, items, query, config=config, metadata=self._metadata)
            fresh.extend(zip(group, results, strict=True))
        return self._assemble(messages, fresh, cached)

    async def acompress(
        self,
        messages: Sequence[BaseMessage],
        *,
        config: RunnableConfig | None = None,
        start: int = 0,
    ) -> CompressedMessages:
        """Async twin of ``compress``: the queries' stage runs proceed concurrently."""
        todo, cached = self._split(messages, start)
        groups = list(self._groups(todo).items())
        outcomes = await asyncio.gather(
            *(
                arun_stage(
                    self.stage,
                    [task.item for task in group],
                    query,
                    config=config,
                    metadata=self._metadata,
                )
                for query, group in groups
            )
        )
        fresh = [
            pair
            for (_, group), results in zip(groups, outcomes, strict=True)
            for pair in zip(group, results, strict=True)
        ]
        return self._assemble(messages, fresh, cached)

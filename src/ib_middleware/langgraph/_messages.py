"""Select the messages worth compressing, run the stage on them, and write them back.

Shared by the LangGraph node, the chat-model wrapper and the agent middleware, so all of them
keep the same rules: system messages and the latest human message are never touched, messages
are never dropped or reordered (a tool call and its tool message stay paired), each replaced
message keeps its id, type, name and tool-call id, and content that is not text is left as
it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig

from ib_middleware.errors import is_control_flow
from ib_middleware.langgraph._cache import CompressionCache
from ib_middleware.langgraph._common import (
    KIND_TYPES,
    MARKER_KEY,
    MessageKind,
    compression_query,
    latest_human_index,
    latest_human_text,
)
from ib_middleware.langgraph._originals import (
    EXPAND_TOOL_NAME,
    OriginalStore,
    akeep_originals,
    keep_originals,
)
from ib_middleware.langgraph._outcome import Outcome, judged
from ib_middleware.langgraph._shape import Shape, read_shape
from ib_middleware.langgraph._stage_run import arun_stage, run_stage
from ib_middleware.stage import CompressionStage, ContextItem, StageResult

__all__ = ["CompressedMessages", "MessageCompressor"]

_log = logging.getLogger("ib_middleware.langgraph")


@dataclass(frozen=True)
class CompressedMessages:
    """The outcome of compressing a message list.

    Attributes:
        messages: The full list, same length and order, with processed messages replaced.
        replaced: Only the replaced messages (same ids), as an ``add_messages`` update.
        results: The stage's result for each processed message (for a structured output,
            its total: the results judged one by one are in its decision record).
        decisions: ``decision_record`` of each newly computed result (cached ones are not
            recorded twice); a structured output's holds one entry per result.
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
    shape: Shape
    items: list[ContextItem]
    query: str
    extra: dict[str, Any]


@dataclass(frozen=True)
class _Done:
    task: _Task
    outcome: Outcome
    fresh: bool


class MessageCompressor:
    """Selects the messages worth compressing, runs the stage on them and writes them back.

    A message is compressed when its kind is in ``kinds``, it is not a system message nor the
    latest human message, it was not processed before (no ``MARKER_KEY`` in its
    ``response_metadata``), it is not an ``expand_context`` output, and it is over the
    stage's token budget. A tool message's query is the latest human message plus the
    arguments of the tool call that produced it.

    A tool output that is JSON, a list of content blocks, or text with an ``artifact`` holding
    its results is judged result by result, its budget the output's as a whole, and shown in
    its own shape (valid JSON stays valid JSON); plain text is one item. The original of every
    compressed or pruned output stays one call away: on the message's marker, or in
    ``originals`` (the marker then holds its id).

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
        >>> out.messages[2].response_metadata["ib_middleware"]["original"] == history[2].content
        True
    """

    def __init__(
        self,
        stage: CompressionStage,
        *,
        kinds: Sequence[MessageKind] = ("tool",),
        cache_size: int = 0,
        cache: CompressionCache | None = None,
        metadata: Mapping[str, Any] | None = None,
        originals: OriginalStore | None = None,
        expandable: bool = False,
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
            originals: Where originals are kept (the marker then holds their id); None keeps
                them on the message's marker.
            expandable: Show the model each changed output's id (``expand_context('ib-…')``,
                or ``_ib_original`` in JSON), for ``expand_context_tool``.
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
        self.originals = originals
        self.expandable = expandable

    def candidate(self, message: BaseMessage) -> str | None:
        """The text to compress when ``message`` qualifies on its own, else None.

        Position rules (system, latest human) are applied by ``compress``; a structured
        output's items are joined by blank lines.
        """
        counted = self._counted(message)
        return "\n\n".join(counted[0].texts) if counted is not None else None

    def _counted(self, message: BaseMessage) -> tuple[Shape, list[int]] | None:
        """How to read the message and its items' token counts (counted here, once), or None."""
        if isinstance(message, SystemMessage) or not isinstance(message, self._types):
            return None
        if MARKER_KEY in message.response_metadata:
            return None
        try:
            shape = read_shape(message)
        except Exception as error:  # unreadable content is left as it is
            if is_control_flow(error):
                raise
            _log.debug("content left as it is: %s", type(error).__name__)
            return None
        if shape is None:
            return None
        tokens = [self.stage.token_counter.count_tokens(text) for text in shape.texts]
        return (shape, tokens) if self.stage.over_budget(sum(tokens)) else None

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
            call = calls.get(message.tool_call_id) if isinstance(message, ToolMessage) else None
            tool = message.name or (call["name"] if call else None) or "unknown"
            if isinstance(message, ToolMessage) and tool == EXPAND_TOOL_NAME:
                continue  # an original asked for is shown as it is
            counted = self._counted(message)
            if counted is None:
                continue
            shape, tokens = counted
            extra: dict[str, Any] = {"message_id": message.id, "message_type": message.type}
            if isinstance(message, ToolMessage):
                source, query = f"tool:{tool}", compression_query(human, call)
                extra["tool_call_id"] = message.tool_call_id
            else:
                source, query = message.type, human
            items = [
                ContextItem(text, source, count, group=str(index))
                for text, count in zip(shape.texts, tokens, strict=True)
            ]
            tasks.append(_Task(index, shape, items, query, extra))
        return tasks

    def _split(
        self, messages: Sequence[BaseMessage], start: int
    ) -> tuple[list[_Task], list[tuple[_Task, list[StageResult]]]]:
        todo, cached = [], []
        for task in self._plan(messages, start):
            hit = (
                None
                if self.cache is None
                else self.cache.get_group(self.stage, task.items, task.query)
            )
            if hit is None:
                todo.append(task)
            else:
                cached.append((task, hit))
        return todo, cached

    @staticmethod
    def _groups(tasks: Sequence[_Task]) -> dict[str, list[_Task]]:
        groups: dict[str, list[_Task]] = {}
        for task in tasks:
            groups.setdefault(task.query, []).append(task)
        return groups

    @staticmethod
    def _per_task(
        group: Sequence[_Task], results: Sequence[StageResult]
    ) -> list[tuple[_Task, list[StageResult]]]:
        out, cursor = [], 0
        for task in group:
            out.append((task, list(results[cursor : cursor + len(task.items)])))
            cursor += len(task.items)
        return out

    def _done(
        self,
        messages: Sequence[BaseMessage],
        fresh: Sequence[tuple[_Task, list[StageResult]]],
        cached: Sequence[tuple[_Task, list[StageResult]]],
    ) -> list[_Done]:
        for task, results in fresh:
            if self.cache is not None:
                self.cache.put_group(self.stage, task.items, task.query, results)
        pairs = [(pair, True) for pair in fresh] + [(pair, False) for pair in cached]
        done = [
            _Done(
                task,
                judged(
                    task.shape, messages[task.index].content, results, expandable=self.expandable
                ),
                is_fresh,
            )
            for (task, results), is_fresh in pairs
        ]
        return sorted(done, key=lambda item: item.task.index)

    def _to_store(
        self, messages: Sequence[BaseMessage], done: Sequence[_Done]
    ) -> list[tuple[str, Any]]:
        if self.originals is None:
            return []
        return [(d.outcome.key, messages[d.task.index].content) for d in done if d.outcome.key]

    def _assemble(
        self, messages: Sequence[BaseMessage], done: Sequence[_Done], stored: set[str]
    ) -> CompressedMessages:
        out = list(messages)
        records: list[dict[str, Any]] = []
        fresh: list[BaseMessage] = []
        for item in done:
            task, outcome = item.task, item.outcome
            message = messages[task.index]
            quoting = "\n".join(task.shape.texts)
            mark = outcome.marker(message.content, quoting, stored=outcome.key in stored)
            update: dict[str, Any] = {
                "response_metadata": {**message.response_metadata, MARKER_KEY: mark}
            }
            if outcome.content is not message.content:
                update["content"] = outcome.content
            # A copy keeps id, type, name, tool_call_id, tool_calls and artifact: add_messages
            # then replaces the message in place, and the tool call it answers still finds it.
            out[task.index] = message.model_copy(update=update)
            if item.fresh:
                records.append(outcome.record(task.items, quoting, **task.extra))
                fresh.append(out[task.index])
        return CompressedMessages(
            messages=out,
            replaced=[out[item.task.index] for item in done],
            results=[item.outcome.total for item in done],
            decisions=records,
            fresh=fresh,
        )

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
        fresh: list[tuple[_Task, list[StageResult]]] = []
        for query, group in self._groups(todo).items():
            items = [item for task in group for item in task.items]
            results = run_stage(self.stage, items, query, config=config, metadata=self._metadata)
            fresh.extend(self._per_task(group, results))
        done = self._done(messages, fresh, cached)
        stored = keep_originals(self.originals, self._to_store(messages, done))
        return self._assemble(messages, done, stored)

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
                    [item for task in group for item in task.items],
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
            for pair in self._per_task(group, results)
        ]
        done = self._done(messages, fresh, cached)
        stored = await akeep_originals(self.originals, self._to_store(messages, done))
        return self._assemble(messages, done, stored)

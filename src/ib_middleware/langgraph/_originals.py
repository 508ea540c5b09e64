"""The original of every compressed or pruned tool output, one call away.

By default the original stays on the message (``response_metadata["ib_middleware"]
["original"]``). For large outputs a store keeps it instead and the message holds only its id
(``original_ref``): ``InMemoryOriginalStore`` (a bounded LRU) or ``LangGraphOriginalStore``
(any LangGraph ``BaseStore``, persistent across threads), or your own ``OriginalStore``.
``expand_context_tool`` is the model's own way back: given the decision id it sees in a
compressed output, it returns the original, from the store or from the messages in state.

Ids are ``ib-`` and ten hex digits of the content's hash: the same output gets the same id
on every call (a history compressed again shows the model the same text), and a message in
state whose content is the original (the per-call drop-ins keep state as it was) is found by
hashing it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Protocol, runtime_checkable

from langchain_core.messages import BaseMessage
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.prebuilt import InjectedState
from langgraph.store.base import BaseStore

from ib_middleware.errors import is_control_flow
from ib_middleware.langgraph._common import MARKER_KEY

__all__ = [
    "EXPAND_TOOL_NAME",
    "InMemoryOriginalStore",
    "LangGraphOriginalStore",
    "OriginalStore",
    "akeep_originals",
    "decision_id",
    "expand_context_tool",
    "find_original",
    "keep_originals",
]

_log = logging.getLogger("ib_middleware.langgraph")

EXPAND_TOOL_NAME = "expand_context"
"""The name of the tool that gives an original back; its outputs are never compressed."""


def decision_id(content: Any) -> str:
    """The id of a tool output's decision: ``ib-`` and ten hex digits of its content's hash.

    Example:
        >>> decision_id("some tool output") == decision_id("some tool output")
        True
        >>> len(decision_id([{"type": "text", "text": "x"}]))
        13
    """
    if isinstance(content, str):
        data = content
    else:
        data = json.dumps(content, ensure_ascii=False, sort_keys=True, default=str)
    return "ib-" + hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()[:10]


@runtime_checkable
class OriginalStore(Protocol):
    """Where originals go when they should not ride on the messages."""

    def put(self, key: str, original: Any) -> None:
        """Keep ``original`` (text or content blocks) under ``key``."""
        ...

    def get(self, key: str) -> Any | None:
        """The original kept under ``key``, or None."""
        ...

    async def aput(self, key: str, original: Any) -> None:
        """Async twin of ``put``."""
        ...

    async def aget(self, key: str) -> Any | None:
        """Async twin of ``get``."""
        ...


class InMemoryOriginalStore:
    """A thread-safe, bounded LRU of originals in this process.

    Example:
        >>> store = InMemoryOriginalStore(max_items=1)
        >>> store.put("ib-1", "first"); store.put("ib-2", "second")
        >>> store.get("ib-1"), store.get("ib-2")
        (None, 'second')
    """

    def __init__(self, max_items: int = 1024) -> None:
        """Keep at most ``max_items`` originals (the least recently used go first).

        Raises:
            ValueError: When ``max_items`` is not positive.
        """
        if max_items < 1:
            msg = f"max_items must be positive, got {max_items}"
            raise ValueError(msg)
        self.max_items = max_items
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: str, original: Any) -> None:
        """Keep ``original`` under ``key``."""
        with self._lock:
            self._items[key] = original
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def get(self, key: str) -> Any | None:
        """The original under ``key``, or None (never kept, or evicted)."""
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    async def aput(self, key: str, original: Any) -> None:
        """Async twin of ``put``."""
        self.put(key, original)

    async def aget(self, key: str) -> Any | None:
        """Async twin of ``get``."""
        return self.get(key)

    def __len__(self) -> int:
        """How many originals are kept."""
        with self._lock:
            return len(self._items)


class LangGraphOriginalStore:
    """Originals in a LangGraph ``BaseStore`` (the graph's store, say), under one namespace.

    Example:
        >>> from langgraph.store.memory import InMemoryStore
        >>> store = LangGraphOriginalStore(InMemoryStore())
        >>> store.put("ib-1", "the full page")
        >>> store.get("ib-1"), store.get("ib-2")
        ('the full page', None)
    """

    def __init__(
        self, store: BaseStore, *, namespace: tuple[str, ...] = ("ib_middleware", "originals")
    ) -> None:
        """Keep originals in ``store`` under ``namespace``."""
        self.store = store
        self.namespace = namespace

    def put(self, key: str, original: Any) -> None:
        """Keep ``original`` under ``key`` (not indexed for search)."""
        self.store.put(self.namespace, key, {"original": original}, index=False)

    def get(self, key: str) -> Any | None:
        """The original under ``key``, or None."""
        item = self.store.get(self.namespace, key)
        return None if item is None else item.value.get("original")

    async def aput(self, key: str, original: Any) -> None:
        """Async twin of ``put``."""
        await self.store.aput(self.namespace, key, {"original": original}, index=False)

    async def aget(self, key: str) -> Any | None:
        """Async twin of ``get``."""
        item = await self.store.aget(self.namespace, key)
        return None if item is None else item.value.get("original")


def keep_originals(store: OriginalStore | None, pending: Sequence[tuple[str, Any]]) -> set[str]:
    """Put each ``(id, original)`` in ``store``; the ids it kept (a failing one keeps none)."""
    stored = set()
    for key, original in pending:
        try:
            store.put(key, original)  # type: ignore[union-attr]
        except Exception as error:  # the original then stays on the message
            if is_control_flow(error):
                raise
            _log.warning(
                "original %s kept on the message: the store failed (%s)", key, type(error).__name__
            )
        else:
            stored.add(key)
    return stored


async def akeep_originals(
    store: OriginalStore | None, pending: Sequence[tuple[str, Any]]
) -> set[str]:
    """Async twin of ``keep_originals``."""
    stored = set()
    for key, original in pending:
        try:
            await store.aput(key, original)  # type: ignore[union-attr]
        except Exception as error:  # the original then stays on the message
            if is_control_flow(error):
                raise
            _log.warning(
                "original %s kept on the message: the store failed (%s)", key, type(error).__name__
            )
        else:
            stored.add(key)
    return stored


def _messages(state: Any) -> list[Any]:
    if isinstance(state, Mapping):
        messages = state.get("messages")
    else:
        messages = getattr(state, "messages", state if isinstance(state, list) else None)
    return list(messages or [])


def find_original(key: str, messages: Any) -> Any | None:
    """The original for decision ``key`` among ``messages`` (or a state holding them), or None.

    A compressed message keeps it in its marker; a message left as it was (the per-call
    drop-ins compress copies) is the original itself.

    Example:
        >>> from langchain_core.messages import ToolMessage
        >>> page = ToolMessage("the full page", tool_call_id="c1")
        >>> find_original(decision_id("the full page"), [page])
        'the full page'
    """
    for message in reversed(_messages(messages)):
        if not isinstance(message, BaseMessage):
            continue
        mark = message.response_metadata.get(MARKER_KEY)
        if isinstance(mark, Mapping) and mark.get("id") == key and "original" in mark:
            return mark["original"]
        if mark is None and decision_id(message.content) == key:
            return message.content
    return None


def _missing(key: str) -> str:
    return (
        f"No original is kept for {key!r}: it may have been evicted, or the id is mistyped. "
        "Work with the compressed output, or call the tool that produced it again."
    )


def expand_context_tool(
    store: OriginalStore | None = None, *, name: str = EXPAND_TOOL_NAME
) -> BaseTool:
    """A tool the model calls with a decision id to read a compressed tool output in full.

    Give it to the agent with its other tools, and make the drop-in show ids
    (``expandable=True``; ``IBMiddleware(stage, expand_tool=True)`` adds it for you). The
    original is read from ``store`` when given, else from the messages in the graph's state.
    Its own outputs are never compressed.

    Example:
        >>> store = InMemoryOriginalStore()
        >>> store.put("ib-3f2a9c1d00", "the full page")
        >>> tool = expand_context_tool(store)
        >>> tool.name, tool.invoke({"id": "ib-3f2a9c1d00", "state": {"messages": []}})
        ('expand_context', 'the full page')
    """

    def expand(id: str, state: Annotated[Any, InjectedState]) -> Any:
        found = store.get(id) if store is not None else None
        if found is None:
            found = find_original(id, state)
        return _missing(id) if found is None else found

    async def aexpand(id: str, state: Annotated[Any, InjectedState]) -> Any:
        found = await store.aget(id) if store is not None else None
        if found is None:
            found = find_original(id, state)
        return _missing(id) if found is None else found

    return StructuredTool.from_function(
        func=expand,
        coroutine=aexpand,
        name=name,
        description=(
            "Read a compressed or pruned tool output in full. Call it with the id shown in "
            "that output (after 'original:' or under '_ib_original'), only when the "
            "compressed output lacks what you need."
        ),
    )

"""The LangGraph node that puts the stage in front of an orchestrator."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, TypedDict

from langchain_core.documents import Document
from langchain_core.messages import AnyMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langgraph.graph.message import add_messages

from ib_middleware.langgraph._common import (
    DECISIONS_KEY,
    MARKER_KEY,
    Decisions,
    MessageKind,
    decision_record,
    latest_human_text,
    marker,
)
from ib_middleware.langgraph._messages import CompressedMessages, MessageCompressor
from ib_middleware.langgraph._originals import OriginalStore
from ib_middleware.langgraph._publish import StateKeyCheck, publish_decisions
from ib_middleware.langgraph._stage_run import arun_stage, run_stage
from ib_middleware.stage import CompressionStage, ContextItem, StageResult

__all__ = ["CompressionState", "compression_node"]

DocumentLike = str | Document


class CompressionState(TypedDict, total=False):
    """A ready-made state: messages (``add_messages``) and the decisions (appended).

    Attributes:
        messages: The conversation.
        ib_decisions: One JSON-ready dict per decision, in order (see ``DECISIONS_KEY``).
    """

    messages: Annotated[list[AnyMessage], add_messages]
    ib_decisions: Decisions


def _get(state: Any, key: str) -> Any:
    if isinstance(state, Mapping):
        return state.get(key)
    return getattr(state, key, None)


def _document_text(document: DocumentLike) -> str:
    return document if isinstance(document, str) else document.page_content


def _document_out(document: DocumentLike, result: StageResult) -> DocumentLike:
    if isinstance(document, str):
        return result.text
    metadata = {**document.metadata, MARKER_KEY: marker(result, quoting=document.page_content)}
    return Document(page_content=result.text, metadata=metadata, id=document.id)


class _Node:
    """The state-in, update-out function behind ``compression_node`` (sync and async)."""

    def __init__(
        self,
        stage: CompressionStage,
        *,
        messages_key: str | None,
        kinds: Sequence[MessageKind],
        documents_key: str | None,
        query_key: str | None,
        decisions_key: str | None,
        originals: OriginalStore | None,
        expandable: bool,
    ) -> None:
        self.stage = stage
        self.messages = (
            MessageCompressor(stage, kinds=kinds, originals=originals, expandable=expandable)
            if messages_key
            else None
        )
        self.messages_key = messages_key
        self.documents_key = documents_key
        self.query_key = query_key
        self.decisions_key = decisions_key
        self.check = StateKeyCheck(decisions_key)

    def _history(self, state: Any) -> list[BaseMessage]:
        if self.messages_key is None:
            return []
        return list(_get(state, self.messages_key) or [])

    def _query(self, state: Any) -> str:
        if self.query_key is not None:
            value = _get(state, self.query_key)
            if isinstance(value, str) and value:
                return value
        return latest_human_text(self._history(state))

    def _documents(self, state: Any) -> tuple[list[DocumentLike], list[int], list[ContextItem]]:
        if self.documents_key is None:
            return [], [], []
        documents = list(_get(state, self.documents_key) or [])
        todo = [
            index
            for index, document in enumerate(documents)
            if isinstance(document, str) or MARKER_KEY not in document.metadata
        ]
        items = [
            ContextItem(_document_text(documents[index]), self._source(documents[index], index))
            for index in todo
        ]
        return documents, todo, items

    @staticmethod
    def _source(document: DocumentLike, index: int) -> str:
        if isinstance(document, Document) and document.metadata.get("source"):
            return f"document:{document.metadata['source']}"
        return f"document:{index}"

    def _update(
        self,
        state: Any,
        out: CompressedMessages | None,
        documents: list[DocumentLike],
        todo: list[int],
        results: list[StageResult],
    ) -> dict[str, Any]:
        update: dict[str, Any] = {}
        decisions: list[dict[str, Any]] = []
        if out is not None and out.replaced and self.messages_key:
            update[self.messages_key] = out.replaced
            decisions.extend(out.decisions)
        if self.documents_key is not None and todo:
            forwarded = list(documents)
            for index, result in zip(todo, results, strict=True):
                forwarded[index] = _document_out(documents[index], result)
                text = _document_text(documents[index])
                decisions.append(decision_record(result, quoting=text, document_index=index))
            update[self.documents_key] = forwarded
        # The replaced messages keep their ids, so LangGraph would not stream them again:
        # they are pushed to stream_mode="messages" here, with the decisions to "custom".
        publish_decisions(decisions, out.fresh if out is not None else ())
        if decisions and self.decisions_key:
            self.check.state(state)  # a graph drops the key its state lacks: say so, once
            update[self.decisions_key] = decisions
        return update

    def __call__(self, state: Any, config: RunnableConfig) -> dict[str, Any]:
        out = None
        if self.messages is not None:
            out = self.messages.compress(self._history(state), config=config)
        documents, todo, items = self._documents(state)
        results = run_stage(self.stage, items, self._query(state), config=config) if items else []
        return self._update(state, out, documents, todo, results)

    async def acall(self, state: Any, config: RunnableConfig) -> dict[str, Any]:
        """Async twin of ``__call__``."""
        documents, todo, items = self._documents(state)
        pending: list[Any] = []
        if self.messages is not None:
            pending.append(self.messages.acompress(self._history(state), config=config))
        if items:
            pending.append(arun_stage(self.stage, items, self._query(state), config=config))
        done = list(await asyncio.gather(*pending))
        out = done.pop(0) if self.messages is not None else None
        results = done.pop(0) if items else []
        return self._update(state, out, documents, todo, results)


def compression_node(
    stage: CompressionStage,
    *,
    messages_key: str | None = "messages",
    kinds: Sequence[MessageKind] = ("tool",),
    documents_key: str | None = None,
    query_key: str | None = None,
    decisions_key: str | None = DECISIONS_KEY,
    name: str = "compress",
    originals: OriginalStore | None = None,
    expandable: bool = False,
) -> Runnable[Any, dict[str, Any]]:
    """A node that compresses the raw context in state before the orchestrator reads it.

    By default it compresses the tool messages over the stage's token budget under
    ``messages_key`` and returns each as a copy with the same id and ``tool_call_id``, so the
    ``add_messages`` reducer replaces it in place: no message is dropped or moved, every tool
    call keeps its answer, and system messages and the latest human message are never
    touched. A processed message is marked (``response_metadata["ib_middleware"]``) and not
    processed again. With ``documents_key`` it also compresses the documents (strings or
    ``Document``) in that key and writes the list back (use a key without a reducer).

    The query is ``state[query_key]`` when given, else the latest human message; a tool
    message's query adds the arguments of the call that produced it. Decisions are appended
    under ``decisions_key`` as JSON-ready dicts with no text: declare it in your state as
    ``ib_decisions: Decisions`` (``CompressionState`` does); a state without it gets one
    logged warning, and the decisions stay on the messages. While a graph streams, each
    compressed message is pushed to ``stream_mode="messages"`` (it keeps its id, so LangGraph
    would not show it again) and the decisions go to ``stream_mode="custom"`` as
    ``{"ib_decisions": [...]}``.

    Args:
        stage: The compression stage.
        messages_key: State key of the messages (None to leave messages alone).
        kinds: Message kinds to compress: ``tool``, ``human`` (older ones), ``ai``.
        documents_key: State key of documents to compress, if any.
        query_key: State key of the query, if not the latest human message.
        decisions_key: State key that receives the decisions (None: not recorded).
        name: The node's run name.
        originals: Where originals are kept (``InMemoryOriginalStore``,
            ``LangGraphOriginalStore``); None keeps them on the compressed messages.
        expandable: Show the model each changed output's id, for ``expand_context_tool``.

    Returns:
        A runnable with sync and async paths, for ``StateGraph.add_node``.

    Example:
        ::

            from langgraph.graph import START, StateGraph
            from ib_middleware.build import build_stage
            from ib_middleware.langgraph import CompressionState, compression_node

            builder = StateGraph(CompressionState)
            builder.add_node("compress", compression_node(build_stage()))
            builder.add_node("agent", call_model)
            builder.add_edge(START, "compress")
            builder.add_edge("compress", "agent")
    """
    if messages_key is None and documents_key is None:
        msg = "compression_node needs messages_key or documents_key: there is nothing to compress"
        raise ValueError(msg)
    node = _Node(
        stage,
        messages_key=messages_key,
        kinds=kinds,
        documents_key=documents_key,
        query_key=query_key,
        decisions_key=decisions_key,
        originals=originals,
        expandable=expandable,
    )
    return RunnableLambda(node, afunc=node.acall, name=name)

"""A message's content as the stage's items, and the same shape back from their results.

Four shapes, read once here: JSON text (what ``ToolNode`` makes of a dict or a list), a list
of content blocks (each text block a result, or one block holding JSON), text with an
``artifact`` holding its results (each result's text found in the content), and plain text
(one item, as before). JSON in gives valid JSON out: the value is rebuilt and dumped, never
cut as text. A value with nothing to judge, or an artifact whose results are not all found in
the text, is read as the next shape down; content with no text at all is left alone.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from ib_middleware.langgraph._common import message_text
from ib_middleware.langgraph._structured import LABEL_KEYS, Unit, rebuild, units
from ib_middleware.stage import StageResult

__all__ = ["Shape", "read_shape", "trailer"]

Kind = Literal["text", "json", "blocks", "artifact"]


def trailer(decision: str, reference: str) -> str:
    """The line that tells the model how to get an original back.

    Example:
        >>> trailer("accepted", "ib-3f2a9c1d")
        "[compressed; original: expand_context('ib-3f2a9c1d')]"
    """
    word = "compressed" if decision == "accepted" else decision
    return f"[{word}; original: expand_context('{reference}')]"


@dataclass(frozen=True)
class Shape:
    """How a message's content was read, and how to write it back.

    Attributes:
        kind: ``text``, ``json``, ``blocks`` (content blocks as results) or ``artifact``.
        texts: The items' texts, in order.
        units: The structured units behind them (empty for text).
        value: The parsed JSON, the block list or the artifact's value.
        block: For JSON held in one content block, that block's position.
        spans: For an artifact, where each unit's body fields sit in the text.
    """

    kind: Kind
    texts: list[str]
    content: str | list[Any]
    units: list[Unit] = field(default_factory=list)
    value: Any = None
    block: int | None = None
    spans: list[list[tuple[int, int, str]]] = field(default_factory=list)

    def write(self, results: Sequence[StageResult], *, reference: str = "") -> str | list[Any]:
        """The content with each item as its result decided (the original when none changed)."""
        if self.kind == "text":
            [result] = results
            if result.decision not in ("accepted", "pruned"):
                return self.content
            return (
                f"{result.text}\n{trailer(result.decision, reference)}"
                if reference
                else result.text
            )
        if all(result.decision not in ("accepted", "pruned") for result in results):
            return self.content
        if self.kind == "artifact":
            return self._write_artifact(results, reference)
        if self.kind == "blocks":
            blocks = rebuild(self.value, self.units, results)
            return (
                [*blocks, {"type": "text", "text": trailer("accepted", reference)}]
                if reference
                else blocks
            )
        dumped = json.dumps(
            rebuild(self.value, self.units, results, reference=reference), ensure_ascii=False
        )
        if self.block is None:
            return dumped
        blocks = list(self.content)
        original = blocks[self.block]
        blocks[self.block] = (
            {**original, "text": dumped} if isinstance(original, Mapping) else dumped
        )
        return blocks

    def _write_artifact(self, results: Sequence[StageResult], reference: str) -> str:
        text = str(self.content)
        edits: list[tuple[int, int, str]] = []
        for unit, spans, result in zip(self.units, self.spans, results, strict=True):
            node = _at(self.value, unit.path)
            new = rebuild({"r": node}, [dataclasses.replace(unit, path=("r",))], [result])["r"]
            if new is node:
                continue
            for position, (start, end, name) in enumerate(spans):
                if isinstance(new, str):
                    edits.append((start, end, new))
                elif "note" in new:
                    edits.append((start, end, f"[{new['note']}]" if position == 0 else ""))
                else:
                    edits.append((start, end, str(new.get(name, text[start:end]))))
        for start, end, replacement in sorted(edits, reverse=True):
            text = text[:start] + replacement + text[end:]
        return f"{text}\n{trailer('accepted', reference)}" if reference else text


def _at(value: Any, path: Sequence[str | int]) -> Any:
    for step in path:
        value = value[step]
    return value


def _parsed(text: str) -> tuple[Any, list[Unit]] | None:
    stripped = text.strip()
    if not stripped or stripped[0] not in '[{"':
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return value, units(value)


def _jsonable(value: Any) -> Any:
    """An artifact as JSON-like data: documents and models become plain dicts."""
    if isinstance(value, Document):
        return {
            **{k: v for k, v in value.metadata.items() if k in LABEL_KEYS},
            "page_content": value.page_content,
        }
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def _located(text: str, found: Sequence[Unit]) -> list[list[tuple[int, int, str]]] | None:
    """Where each result's body fields are in ``text``, in order; None when one is missing."""
    cursor = 0
    located = []
    for unit in found:
        spans = []
        for name, value in unit.fields:
            if name in LABEL_KEYS:
                continue
            start = text.find(value, cursor)
            if start < 0:
                return None
            spans.append((start, start + len(value), name))
            cursor = start + len(value)
        located.append(spans)
    return located


def _from_artifact(message: BaseMessage, text: str) -> Shape | None:
    artifact = getattr(message, "artifact", None)
    if artifact is None:
        return None
    value = _jsonable(artifact)
    found = [unit for unit in units(value) if unit.result]
    spans = _located(text, found) if found else None
    if spans is None:
        return None
    return Shape("artifact", [unit.text() for unit in found], text, found, value, spans=spans)


def _from_blocks(content: list[Any]) -> Shape | None:
    texts = [
        i
        for i, block in enumerate(content)
        if isinstance(block, str) or (isinstance(block, Mapping) and block.get("type") == "text")
    ]
    if len(texts) < len(content):
        return None  # an image or a file block: content that is not only text is left alone
    if len(texts) == 1:
        block = content[texts[0]]
        parsed = _parsed(block if isinstance(block, str) else str(block.get("text", "")))
        if parsed is not None and parsed[1]:
            value, found = parsed
            return Shape("json", [unit.text() for unit in found], content, found, value, texts[0])
    found = units(content)
    if found and all(unit.result for unit in found):
        return Shape("blocks", [unit.text() for unit in found], content, found, content)
    return None


def read_shape(message: BaseMessage) -> Shape | None:
    r"""How to judge ``message``'s content, or None to leave it alone.

    Example:
        >>> from langchain_core.messages import ToolMessage
        >>> results = [{"title": "A", "content": "Alpha."}, {"title": "B", "content": "Beta."}]
        >>> shape = read_shape(ToolMessage(json.dumps({"results": results}), tool_call_id="c1"))
        >>> shape.kind, shape.texts
        ('json', ['title: A\ncontent: Alpha.', 'title: B\ncontent: Beta.'])
    """
    content = message.content
    if isinstance(content, list):
        shape = _from_blocks(content)
        if shape is not None:
            return shape
    text = message_text(message)
    if text is None:
        return None
    parsed = _parsed(text) if isinstance(content, str) else None
    if parsed is not None:
        value, found = parsed
        return (
            Shape("json", [unit.text() for unit in found], content, found, value) if found else None
        )
    shape = _from_artifact(message, text) if isinstance(content, str) else None
    return shape or Shape("text", [text], content)

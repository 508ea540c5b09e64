"""Tool outputs read as structure: the results of a search, the long fields of a record.

A tool output that is JSON (``ToolNode`` sends a dict or a list as JSON text) is parsed once
here, at the edge, into *units*: each result of a list of results (a list of objects, or an
object holding one under ``results``, ``documents``, ``hits``, ...), and each long text field
elsewhere (a record, an API response). A unit's text is what the stage judges: its text fields
with their names, the title first, so the selection and the estimate see which result it is.
``rebuild`` puts the judged units back into a copy of the value: a kept unit whole, a
compressed one with its text fields replaced by the selection (its other fields as they
were), a pruned result as a one-line note object that keeps its title and url.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ib_middleware.segments import ELISION
from ib_middleware.stage import StageResult

__all__ = ["Unit", "note_text", "rebuild", "units"]

LABEL_KEYS = ("title", "name", "heading", "headline")
"""Fields that say which result it is: kept on every result, first in its text."""

BODY_KEYS = frozenset(
    {
        "content",
        "snippet",
        "text",
        "body",
        "summary",
        "description",
        "page_content",
        "raw_content",
        "abstract",
        "excerpt",
        "answer",
        "passage",
        "chunk",
        "markdown",
        "extract",
    }
)
"""Fields read as text whatever their length."""

NOTE_KEYS = (*LABEL_KEYS, "url", "link", "href", "source", "id", "type")
"""Fields a pruned result's note keeps."""

_NOT_TEXT = frozenset({"url", "link", "href", "id", "type", "date", "published_date", "source"})
_WORDY = 8  # words that make an unnamed string field text
_LONG = 24  # words that make a record's field worth judging
_DEPTH = 6


def _words(value: str) -> int:
    return len(value.split())


def _is_text(key: str, value: Any) -> bool:
    if not isinstance(value, str) or not value.strip() or key in _NOT_TEXT:
        return False
    return key in BODY_KEYS or key in LABEL_KEYS or _words(value) >= _WORDY


def _is_body(key: str, value: Any) -> bool:
    return _is_text(key, value) and key not in LABEL_KEYS


def _is_results(value: Any) -> bool:
    """A list whose elements are results: objects with a body field, or passages."""
    if not isinstance(value, list) or not value:
        return False
    if all(isinstance(element, str) for element in value):
        return any(_words(element) >= _WORDY for element in value)
    if not all(isinstance(element, Mapping) for element in value):
        return False
    return any(any(_is_body(str(k), v) for k, v in element.items()) for element in value)


@dataclass(frozen=True)
class Unit:
    """One judged part of a structured output.

    Attributes:
        path: Keys and indices from the root to it.
        fields: Its text fields, ``(name, value)``, the title first; a bare string's name
            is ``""``.
        result: Whether it is one result of a list (pruned to a note) or a record's field.
    """

    path: tuple[str | int, ...]
    fields: tuple[tuple[str, str], ...]
    result: bool

    @property
    def named(self) -> bool:
        """Whether its text shows field names (a result with more than one text field)."""
        return len(self.fields) > 1 or (not self.result and bool(self.fields[0][0]))

    def text(self) -> str:
        """What the stage judges: ``name: value`` lines, or the bare value."""
        if not self.named:
            return self.fields[0][1]
        return "\n".join(f"{name}: {value}" for name, value in self.fields)


def _result_unit(path: tuple[str | int, ...], value: Any) -> Unit | None:
    if isinstance(value, str):
        return Unit(path, (("", value),), result=True) if value.strip() else None
    fields = [(str(key), text) for key, text in value.items() if _is_text(str(key), text)]
    if not any(name not in LABEL_KEYS for name, _ in fields):
        return None
    fields.sort(key=lambda field: field[0] not in LABEL_KEYS)
    return Unit(path, tuple(fields), result=True)


def units(value: Any) -> list[Unit]:
    r"""The results and long text fields of a JSON value, in document order.

    Example:
        >>> found = units({"query": "q", "results": [{"title": "A", "content": "Alpha text."}]})
        >>> [(unit.path, unit.text()) for unit in found]
        [(('results', 0), 'title: A\ncontent: Alpha text.')]
    """
    found: list[Unit] = []

    def walk(node: Any, path: tuple[str | int, ...], key: str) -> None:
        if len(path) > _DEPTH:
            return
        if _is_results(node):
            for index, element in enumerate(node):
                unit = _result_unit((*path, index), element)
                if unit is not None:
                    found.append(unit)
        elif isinstance(node, Mapping):
            for name, child in node.items():
                walk(child, (*path, str(name)), str(name))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, (*path, index), key)
        elif isinstance(node, str) and _words(node) >= _LONG and key not in _NOT_TEXT:
            found.append(Unit(path, ((key, node),), result=False))

    walk(value, (), "")
    return found


def note_text(tokens: int) -> str:
    """What a pruned result says in place of its text.

    Example:
        >>> note_text(412)
        'nothing relevant to the question; 412 tokens omitted'
    """
    return f"nothing relevant to the question; {tokens} tokens omitted"


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _mapped(unit: Unit, compression: str) -> dict[str, str]:
    """The unit's fields with the selection's lines put back where they came from.

    A selection copies lines of the unit's text: each goes back to the field holding it (a
    gap between lines of one field shows as ``[…]``). A line found in no field (an
    abstractive summary) puts the whole compression in the longest body field. Body fields
    the selection left out read ``[…]``; the title stays.
    """
    labelled = [
        (name, _collapse(f"{name}: {value}" if unit.named else value))
        for name, value in unit.fields
    ]
    pieces: dict[str, list[str]] = {}
    gap = False
    for raw in compression.splitlines():
        line = _collapse(raw)
        if not line or line == ELISION:
            gap = gap or line == ELISION
            continue
        owner = next((name for name, text in labelled if line in text), None)
        if owner is None:
            bodies = [field for field in unit.fields if field[0] not in LABEL_KEYS]
            main = max(bodies, key=lambda field: len(field[1]))[0]
            return {**_left_out(unit), main: compression.strip()}
        piece = line.removeprefix(f"{owner}: ") if unit.named else line
        joined = pieces.setdefault(owner, [])
        joined.append(f"{ELISION} {piece}" if gap and joined else piece)
        gap = False
    return {**_left_out(unit), **{name: " ".join(parts) for name, parts in pieces.items()}}


def _left_out(unit: Unit) -> dict[str, str]:
    return {name: ELISION for name, _ in unit.fields if name not in LABEL_KEYS}


def _changed(unit: Unit, node: Any, result: StageResult) -> Any:
    """The unit's new value for its result's decision (the value itself when kept)."""
    if result.decision == "pruned":
        note = note_text(result.input_tokens)
        if isinstance(node, str) or not unit.result:
            return f"[{note}]"
        if node.get("type") == "text" and "text" in node:  # a content block stays one
            return {**node, "text": f"[{note}]"}
        kept = {key: node[key] for key in NOTE_KEYS if key in node and key != "type"}
        return {**kept, "note": note}
    if result.decision != "accepted":
        return node
    fields = _mapped(unit, result.text)
    if isinstance(node, str):
        return fields[unit.fields[0][0]]
    return {key: fields.get(key, value) for key, value in node.items()}


def _get(value: Any, path: Sequence[str | int]) -> Any:
    for step in path:
        value = value[step]
    return value


def _set(value: Any, path: Sequence[str | int], new: Any) -> Any:
    """A copy of ``value`` with ``new`` at ``path`` (the containers on the way copied)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, list):
        copied = list(value)
        copied[int(head)] = _set(value[int(head)], rest, new)
        return copied
    return {**value, head: _set(value[head], rest, new)}


def rebuild(
    value: Any, found: Sequence[Unit], results: Sequence[StageResult], *, reference: str = ""
) -> Any:
    """``value`` with each unit as its result decided; ``reference`` marks changed results.

    ``reference`` (a decision id, when the model can ask for the original) is written under
    ``_ib_original``: once at the top of an object, else on each changed result object.

    Example:
        >>> value = {"results": [{"title": "A", "url": "u", "content": "Alpha text here."}]}
        >>> pruned = StageResult("", "pruned", None, "", "tool:search", 412, 9)
        >>> rebuild(value, units(value), [pruned])["results"][0]
        {'title': 'A', 'url': 'u', 'note': 'nothing relevant to the question; 412 tokens omitted'}
    """
    out = value
    changed = False
    for unit, result in zip(found, results, strict=True):
        node = _get(value, unit.path)
        new = _changed(unit, node, result)
        if new is node:
            continue
        changed = True
        if reference and isinstance(new, dict) and not isinstance(value, dict):
            new = {**new, "_ib_original": reference}
        out = _set(out, unit.path, new)
    if changed and reference and isinstance(out, dict):
        out = {**out, "_ib_original": reference}
    return out

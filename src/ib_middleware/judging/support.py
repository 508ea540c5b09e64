"""Figures and named entities of a text, and whether a context supports each of them.

A compression that states a figure or a name its context does not hold is wrong however much
information it carries, so the accept rule checks every one exactly. Figures are compared as
numbers after normalisation: ``1,577``, ``$1,577``, ``(1,577)``, ``-1,577`` and ``1577.0`` are
one value; ``$1.6 billion`` is supported by ``1,577`` (in millions, as a table header would say)
because it is that value rounded to the precision written; a year inside ``FY2018`` is the year
2018. Entities are capitalised words and names mixed with digits (``3M``, ``PP&E``) that do not
open a sentence; they are compared case-insensitively as words of the context or the query.

A figure must also sit where the context puts it: each line of the compression is matched to
the context's sentence or table row that shares most with it (BM25 over words and numbers), and
a figure absent from that segment is *misplaced*: a swapped column, row or year. Years are
exempt (a table states them in its header, not in the row).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

from ib_middleware.segments import bm25_scores, is_value_line, split_segments

__all__ = ["ContentSpan", "content_spans", "unsupported_content"]

_SCALES = {
    "thousand": Decimal(10) ** 3,
    "thousands": Decimal(10) ** 3,
    "million": Decimal(10) ** 6,
    "millions": Decimal(10) ** 6,
    "mn": Decimal(10) ** 6,
    "mm": Decimal(10) ** 6,
    "billion": Decimal(10) ** 9,
    "billions": Decimal(10) ** 9,
    "bn": Decimal(10) ** 9,
    "trillion": Decimal(10) ** 12,
}
_UNIT_SCALES = (Decimal(1), Decimal(10) ** 3, Decimal(10) ** 6, Decimal(10) ** 9)

_FIGURE = re.compile(
    r"(?<![\w.,])"
    r"(?:FY|Q[1-4])?"
    r"(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?![\w]|[.,]\d)"
    r"(?:\s*(?P<percent>%|percent\b))?"
    r"(?:\s+(?P<scale>thousands?|millions?|billions?|trillion|bn|mn|mm)\b)?",
    re.IGNORECASE,
)
_MONTH_BEFORE = re.compile(
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s*$", re.IGNORECASE
)
_WORD_ONLY = re.compile(r"[A-Za-z]{2,}")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'$\d])")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9&'\-]*")
_SENTENCE_OPENER = re.compile(r"(?:^|[.!?:;]\s+|\n\s*|[\"(\[]\s*)$")
_NOT_ENTITIES = frozenset(
    (  # noqa: SIM905  # a word list reads better as words
        "i a an the this that these those it its in on at of for to and or but by as is was "
        "were be not no yes total net january february march april may june july august "
        "september october november december monday tuesday wednesday thursday friday"
    ).split()
)


@dataclass(frozen=True)
class ContentSpan:
    """A figure or a named entity in a text.

    Attributes:
        kind: ``figure``, ``entity`` or, when the support check places a figure of the
            context on the wrong line, ``misplaced figure``.
        start: Character offset where the span starts.
        end: Character offset just past the span.
        text: The span as written.
    """

    kind: Literal["figure", "entity", "misplaced figure"]
    start: int
    end: int
    text: str


def _figure_spans(text: str) -> list[ContentSpan]:
    spans = []
    for match in _FIGURE.finditer(text):
        number = match.group("number")
        digits = number.replace(",", "").replace(".", "")
        # A lone small integer ("3 segments", "Note 5") states no figure worth checking.
        if len(digits) < 2 and not match.group("percent") and not match.group("scale"):
            continue
        spans.append(ContentSpan("figure", match.start(), match.end(), match.group(0)))
    return spans


def _entity_spans(text: str, figures: list[ContentSpan]) -> list[ContentSpan]:
    taken = [(span.start, span.end) for span in figures]
    spans = []
    for match in _WORD.finditer(text):
        word = match.group(0).rstrip("'-")
        has_upper = any(char.isupper() for char in word)
        has_digit = any(char.isdigit() for char in word)
        has_alpha = any(char.isalpha() for char in word)
        if not has_upper or not has_alpha or word.lower() in _NOT_ENTITIES:
            continue
        if any(start <= match.start() < end for start, end in taken):
            continue
        mixed = has_digit or sum(char.isupper() for char in word) > 1
        if not mixed and _SENTENCE_OPENER.search(text[: match.start()]):
            continue  # a capital that opens a sentence says nothing about a name
        if re.fullmatch(r"(?:FY|Q[1-4])\d+", word, re.IGNORECASE):
            continue
        spans.append(ContentSpan("entity", match.start(), match.start() + len(word), word))
    return spans


def content_spans(text: str) -> list[ContentSpan]:
    """The figures and entities of ``text``, in order.

    Example:
        >>> [span.text for span in content_spans("In FY2018 3M spent $1,577 million on PP&E.")]
        ['FY2018', '3M', '$1,577 million', 'PP&E']
    """
    figures = _figure_spans(text)
    for index, span in enumerate(figures):
        if text[max(0, span.start - 1) : span.start] == "$":
            figures[index] = ContentSpan("figure", span.start - 1, span.end, "$" + span.text)
    spans = figures + _entity_spans(text, figures)
    return sorted(spans, key=lambda span: span.start)


def _value(span_text: str) -> tuple[Decimal, int, Decimal | None] | None:
    """A figure's absolute number, its decimals as written, and its scale word's factor."""
    match = _FIGURE.search(span_text.lstrip("$"))
    if match is None:
        return None
    number = match.group("number").replace(",", "")
    try:
        value = abs(Decimal(number))
    except InvalidOperation:
        return None
    decimals = len(number.split(".")[1]) if "." in number else 0
    scale = match.group("scale")
    return value, decimals, _SCALES[scale.lower()] if scale else None


def _figure_values(text: str) -> list[tuple[Decimal, Decimal | None]]:
    values = []
    for span in _figure_spans(text):
        parsed = _value(span.text)
        if parsed is not None:
            values.append((parsed[0], parsed[2]))
    return values


def _figure_supported(span_text: str, context_values: list[tuple[Decimal, Decimal | None]]) -> bool:
    parsed = _value(span_text)
    if parsed is None:
        return True
    value, decimals, scale = parsed
    # Equal numbers support each other unless both state a scale and the scales differ
    # ("$1,577 billion" is not "$1,577 million"; a bare "1,577" may sit under any header).
    if any(
        value == candidate and (scale is None or other is None or scale == other)
        for candidate, other in context_values
    ):
        return True
    if scale is None:
        return False
    # "$1.6 billion" against "1,577" under a "(Millions)" header: the same value rounded.
    stated = value * scale
    quantum = scale / (Decimal(10) ** decimals)
    for candidate, candidate_scale in context_values:
        units = (candidate_scale,) if candidate_scale is not None else _UNIT_SCALES
        for unit in units:
            absolute = candidate * unit
            if abs(absolute - stated) * 2 <= quantum and absolute >= quantum:
                return True
    return False


def _words(text: str) -> set[str]:
    return {match.group(0).rstrip("'-").lower() for match in _WORD.finditer(text)} | {
        match.group(0).rstrip("'-").lower().removesuffix("'s") for match in _WORD.finditer(text)
    }


def _is_year(span_text: str) -> bool:
    parsed = _value(span_text)
    return (
        parsed is not None
        and parsed[1] == 0
        and parsed[2] is None
        and 1900 <= parsed[0] <= 2100
        and "," not in span_text
        and "$" not in span_text
    )


def _exempt(text: str, span: ContentSpan) -> bool:
    """Years and days of the month: dates that headers, not rows, state."""
    if _is_year(span.text):
        return True
    return bool(_MONTH_BEFORE.search(text[: span.start])) and len(span.text) <= 2


def _units(text: str) -> list[tuple[int, int]]:
    """Character ranges of the sentences and rows of ``text``.

    A line of figures only (a table cell) joins the line above it; prose splits into sentences.
    """
    units: list[list[int]] = []
    offset = 0
    for line in text.split("\n"):
        end = offset + len(line)
        if units and line.strip() and is_value_line(line):
            units[-1][1] = end
        elif line.strip():
            cursor = offset
            for match in _SENTENCE_BREAK.finditer(line):
                units.append([cursor, offset + match.start()])
                cursor = offset + match.end()
            units.append([cursor, end])
        offset = end + 1
    return [(start, end) for start, end in units if text[start:end].strip()]


def _misplaced(text: str, context: str) -> list[ContentSpan]:
    """Figures of ``text`` that the context states, but not on the line ``text`` puts them."""
    units = [s for s in split_segments(context) if s.kind != "header"]
    segments = [s.text for s in units]
    if not segments:
        return []
    flat = " ".join(context.split())
    misplaced: list[ContentSpan] = []
    for start, end in _units(text):
        piece = text[start:end]
        figures = [
            span
            for span in _figure_spans(piece)
            if not _exempt(piece, span) and _value(span.text) is not None
        ]
        if not figures or " ".join(piece.split()) in flat:
            continue  # a verbatim quote is where the context puts it
        # Match the line by its words, not by the figures being checked: a swapped-in figure
        # would otherwise pull its own row in.
        label = piece
        for span in sorted(figures, key=lambda span: -span.start):
            label = label[: span.start] + " " + label[span.end :]
        scores = bm25_scores(segments, label if _WORD_ONLY.search(label) else piece)
        best = max(range(len(segments)), key=lambda i: (scores[i], -i))
        # The best match, any segment matching about as well, and for prose the sentences
        # beside it (one the splitter may have cut in two); a table row stands alone.
        near = {i for i, score in enumerate(scores) if score >= 0.9 * scores[best]} | {best}
        if units[best].kind != "row":
            near |= {
                i for i in (best - 1, best + 1) if 0 <= i < len(units) and units[i].kind != "row"
            }
        values = [value for i in sorted(near) for value in _figure_values(segments[i])]
        misplaced.extend(
            ContentSpan("misplaced figure", start + span.start, start + span.end, span.text)
            for span in figures
            if not _figure_supported(span.text, values)
        )
    return misplaced


def unsupported_content(text: str, context: str, query: str = "") -> list[ContentSpan]:
    r"""The figures and names of ``text`` its context does not support, in order.

    A figure is unsupported when the context does not state it, or states it on another line
    than the one ``text`` gives it (``misplaced figure``); a name when neither the context nor
    the query holds it (a compression may say whose filing it is when the page does not).

    Example:
        >>> page = "Purchases of PP&E (1,577) (1,373). Amounts in millions."
        >>> [span.text for span in unsupported_content("Capex was $1.6 billion.", page)]
        []
        >>> [span.text for span in unsupported_content("3M capex was $1,823 million.", page)]
        ['3M', '$1,823 million']
        >>> rows = "Sales\n5,120\n4,900\nTax\n12\n9\nRent\n77\n70\nCosts\n3,310\n3,020"
        >>> [(s.kind, s.text) for s in unsupported_content("Sales 3,310 4,900", rows)]
        [('misplaced figure', '3,310')]
    """
    context_values = _figure_values(context)
    known_words = _words(context) | _words(query)
    missing = []
    for span in content_spans(text):
        if span.kind == "figure":
            if not _figure_supported(span.text, context_values):
                missing.append(span)
        elif span.text.lower().removesuffix("'s") not in known_words:
            missing.append(span)
    missing += [
        span
        for span in _misplaced(text, context)
        if not any(other.start < span.end and span.start < other.end for other in missing)
    ]
    return sorted(missing, key=lambda span: span.start)

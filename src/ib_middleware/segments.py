"""Split a page into the units a reader quotes: sentences, list items and table rows.

Filings, reports and tool outputs mix prose with tables whose cells arrive one per line. A
table row is its label line with the figure lines that follow it; it keeps the table's header
(the lines of years or units above it) so that a row quoted alone still says which column is
which year. A sentence stays whole; a list item stays with the line that leads into it.

``select_segments`` joins chosen segments in source order, with a marker for every gap.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import bm25s
import numpy as np

__all__ = [
    "ELISION",
    "Segment",
    "bm25_scores",
    "is_value_line",
    "join_segments",
    "split_segments",
]

ELISION = "[…]"
"""Written between selected segments that were not adjacent in the source."""

_VALUE_LINE = re.compile(
    r"^[\s$€£%()\-\u2013\u2014.,*]*(?:\(?-?\$?\s*\d[\d,]*(?:\.\d+)?\)?\s*%?[\s$€£%()\-\u2013\u2014*]*)*$"
)
_HEADER_WORDS = re.compile(
    r"\b(?:19|20)\d{2}\b|\((?:in\s+)?(?:millions|thousands|billions)[^)]*\)|"
    r"\b(?:years?|months?|quarters?)\s+ended\b|\bfiscal\b",
    re.IGNORECASE,
)
_YEAR_LINE = re.compile(r"\s*(?:19|20)\d{2}\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'$\d])")
_LIST_MARK = re.compile(r"^\s*(?:[-*•●▪]|\(?\d{1,2}[.)]|\(?[a-z][.)])\s+")
_TITLE_CHARS = 100
_HEADER_CHARS = 80
_CLOSERS = "\"')\u201d\u2019"  # a sentence may end inside quotes or brackets


@dataclass(frozen=True)
class Segment:
    """One quotable unit of a page.

    Attributes:
        text: The unit with runs of whitespace collapsed (a row reads ``label v1 v2 v3``).
        start: Character offset of the unit in the page.
        end: Character offset just past it.
        kind: ``sentence``, ``item`` (list item), ``row`` (table row) or ``header``.
        header: For a row, the header of its table (collapsed), else ``""``.
        index: Position among the page's segments.
        title: The title of the block it sits in (a short first line after a blank line,
            such as a search result's title), else ``""``.
    """

    text: str
    start: int
    end: int
    kind: Literal["sentence", "item", "row", "header"]
    header: str = ""
    index: int = 0
    title: str = ""

    @property
    def ranked_text(self) -> str:
        """The text with its block's title and its table's header: what a ranking reads.

        Example:
            >>> row = Segment("Capex (1,577)", 0, 13, "row", "(Millions) 2018", title="Cash flows")
            >>> row.ranked_text
            'Cash flows (Millions) 2018 Capex (1,577)'
        """
        parts = [self.title if self.title and not self.text.startswith(self.title) else ""]
        return " ".join(part for part in (*parts, self.header, self.text) if part)


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _lines(page: str) -> list[tuple[int, int, str]]:
    out = []
    offset = 0
    for raw in page.splitlines(keepends=True):
        body = raw.rstrip("\r\n")
        out.append((offset, offset + len(body), body))
        offset += len(raw)
    return out


def is_value_line(line: str) -> bool:
    """Whether a line holds only figures and their marks (a table cell, not a label).

    Example:
        >>> is_value_line(" $ (1,577) "), is_value_line("Capex (1,577)")
        (True, False)
    """
    return (
        bool(line.strip())
        and bool(_VALUE_LINE.fullmatch(line))
        and any(char.isdigit() or char in "$\u2014\u2013-" for char in line)
    )


def _sentences(text: str, start: int, kind: Literal["sentence", "item"]) -> list[Segment]:
    pieces = []
    cursor = 0
    for match in _SENTENCE_END.finditer(text):
        pieces.append((cursor, match.start()))
        cursor = match.end()
    pieces.append((cursor, len(text)))
    # A piece that is only a list marker ("1.", "(a)") belongs to the text after it.
    merged: list[tuple[int, int]] = []
    for begin, end in pieces:
        if merged and _LIST_MARK.fullmatch(text[merged[-1][0] : merged[-1][1]] + " "):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((begin, end))
    pieces = merged
    segments = []
    for index, (begin, end) in enumerate(pieces):
        piece = text[begin:end]
        if piece.strip():
            piece_kind: Literal["sentence", "item"] = kind if index == 0 else "sentence"
            segments.append(Segment(_collapse(piece), start + begin, start + end, piece_kind))
    return segments


def _header_run(lines: list[tuple[int, int, str]], index: int) -> tuple[int, int]:
    """Where the header starting at line ``index`` ends: its end offset and the next line."""
    run_end = lines[index][1]
    probe = index + 1
    while probe < len(lines):
        candidate = lines[probe][2]
        # A long line is prose even when it names a year ("… a 2014 American film …").
        header_line = (
            bool(_HEADER_WORDS.search(candidate)) and len(candidate.strip()) < _HEADER_CHARS
        ) or is_value_line(candidate)
        if candidate.strip() and not (header_line or len(candidate) < 40):
            break
        following = lines[probe + 1 : probe + 6]
        if (
            candidate.strip()
            and not header_line
            and any(is_value_line(line[2]) for line in following)
        ):
            break  # a label line whose figures follow: a row, not header
        run_end = lines[probe][1] if candidate.strip() else run_end
        probe += 1
    return run_end, probe


def split_segments(page: str) -> list[Segment]:
    r"""The page's sentences, list items and table rows (with their headers), in order.

    Example:
        >>> page = "Cash flows\n(Millions)\n2018\n2017\nCapex\n(1,577)\n(1,373)\nDone. Next."
        >>> [s.kind for s in split_segments(page)]
        ['sentence', 'header', 'row', 'sentence', 'sentence']
        >>> split_segments(page)[2].text
        'Capex (1,577) (1,373)'
        >>> split_segments(page)[2].header
        '(Millions) 2018 2017'
    """
    lines = _lines(page)
    segments: list[Segment] = []
    header = ""
    prose: list[tuple[int, int, str]] = []

    def flush_prose() -> None:
        if not prose:
            return
        start, end = prose[0][0], prose[-1][1]
        kind: Literal["sentence", "item"] = "item" if _LIST_MARK.match(prose[0][2]) else "sentence"
        segments.extend(_sentences(page[start:end], start, kind))
        prose.clear()

    index = 0
    while index < len(lines):
        start, end, body = lines[index]
        if not body.strip():
            flush_prose()  # a blank line ends a paragraph
            index += 1
            continue
        values = []
        probe = index + 1
        while probe < len(lines) and (
            not lines[probe][2].strip() or is_value_line(lines[probe][2])
        ):
            if lines[probe][2].strip():
                values.append(lines[probe])
            probe += 1
        years_only = bool(values) and all(_YEAR_LINE.fullmatch(line[2]) for line in values)
        if values and not years_only and not is_value_line(body):
            flush_prose()
            row_end = values[-1][1]
            text = _collapse(page[start:row_end])
            segments.append(Segment(text, start, row_end, "row", header))
            index = probe
            continue
        header_like = _HEADER_WORDS.search(body) and not body.rstrip().endswith(".")
        if years_only or (header_like and len(_collapse(body)) < _HEADER_CHARS):
            # Header lines (titles, units, years) gather until the first row below them.
            flush_prose()
            run_start = start
            run_end, probe = _header_run(lines, index)
            header = _collapse(page[run_start:run_end])
            segments.append(Segment(header, run_start, run_end, "header"))
            index = probe
            continue
        if _LIST_MARK.match(body):
            flush_prose()
        prose.append((start, end, body))
        if body.rstrip().rstrip(_CLOSERS).endswith((".", ":", "?", "!")) and not _LIST_MARK.match(
            body
        ):
            flush_prose()
        index += 1
    flush_prose()
    titles = _block_titles(lines)
    return [
        Segment(s.text, s.start, s.end, s.kind, s.header, position, _title_at(titles, s.start))
        for position, s in enumerate(segments)
    ]


def _is_title(body: str) -> bool:
    stripped = body.strip()
    return (
        0 < len(stripped) <= _TITLE_CHARS
        and not stripped.endswith((".", ":", ";", ",", "?", "!"))
        and not is_value_line(stripped)
        and not _LIST_MARK.match(stripped)
    )


def _block_titles(lines: list[tuple[int, int, str]]) -> list[tuple[int, str]]:
    """``(offset, title)`` of every block (lines after a blank line) opening with a title line.

    A page without blank lines is one block: its first line titles nothing.
    """
    titles = []
    after_blank = False
    for number, (start, _, body) in enumerate(lines):
        if not body.strip():
            after_blank = True
            continue
        following = lines[number + 1][2] if number + 1 < len(lines) else ""
        if after_blank or (number == 0 and any(not line[2].strip() for line in lines)):
            if _is_title(body) and following.strip():
                titles.append((start, _collapse(body)))
            else:
                titles.append((start, ""))
        after_blank = False
    return titles


def _title_at(titles: list[tuple[int, str]], offset: int) -> str:
    current = ""
    for start, title in titles:
        if start > offset:
            break
        current = title
    return current


def join_segments(segments: Sequence[Segment], *, with_headers: bool = True) -> str:
    r"""Chosen segments in source order, one per line, with ``[…]`` where the source had more.

    A row is preceded by its table's header the first time that header is needed and not
    already chosen, so figures keep their column years and units.

    Example:
        >>> page = "Cash flows\n(Millions)\n2018\n2017\nCapex\n(1,577)\n(1,373)\nDone. Next."
        >>> print(join_segments([split_segments(page)[2], split_segments(page)[4]]))
        (Millions) 2018 2017
        Capex (1,577) (1,373)
        […]
        Next.
    """
    ordered = sorted(
        {segment.index: segment for segment in segments}.values(), key=lambda s: s.index
    )
    chosen_headers = {segment.text for segment in ordered if segment.kind == "header"}
    lines: list[str] = []
    previous: int | None = None
    for segment in ordered:
        if previous is not None and segment.index != previous + 1:
            lines.append(ELISION)
        if (
            with_headers
            and segment.kind == "row"
            and segment.header
            and segment.header not in chosen_headers
        ):
            lines.append(segment.header)
            chosen_headers.add(segment.header)
        lines.append(segment.text)
        previous = segment.index
    return "\n".join(lines)


def bm25_scores(texts: Sequence[str], query: str) -> list[float]:
    """BM25 score of each text for ``query`` (English stopwords removed); zeros if none match.

    Example:
        >>> bm25_scores(["Capex was 5.", "The logo is red."], "What was capex?")[1]
        0.0
    """
    if not texts:
        return []
    corpus = bm25s.tokenize(list(texts), stopwords="en", show_progress=False)
    tokens = bm25s.tokenize(query, stopwords="en", show_progress=False, return_ids=False)
    if not tokens or not tokens[0] or not any(len(doc) for doc in corpus.ids):
        return [0.0] * len(texts)
    retriever = bm25s.BM25()
    retriever.index(corpus, show_progress=False)
    return [float(v) for v in np.asarray(retriever.get_scores(tokens[0]), dtype=np.float64)]

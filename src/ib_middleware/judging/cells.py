"""A page read into cells: every figure with its row, its column's period, its unit and sign.

Tables in 10-K and 10-Q text arrive one cell per line (``split_segments`` rebuilds their
rows) or as ``label v1 v2`` on one line. A row's values map, in order, to the years of its
table's header; values past the years (``% change``, ``22 vs. 21``) belong to no year. The
scale comes from the last unit phrase above the row (``(Millions)``, ``in thousands``,
``(In millions, except per share amounts)``: amounts written with cents are then per share).
A sentence of prose is a row too: its words are the label, and its years the columns (paired
in order with its figures when it says ``respectively``). Pages are read once per text: the
result is cached, so the rungs of one page's ladder parse it once.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Literal

from ib_middleware.judging.figures import Figure, figures, periods
from ib_middleware.judging.lexicon import direction_around, normal_words
from ib_middleware.segments import Segment, split_segments

__all__ = ["Cell", "Page", "Unit", "read_page"]

_SCALE_PHRASE = re.compile(
    r"(?:\bin|\(|\$)\s*(?P<word>thousands|millions|billions)\b(?P<rest>[^)\n]{0,40})",
    re.IGNORECASE,
)
_SCALE_POWER = {"thousands": 3, "millions": 6, "billions": 9}
_DASH_CELL = re.compile(r"(?<![\w\-])[\u2014\u2013](?![\w\-])|(?<=\s)-(?=\s|$)")
_GAP = re.compile(r"[\s$€£%*]*")
_PERCENT_LABEL = re.compile(r"%|\bpercent|\bas a % of", re.IGNORECASE)
_PER_SHARE_LABEL = re.compile(r"per\s*(?:common\s*|diluted\s*)?share|basic|diluted|eps", re.I)
_WORD = re.compile(r"[A-Za-z]+")
_WINDOW = 60
_PAGE_NUMBER = re.compile(r"\n[ \t]*\d{1,3}[ \t]*\n?\s*\Z")
_SECTION = re.compile(r"^[^.]{2,60}:$")
_HEADER_SECTION = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z ,&'\-]{1,58}):\s*$")


@dataclass(frozen=True)
class Unit:
    """A table row or a sentence of prose: what a compression's words may name.

    Attributes:
        kind: ``row`` or ``prose``.
        label: The row's label, or the words around a figure of prose.
        words: Its content words (``lexicon.normal_words``).
        context: Words of the rows or section title above it (``Revenue:`` over ``Product``),
            which may name it but need not.
        key: The label lowercased with only letters kept, for labels printed without spaces.
        context_key: The same for ``context``.
        initials: Initials of its runs of content words (``sga`` for "selling, general and
            administrative"), to resolve short forms.
    """

    kind: Literal["row", "prose"]
    label: str
    words: frozenset[str]
    context: frozenset[str]
    key: str
    context_key: str
    initials: frozenset[str]


@dataclass(frozen=True)
class Cell:
    """One figure of the page where the page puts it.

    Attributes:
        value: The number as written, signed (parentheses or minus are negative).
        decimals: Digits after the decimal point.
        scales: Powers of ten it may be in (6 under a millions header; also 0 for a per-share
            amount); empty when the page does not say.
        percent: Whether it is a percentage.
        years: The years its column may stand for; empty when no year is known.
        unit: Index of its row or sentence in ``Page.units``.
        direction: For prose, -1 when its words say it went down or out ("a $590 million
            decrease"), +1 up or in, else 0.
        group: For prose, the unit of the sentence's first figure (its figures share a row).
    """

    value: Decimal
    decimals: int
    scales: tuple[int, ...]
    percent: bool
    years: tuple[int, ...]
    unit: int
    direction: int = 0
    group: int = -1

    @property
    def row(self) -> int:
        """Its row: the table row, or the sentence a figure of prose sits in."""
        return self.unit if self.group < 0 else self.group


@dataclass(frozen=True)
class Page:
    """A context read for the support check.

    Attributes:
        cells: Every figure of the page.
        units: Its rows and sentences.
        years: Every year the page names (headers and prose).
        flat: The page with runs of whitespace collapsed, to find verbatim quotes.
        idf: Inverse document frequency of each content word over the units.
        percent_units: Units holding a percentage.
        amount_units: Units holding an amount (not a percentage).
    """

    cells: tuple[Cell, ...]
    units: tuple[Unit, ...]
    years: frozenset[int]
    flat: str
    idf: dict[str, float]
    percent_units: frozenset[int] = frozenset()
    amount_units: frozenset[int] = frozenset()


def _initials(words: list[str]) -> frozenset[str]:
    # Runs from the label's first word only: "SG&A" spells "Selling, general and
    # administrative expenses", while any run would let "PP&E" spell "pension, postretirement
    # expense".
    return frozenset("".join(word[0] for word in words[:length]) for length in range(2, 6))


def _unit(kind: Literal["row", "prose"], label: str, context: str = "") -> Unit:
    words = normal_words(label)
    return Unit(
        kind,
        label,
        frozenset(words),
        frozenset(normal_words(context)),
        "".join(_WORD.findall(label)).lower(),
        "".join(_WORD.findall(context)).lower(),
        _initials(words),
    )


def _scale_before(phrases: list[re.Match[str]], offset: int) -> tuple[tuple[int, ...], bool]:
    """The scale of the last unit phrase above ``offset``, and whether it excepts per-share."""
    last = None
    for match in phrases:
        if match.end() > offset:
            break
        last = match
    if last is None:
        return (), False
    per_share = bool(re.search(r"except\s*per\s*share", last.group("rest"), re.IGNORECASE))
    return (_SCALE_POWER[last.group("word").lower()],), per_share


def _row_values(text: str) -> tuple[str, list[Figure | None]]:
    """A row's label and its trailing values in order (None for a dash, which is zero)."""
    tokens: list[tuple[int, int, Figure | None]] = [
        (figure.start, figure.end, figure) for figure in figures(text, keep_small=True)
    ]
    tokens += [(match.start(), match.end(), None) for match in _DASH_CELL.finditer(text)]
    tokens.sort(key=lambda token: token[0])
    run: list[tuple[int, int, Figure | None]] = []
    cursor = len(text)
    for token in reversed(tokens):
        if not _GAP.fullmatch(text[token[1] : cursor]):
            break
        run.insert(0, token)
        cursor = token[0]
    label = text[: run[0][0]].strip() if run else text
    return label, [token[2] for token in run]


@lru_cache(maxsize=256)
def _header_years(header: str) -> tuple[int, ...]:
    """The years of a table's header, in column order (one header serves many rows)."""
    return tuple(period.year for period in periods(header))


def _row_cells(
    row: tuple[str, list[Figure | None]],
    scale: tuple[tuple[int, ...], bool],
    header: str,
    unit: int,
) -> list[Cell]:
    label, values = row
    years = _header_years(header)
    scales, per_share = scale
    percent_row = bool(_PERCENT_LABEL.search(label))
    share_row = bool(_PER_SHARE_LABEL.search(label))
    cells = []
    for position, figure in enumerate(values):
        value = figure.signed if figure else Decimal(0)
        decimals = figure.decimals if figure else 0
        percent = bool(figure and (figure.percent or figure.bps)) or percent_row
        column: tuple[int, ...] = ()
        if position < len(years) and len(values) >= len(years):
            column = (years[position],)
        cell_scales = scales
        if figure is not None and figure.scale is not None:
            cell_scales = (figure.scale,)
        elif scales and (share_row or (per_share and decimals == 2)):
            cell_scales = (*scales, 0)
        cells.append(Cell(value, decimals, () if percent else cell_scales, percent, column, unit))
    return cells


def _prose_cells(text: str, after: str, first_unit: int) -> tuple[list[Cell], list[Unit]]:
    """A sentence's figures, each its own unit labelled by the words around it."""
    found = figures(text, keep_small=True)
    respectively = "respectively" in (text + " " + after[:20]).lower()
    years = [period.year for period in periods(text)]
    cells: list[Cell] = []
    units: list[Unit] = []
    for kind in (True, False):
        group = [figure for figure in found if (figure.percent or figure.bps) == kind]
        paired = respectively and len(group) == len(years) > 1
        for position, figure in enumerate(group):
            column = (years[position],) if paired else tuple(sorted(set(years)))
            scales = () if kind else (figure.scale if figure.scale is not None else 0,)
            index = found.index(figure)
            left = found[index - 1].end if index else max(0, figure.start - _WINDOW)
            right = found[index + 1].start if index + 1 < len(found) else len(text)
            left, right = max(left, figure.start - _WINDOW), min(right, figure.end + _WINDOW)
            while 0 < left < figure.start and text[left - 1].isalnum():
                left += 1  # start at a whole word
            clause = text[left : figure.start] + " " + text[figure.end : right]
            unit = first_unit + len(units)
            cells.append(
                Cell(
                    figure.signed,
                    figure.decimals,
                    scales,
                    kind,
                    column,
                    unit,
                    direction_around(text[left : figure.start], text[figure.end : right]),
                    first_unit,
                )
            )
            units.append(_unit("prose", clause, text))
    return cells, units


def _inline_row(row: tuple[str, list[Figure | None]]) -> bool:
    """Whether a segment the splitter took for prose is a one-line ``label v1 v2`` row."""
    label, values = row
    return len(values) >= 2 and bool(label) and not label.rstrip().endswith((".", ":"))


def _segments(text: str) -> Iterator[Segment]:
    """The page's segments, a header run that holds figures read again line by line.

    Short one-line rows right after a header may have been gathered into it.
    """
    for segment in split_segments(text):
        if segment.kind != "header" or not figures(segment.text):
            yield segment
            continue
        offset = segment.start
        for line in text[segment.start : segment.end].split("\n"):
            if line.strip():
                kind: Literal["header", "sentence"] = "sentence" if figures(line) else "header"
                yield Segment(" ".join(line.split()), offset, offset + len(line), kind)
            offset += len(line) + 1


@lru_cache(maxsize=16)
def read_page(context: str) -> Page:
    r"""The page's rows, sentences and cells (cached per context text).

    Example:
        >>> page = read_page("Cash flows\n(Millions)\n2018\n2017\nCapex\n(1,577)\n(1,373)\n")
        >>> [(str(c.value), c.scales, c.years) for c in page.cells]
        [('-1577', (6,), (2018,)), ('-1373', (6,), (2017,))]
    """
    units: list[Unit] = []
    cells: list[Cell] = []
    # A page number closing the page is no figure of it.
    number = _PAGE_NUMBER.search(context)
    text = context[: number.start()] + " " * (len(context) - number.start()) if number else context
    phrases = list(_SCALE_PHRASE.finditer(text))
    header = ""
    section = ""
    previous: Segment | None = None
    above = ""
    for segment in _segments(text):
        if segment.kind == "header" and not figures(segment.text):
            joined = previous is not None and previous.kind == "header"
            header = f"{header} {segment.text}" if joined else segment.text
            title = _HEADER_SECTION.search(segment.text)  # "... 2016 2015 Revenue:"
            section = title.group(1) if title else section
            previous = segment
            continue
        row = _row_values(segment.text)
        if segment.kind == "row" or _inline_row(row):
            label = row[0]
            own = segment.header
            row_header = header if own and header.endswith(own) else (own or header)
            scale = _scale_before(phrases, segment.start)
            cells += _row_cells(row, scale, row_header, len(units))
            # "(as a % of net sales)" qualifies the row above it; "Revenue:" the rows below.
            context_words = above if label.startswith("(") else section
            units.append(_unit("row", label, context_words))
            above = label if not label.startswith("(") else above
            section = "" if label.lower().startswith("total") else section
        else:
            section = segment.text if _SECTION.match(segment.text) else ""
            after = text[segment.end : segment.end + 30]
            new_cells, new_units = _prose_cells(segment.text, after, len(units))
            cells += new_cells
            units += new_units
        previous = segment
    counts = Counter(word for unit in units for word in unit.words)
    idf = {word: math.log(1 + len(units) / count) for word, count in counts.items()}
    return Page(
        cells=tuple(cells),
        units=tuple(units),
        years=frozenset(period.year for period in periods(context)),
        flat=" ".join(context.split()),
        idf=idf,
        percent_units=frozenset(cell.unit for cell in cells if cell.percent),
        amount_units=frozenset(cell.unit for cell in cells if not cell.percent),
    )

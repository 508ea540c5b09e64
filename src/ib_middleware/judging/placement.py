"""Where a compression's figure sits: the rows its words name, the years it names, its value.

A compression states a figure with words around it ("Capex was $1,577M in 2018"). Its words
name rows of the page (weighted by how rare each word is on the page, short forms and a few
finance synonyms resolved); its periods name columns. A page cell holds the figure when the
numbers agree after scale and within the precision the compression wrote, in a row it names,
a column it names, with a sign it allows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from ib_middleware.judging.cells import Cell, Page, Unit
from ib_middleware.judging.figures import Figure, Period
from ib_middleware.judging.lexicon import (
    COMMON,
    OUTFLOW,
    STOPWORDS,
    normal_words,
    synonyms,
)

__all__ = [
    "Match",
    "Naming",
    "figure_years",
    "name_units",
    "operand_units",
    "outflow",
    "value_match",
    "without_subject",
]

ROW_SHARE = 0.8
"""A row is named when it scores at least this share of the best row."""
PROSE_SHARE = 0.5
"""A figure of prose is named when its words score at least this share of the best such."""
SYNONYM_WEIGHT = 0.5
"""A row named only through a synonym ("capex" for PP&E purchases) weighs half."""
MISSING_WEIGHT = 0.5
"""Each word of a row's label the text does not say counts against the row at this weight."""

_ACRONYM = re.compile(r"\b[A-Z][A-Z&]{1,5}s?\b")
_TOKEN = re.compile(r"[a-z]+(?:-[a-z]+)*")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9&'\u2019\-]*")

Match = Literal["match", "unit"]


@dataclass(frozen=True)
class Naming:
    """Which units (rows, sentences) a compression's words name.

    Attributes:
        scores: Score of each unit of the page.
        named: Indices of the named units; all units when the words name none.
        any_named: Whether the words name any unit at all.
    """

    scores: tuple[float, ...]
    named: frozenset[int]
    any_named: bool


def without_subject(text: str, query: str) -> str:
    """``text`` with the filer's names blanked: "Corning's" names whose figures, not a row.

    Blanked are possessives and the names the query capitalises.

    Example:
        >>> without_subject("Corning's net sales at Corning rose", "Did Corning grow?").split()
        ['net', 'sales', 'at', 'rose']
    """
    subjects = {
        token.lower().removesuffix("'s").removesuffix("\u2019s")
        for token in _NAME.findall(query)
        if token[0].isupper() or token[0].isdigit()
    }
    out = list(text)
    for match in _NAME.finditer(text):
        token = match.group(0)
        lower = token.lower()
        possessive = lower.endswith(("'s", "\u2019s"))
        if possessive or (lower in subjects and lower not in STOPWORDS and lower not in COMMON):
            out[match.start() : match.end()] = " " * len(token)
    return "".join(out)


def _score(page: Page, unit: Unit, weights: dict[str, float], default: float) -> float:
    spaced = " " in unit.label.strip()
    found = 0.0
    covered = 0
    in_context = 0.0
    for word, weight in weights.items():
        if word in unit.words or (not spaced and len(word) >= 3 and word in unit.key):
            found += weight * page.idf.get(word, default)
            covered += len(word) if not spaced else 0
        elif word in unit.context or (not spaced and len(word) >= 3 and word in unit.context_key):
            in_context += weight * page.idf.get(word, default)
    # A section title or the row above names a row only with a word of the row's own label;
    # once it does, its unsaid words count against the row ("Cost of revenue: Product" is not
    # named by "product revenue").
    if unit.kind == "prose":
        # A figure of prose is named by its sentence as much as by the words beside it, and a
        # sentence says more than its subject: its unsaid words count for nothing.
        return found + in_context
    if found and in_context:
        found += in_context
        missing_context = sum(
            page.idf.get(word, default) for word in unit.context if word not in weights
        )
    else:
        missing_context = 0.0
    if spaced:
        missing = sum(page.idf.get(word, default) for word in unit.words if word not in weights)
    else:
        share = max(0.0, 1 - covered / max(1, len(unit.key)))
        missing = share * default * max(1, len(unit.key) // 8)
    # Shrinks with the label's unsaid words, and stays positive: a long label is still named.
    missing += missing_context
    return found * found / (found + MISSING_WEIGHT * missing) if found else 0.0


def name_units(
    page: Page, text: str, *, row_share: float = ROW_SHARE, among: frozenset[int] | None = None
) -> Naming:
    r"""The page's units that ``text`` names, by the rare words they share.

    A unit scores the page rarity (idf) of each word it shares with ``text`` (synonyms at
    half weight), shrunk by half that of each word of its label ``text`` does not say; the rows
    scoring at least ``row_share`` of the best row are named, and likewise for prose. With
    ``among``, only those units compete (the rows that hold an amount, for an amount).

    Example:
        >>> from ib_middleware.judging.cells import read_page
        >>> page = read_page("Capex\n1,577\n1,373\nDividends paid\n3,193\n2,803")
        >>> sorted(name_units(page, "3M capex in 2018").named)
        [0]
    """
    words = set(normal_words(text))
    words |= {word.replace("&", "") for word in words if "&" in word}
    weights = dict.fromkeys(words, 1.0)
    for word in words:
        for synonym in synonyms(word):
            weights.setdefault(synonym, SYNONYM_WEIGHT)
    acronyms = {m.group(0).rstrip("s").replace("&", "").lower() for m in _ACRONYM.finditer(text)}
    default = max(page.idf.values(), default=1.0)
    scores = []
    for index, unit in enumerate(page.units):
        if among is not None and index not in among:
            scores.append(0.0)
            continue
        score = _score(page, unit, weights, default)
        score += sum(default for acronym in acronyms if acronym in unit.initials)
        scores.append(score)
    best = {
        kind: max((s for s, u in zip(scores, page.units, strict=True) if u.kind == kind), default=0)
        for kind in ("row", "prose")
    }
    if max(best.values()) <= 0:
        return Naming(tuple(scores), frozenset(range(len(page.units))), any_named=False)
    share = {"row": row_share, "prose": PROSE_SHARE}
    named = frozenset(
        index
        for index, (score, unit) in enumerate(zip(scores, page.units, strict=True))
        if score > 0 and score >= share[unit.kind] * best[unit.kind]
    )
    return Naming(tuple(scores), named, any_named=True)


_OPERAND_BREAK = re.compile(
    r"\b(?:and|plus|minus|less|from|to|versus|vs\.?|over|of|against|by)\b", re.IGNORECASE
)
DERIVE_SHARE = 0.5
"""An operand of a derived figure is a row scoring this share of the best for its phrase."""


def operand_units(page: Page, left: str, right: str) -> frozenset[int]:
    r"""Units the phrases beside a figure name, each phrase on its own ("X was 39.7% of Y").

    Example:
        >>> from ib_middleware.judging.cells import read_page
        >>> page = read_page("Cash\n5\n4\nShort-term investments\n9\n8\nDebt\n3\n2")
        >>> sorted(operand_units(page, "Cash and short-term investments were", ""))
        [0, 1]
    """
    named: set[int] = set()
    for side in (left, right):
        for phrase in _OPERAND_BREAK.split(side):
            naming = name_units(page, phrase, row_share=DERIVE_SHARE)
            if naming.any_named:
                named |= naming.named
    return frozenset(named)


def outflow(text: str) -> bool:
    """Whether ``text`` words a figure as money out or a fall (so its magnitude may be unsigned).

    Example:
        >>> outflow("Capex was $1,577M"), outflow("Cash provided was $222M")
        (True, False)
    """
    return any(token in OUTFLOW for token in _TOKEN.findall(text.lower()))


def figure_years(found: Sequence[Figure], found_periods: Sequence[Period]) -> list[set[int]]:
    """The years each figure of one sentence names: paired in order, else the nearest period.

    Example:
        >>> from ib_middleware.judging.figures import figures, periods
        >>> text = "$1.37 and $1.58 billion in 2017 and 2018"
        >>> figure_years(figures(text), periods(text))
        [{2017}, {2018}]
    """
    if not found_periods:
        return [set() for _ in found]
    if len({p.year for p in found_periods}) == 1:
        return [_years(found_periods[0]) for _ in found]
    amounts = [f for f in found if not (f.percent or f.bps)]
    apart = all(f.end <= found_periods[0].start for f in found) or all(
        f.start >= found_periods[-1].end for f in found
    )
    if apart and len(amounts) == len(found_periods):
        paired = {id(f): _years(p) for f, p in zip(amounts, found_periods, strict=True)}
        return [paired.get(id(f), {p.year for p in found_periods}) for f in found]
    years = []
    for figure in found:

        def distance(period: Period, figure: Figure = figure) -> int:
            if period.start >= figure.end:
                return period.start - figure.end
            return figure.start - period.end + 1

        years.append(_years(min(found_periods, key=distance)))
    return years


def _years(period: Period) -> set[int]:
    # A quarter of fiscal 2024 may end in calendar 2023 (a year ending in early 2024).
    return {period.year, period.year - 1} if period.quarter else {period.year}


def _near(a: Decimal, b: Decimal, tolerance: Decimal) -> bool:
    return abs(a - b) <= tolerance * Decimal("1.0001")


def value_match(figure: Figure, cell: Cell) -> Match | None:
    """Whether ``cell`` holds ``figure`` (``match``), its digits in another unit (``unit``).

    None when it holds neither.

    Example:
        >>> from ib_middleware.judging.figures import figures
        >>> cell = Cell(Decimal(-1577), 0, (6,), False, (2018,), 0)
        >>> [value_match(f, cell) for f in figures("$1.6 billion, $15.8bn, 1,577, 15%")]
        ['match', 'unit', 'match', None]
    """
    magnitude = abs(cell.value)
    raw_equal = _near(magnitude, figure.magnitude, figure.quantum)
    if figure.percent or figure.bps or cell.percent:
        if not (cell.percent and (figure.percent or figure.bps)):
            return "unit" if raw_equal else None
        stated = figure.magnitude / 100 if figure.bps else figure.magnitude
        tolerance = figure.quantum / 100 if figure.bps else figure.quantum
        return "match" if _near(magnitude, stated, tolerance) else None
    if figure.scale is None:
        if raw_equal:
            return "match"
        written = [magnitude * Decimal(10) ** scale for scale in cell.scales]
        return "match" if any(w == figure.magnitude for w in written) else None
    target = figure.magnitude * Decimal(10) ** figure.scale
    tolerance = figure.quantum * Decimal(10) ** figure.scale
    for scale in cell.scales or (0, 3, 6, 9):
        absolute = magnitude * Decimal(10) ** scale
        if absolute >= tolerance and _near(absolute, target, tolerance):
            return "match"
    # The cell's digits at another power of ten: "$31.9bn" for 3,193 in millions.
    for shift in range(-12, 13):
        absolute = magnitude * Decimal(10) ** shift
        if absolute >= tolerance and _near(absolute, target, tolerance):
            return "unit"
    return "unit" if raw_equal else None

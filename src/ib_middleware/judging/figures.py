"""Figures as written: value, sign, scale, unit, and the periods a text names.

One parser reads both sides of the support check, a compression and its page, so ``$1,577M``,
``$1.577 billion``, ``1,577`` under a ``(Millions)`` header and ``(1,577)`` are compared as
numbers, not strings. A figure keeps what it says about itself: its magnitude and decimals as
written, an explicit sign (a minus or parentheses), a scale word or suffix (``bn``, ``M``,
``mn``, ``K``, ``thousand``), and a unit (percent, basis points). Periods (``2018``, ``FY22``,
``fiscal 2022``, ``Q2 FY2024``, ``December 31, 2018``, ``31 December 2018``) are read apart
from figures: a year is the column a figure sits in, not a figure of that column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = ["Figure", "Period", "figures", "periods"]

_SCALE_WORDS = {
    "k": 3,
    "thousand": 3,
    "thousands": 3,
    "m": 6,
    "mn": 6,
    "mm": 6,
    "mil": 6,
    "million": 6,
    "millions": 6,
    "b": 9,
    "bn": 9,
    "billion": 9,
    "billions": 9,
    "t": 12,
    "tn": 12,
    "trillion": 12,
}
_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_PERIOD = re.compile(
    r"(?<![\w.,$])(?:"
    rf"(?:{_MONTHS}\s*\d{{1,2}}(?:st|nd|rd|th)?,?\s*(?P<y1>(?:19|20)\d\d))|"
    rf"(?:\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS},?\s*(?P<y2>(?:19|20)\d\d))|"
    r"(?:(?P<q>Q[1-4])\s*(?:FY\s*'?|fiscal\s+(?:year\s+)?)?(?P<y3>(?:19|20)\d\d|\d\d))|"
    r"(?:(?:FY|fiscal\s+(?:year\s+)?)\s*'?(?P<y4>(?:19|20)\d\d|\d\d)(?:\s*(?P<q2>Q[1-4]))?)|"
    r"(?P<y5>(?:19|20)\d\d)(?:\s*(?P<q3>Q[1-4]))?"
    r")(?![\w]|[.,]\d|\s*%|\s*(?:million|billion|thousand)s?\b)",
    re.IGNORECASE,
)
_NUMBER = (
    r"(?P<open>\()?(?P<minus>[-\u2212\u2013](?=\s*\$?\s*\d))?\s*"
    r"(?P<currency>(?:US)?\$|€|£|USD\s)?\s*(?P<open2>\()?(?P<minus2>-)?\s*"
    r"(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?P<close0>\)(?=\s*%))?"
)
_FIGURE = re.compile(
    r"(?<![\w.,/\-])" + _NUMBER + r"(?:"
    r"\s*(?P<percent>%|percent\b|per\s*cent\b|pct\b|percentage\s+points?\b|pp\b)|"
    r"\s*(?P<bps>bps\b|basis\s+points?\b|bp\b)|"
    r"(?P<suffix>bn|mn|mm|tn|[kKmMbBtT])\b|"
    r"\s+(?P<word>thousands?|millions?|billions?|trillion|bn|mn|mm|mil)\b"
    r")?(?P<close>\))?(?![\w]|[.,]\d|-\w)",
)
_NOT_FIGURE_BEFORE = re.compile(
    r"(?:note|item|page|pages|part|section|rule|form|exhibit|no\.)\s*$", re.IGNORECASE
)
_JOIN = re.compile(r"\s*(?:,?\s*and|or|to|through|-|\u2013)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Period:
    """A year a text names, with its quarter when it names one.

    Attributes:
        start: Character offset where it starts.
        end: Character offset just past it.
        year: The four-digit year (``FY22`` is 2022).
        quarter: ``1`` to ``4`` for a quarter, else ``0``.
    """

    start: int
    end: int
    year: int
    quarter: int = 0


@dataclass(frozen=True)
class Figure:
    """A number as a text writes it.

    Attributes:
        start: Character offset where it starts (its currency sign or sign included).
        end: Character offset just past it (its scale word or unit included).
        text: The figure as written.
        magnitude: Its absolute value as written, before any scale.
        decimals: Digits written after the decimal point: the precision it claims.
        negative: Whether it carries a minus or parentheses.
        scale: Power of ten its suffix or scale word states (6 for ``M``), or None.
        percent: Whether it is a percentage (or percentage points).
        bps: Whether it is in basis points.
        currency: Whether a currency sign precedes it.
    """

    start: int
    end: int
    text: str
    magnitude: Decimal
    decimals: int
    negative: bool = False
    scale: int | None = None
    percent: bool = False
    bps: bool = False
    currency: bool = False

    @property
    def quantum(self) -> Decimal:
        """Half the last written digit, in the figure's own unit: the rounding it allows."""
        return Decimal(5) * Decimal(10) ** -(self.decimals + 1)

    @property
    def signed(self) -> Decimal:
        """The magnitude with its written sign."""
        return -self.magnitude if self.negative else self.magnitude


def _year(text: str) -> int:
    value = int(text)
    return value + 2000 if value < 100 else value


def periods(text: str) -> list[Period]:
    """The periods ``text`` names, in order.

    Example:
        >>> [(p.year, p.quarter) for p in periods("FY22 and Q2 FY2024 vs 31 December 2018")]
        [(2022, 0), (2024, 2), (2018, 0)]
    """
    found = []
    for match in _PERIOD.finditer(text):
        year = next(match.group(g) for g in ("y1", "y2", "y3", "y4", "y5") if match.group(g))
        quarter = match.group("q") or match.group("q2") or match.group("q3") or ""
        found.append(Period(match.start(), match.end(), _year(year), int(quarter[1:] or 0)))
    return found


def _is_day(text: str, start: int, end: int) -> bool:
    """A day of the month ("December 31", "31 December"), part of a date, not a figure."""
    before = text[max(0, start - 12) : start]
    after = text[end : end + 12]
    return bool(
        re.search(_MONTHS + r"\s*$", before, re.IGNORECASE)
        or re.match(r"(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTHS + r"\b", after, re.IGNORECASE)
    )


def _parse(match: re.Match[str], text: str) -> Figure | None:
    number = match.group("number").replace(",", "")
    try:
        magnitude = Decimal(number)
    except InvalidOperation:  # pragma: no cover - the pattern only admits numbers
        return None
    suffix = match.group("suffix")
    currency = bool(match.group("currency"))
    if suffix and not currency and ("," not in match.group("number") and "." not in number):
        return None  # "3M" is a name, "10K" a form; "$3M" and "1.5M" are figures
    scale_word = (suffix or match.group("word") or "").lower()
    opened = bool(match.group("open") or match.group("open2"))
    closed = bool(match.group("close") or match.group("close0"))
    start, end = match.start(), match.end()
    if opened and not closed:
        start += 1 if match.group("open") else 0
    if closed and not opened:
        end -= 1
    negative = (opened and closed) or bool(match.group("minus") or match.group("minus2"))
    while start < end and (text[start] == " " or (text[start] == "(" and not negative)):
        start += 1
    return Figure(
        start=start,
        end=end,
        text=text[start:end],
        magnitude=magnitude,
        decimals=len(number.split(".")[1]) if "." in number else 0,
        negative=negative,
        scale=_SCALE_WORDS[scale_word] if scale_word else None,
        percent=bool(match.group("percent")),
        bps=bool(match.group("bps")),
        currency=currency,
    )


def figures(text: str, *, keep_small: bool = False) -> list[Figure]:
    """The figures of ``text`` in order: periods, days of dates and note numbers left out.

    A lone integer below 10 with no currency, scale or unit ("3 segments") is left out unless
    ``keep_small``; a figure with no scale before one with a scale shares it ("$1.37 and
    $1.58 billion").

    Example:
        >>> [(f.text, f.magnitude, f.scale, f.negative) for f in figures("Capex ($1,577M) in 2018")]
        [('($1,577M)', Decimal('1577'), 6, True)]
        >>> [(f.text, f.scale) for f in figures("$1.37 and $1.58 billion on 31 December 2018")]
        [('$1.37', 9), ('$1.58 billion', 9)]
    """
    taken = [(p.start, p.end) for p in periods(text)]
    found: list[Figure] = []
    for match in _FIGURE.finditer(text):
        number_start = match.start("number")
        if any(start <= number_start < end for start, end in taken):
            continue
        figure = _parse(match, text)
        if figure is None or _is_day(text, match.start("number"), match.end("number")):
            continue
        if _NOT_FIGURE_BEFORE.search(text[: figure.start]):
            continue
        small = figure.magnitude < 10 and figure.decimals == 0
        if small and not keep_small and not (figure.currency or figure.scale or figure.percent):
            continue
        found.append(figure)
    for index in range(len(found) - 2, -1, -1):
        this, following = found[index], found[index + 1]
        joined = _JOIN.fullmatch(text[this.end : following.start]) and _unitless(this)
        if joined and not _unitless(following):
            found[index] = Figure(
                this.start,
                this.end,
                this.text,
                this.magnitude,
                this.decimals,
                this.negative,
                following.scale,
                following.percent,
                following.bps,
                this.currency or following.currency,
            )
    return found


def _unitless(figure: Figure) -> bool:
    return figure.scale is None and not figure.percent and not figure.bps

"""Abstractive-style compressions of a table row, faithful and wrong, for the graded benchmark.

An abstractive rung does not copy a row: it writes "Capital expenditure was $1,577 million in
2018". The graded benchmark needs such sentences, right and wrong in the ways a small model goes
wrong, so its AUCs cover what an abstractive rung writes. From an evidence row with a header of
years (``Purchases of PP&E (1,577) (1,373)`` under ``(Millions) 2018 2017``) it writes:

Keep kinds: ``paraphrase`` (each figure with its year and scale word), ``paraphrase_scaled``
(the first figure in the next scale up at one decimal, ``$1.6 billion``).

Lose kinds: ``column_swap`` (the row's other column given for the year), ``year_swap`` (two
years' figures exchanged), ``unit_swap`` (the scale word changed: thousand for million),
``sign_flip`` (a positive figure stated negative).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from ib_middleware.segments import Segment

__all__ = ["PARAPHRASE_KEEP_KINDS", "PARAPHRASE_LOSE_KINDS", "RowFigures", "row_paraphrases"]

PARAPHRASE_KEEP_KINDS = ("paraphrase", "paraphrase_scaled")
PARAPHRASE_LOSE_KINDS = ("column_swap", "year_swap", "unit_swap", "sign_flip")

_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
_CELL = re.compile(r"\(?-?\$?\s*\d{1,3}(?:,\d{3})*(?:\.\d+)?\)?%?|\(?-?\$?\s*\d+(?:\.\d+)?\)?%?")
_SCALES = (("thousand", "thousands"), ("million", "millions"), ("billion", "billions"))
_NEXT_SCALE = {"thousand": "million", "million": "billion"}
_OTHER_SCALE = {"thousand": "million", "million": "thousand", "billion": "million"}


@dataclass(frozen=True)
class RowFigures:
    """A table row read as a label, a scale word and one figure per year column.

    Attributes:
        label: The row's words before its first figure.
        scale: ``thousand``, ``million`` or ``billion`` from the header, or ``""``.
        dollars: Whether the row or header writes dollar signs.
        cells: (year, signed value, decimals) per column, in the header's order.
    """

    label: str
    scale: str
    dollars: bool
    cells: tuple[tuple[str, Decimal, int], ...]


def _signed(cell: str) -> tuple[Decimal, int]:
    negative = cell.strip().startswith("(") or "-" in cell
    number = re.sub(r"[^\d.]", "", cell)
    decimals = len(number.split(".")[1]) if "." in number else 0
    value = Decimal(number)
    return (-value if negative else value), decimals


def read_row(segment: Segment) -> RowFigures | None:
    """The row's label, scale and figures by year, or None when its columns are not years.

    Example:
        >>> row = Segment("Purchases of PP&E (1,577) (1,373)", 0, 0, "row", "(Millions) 2018 2017")
        >>> figures = read_row(row)
        >>> figures.label, figures.scale, [(y, str(v)) for y, v, _ in figures.cells]
        ('Purchases of PP&E', 'million', [('2018', '-1577'), ('2017', '-1373')])
    """
    if segment.kind != "row" or "%" in segment.text:
        return None
    years = _YEAR.findall(segment.header)
    first = _CELL.search(segment.text)
    if first is None or len(years) < 2:
        return None
    label = segment.text[: first.start()].strip(" :$")
    cells = [m.group(0) for m in _CELL.finditer(segment.text[first.start() :])]
    if not re.search(r"[A-Za-z]{3}", label) or len(cells) != len(years):
        return None
    header = segment.header.lower()
    scale = next((name for name, plural in _SCALES if plural in header or name in header), "")
    values = [_signed(cell) for cell in cells]
    return RowFigures(
        label=label,
        scale=scale,
        dollars="$" in segment.text or "$" in segment.header,
        cells=tuple(
            (year, value, decimals) for year, (value, decimals) in zip(years, values, strict=True)
        ),
    )


def _money(value: Decimal, decimals: int, scale: str, *, dollars: bool) -> str:
    sign = "-" if value < 0 else ""
    number = f"{abs(value):,.{decimals}f}"
    unit = f" {scale}" if scale else ""
    return f"{sign}{'$' if dollars else ''}{number}{unit}"


def _sentence(row: RowFigures, stated: Sequence[tuple[str, str]]) -> str:
    parts = [f"{figure} in {year}" for year, figure in stated]
    return f"{row.label} was {' and '.join(parts)}."


def row_paraphrases(segment: Segment, answer_digits: str = "") -> dict[str, str]:
    """Keep and lose paraphrases of one evidence row, by kind (kinds it cannot make are absent).

    The two columns stated are the one holding the answer's digits, when one does, and the one
    beside it; else the first two.

    Example:
        >>> row = Segment("Purchases of PP&E (1,577) (1,373)", 0, 0, "row", "(Millions) 2018 2017")
        >>> out = row_paraphrases(row)
        >>> out["paraphrase"]
        'Purchases of PP&E was -1,577 million in 2018 and -1,373 million in 2017.'
        >>> out["column_swap"]
        'Purchases of PP&E was -1,373 million in 2018.'
    """
    row = read_row(segment)
    if row is None:
        return {}
    cells = list(row.cells)
    at = next(
        (
            i
            for i, (_, value, _) in enumerate(cells)
            if answer_digits and re.sub(r"\D", "", str(abs(value))) in answer_digits
        ),
        0,
    )
    pair = [at, at + 1] if at + 1 < len(cells) else [at - 1, at]
    (year_a, value_a, dec_a), (year_b, value_b, dec_b) = cells[pair[0]], cells[pair[1]]
    if value_a == value_b:
        return {}

    def money(value: Decimal, decimals: int, scale: str = row.scale) -> str:
        return _money(value, decimals, scale, dollars=row.dollars)

    out = {
        "paraphrase": _sentence(
            row, [(year_a, money(value_a, dec_a)), (year_b, money(value_b, dec_b))]
        ),
        "column_swap": _sentence(row, [(year_a, money(value_b, dec_b))]),
        "year_swap": _sentence(
            row, [(year_a, money(value_b, dec_b)), (year_b, money(value_a, dec_a))]
        ),
    }
    if row.scale in _NEXT_SCALE and abs(value_a) >= 1000:
        scaled = (value_a / 1000).quantize(Decimal("0.1"))
        out["paraphrase_scaled"] = _sentence(
            row, [(year_a, money(scaled, 1, _NEXT_SCALE[row.scale]))]
        )
    if row.scale:
        out["unit_swap"] = _sentence(
            row, [(year_a, money(value_a, dec_a, _OTHER_SCALE[row.scale]))]
        )
    if value_a > 0:
        out["sign_flip"] = _sentence(row, [(year_a, money(-value_a, dec_a))])
    return out

"""Figures a compression computes from stated cells: differences, sums, growth, shares, ratios.

A faithful summary may say "capex rose $204 million" or "net sales grew 1%" where the page
states only the two years. Such a figure is *derived* when one operation on two cells of the
rows its words name (and the years it names) gives it within the precision written. Operands
come only from named rows, so a figure cannot be "derived" from any two numbers of the page.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from decimal import Decimal, DivisionByZero, InvalidOperation
from itertools import permutations
from typing import Literal

from ib_middleware.judging.cells import Cell, Page
from ib_middleware.judging.figures import Figure

__all__ = ["Derivation", "derivation"]

Derivation = Literal["difference", "sum", "growth", "share", "ratio", "point change"]

_MAX_OPERANDS = 40
_ACROSS_ROWS = frozenset({"sum", "share", "ratio"})


def _amount(cell: Cell) -> Decimal:
    return cell.value * Decimal(10) ** (cell.scales[0] if cell.scales else 0)


def _close(value: Decimal, target: Decimal, tolerance: Decimal) -> bool:
    return value != 0 and abs(abs(value) - target) <= tolerance * Decimal("1.0001")


def _in(cell: Cell, years: Collection[int]) -> bool:
    return not years or not cell.years or bool(set(cell.years) & set(years))


def _same_column(a: Cell, b: Cell) -> bool:
    return a.years == b.years or not (a.years and b.years)


def _pairs(
    pool: list[Cell], rows: Collection[int], years: Collection[int]
) -> Iterator[tuple[Cell, Cell, bool]]:
    """Ordered pairs of operands, flagged True for one row across two years.

    One of the named ``rows`` across two years (one of them named), or two rows of the pool
    in one named year.
    """
    for a, b in permutations(pool, 2):
        if a.row == b.row and a.years != b.years:
            # Later year first, so a change says which way it went.
            later = bool(a.years and b.years and a.years[0] > b.years[0])
            named = a.unit in rows or b.unit in rows
            if later and named and (_in(a, years) or _in(b, years)):
                yield a, b, True
        elif a.row != b.row and _same_column(a, b) and _in(a, years) and _in(b, years):
            yield a, b, False


def _amount_results(
    pool: list[Cell], figure: Figure, rows: Collection[int], years: Collection[int]
) -> Iterator[tuple[Derivation, Decimal]]:
    for a, b, across_years in _pairs(pool, rows, years):
        if a.scales != b.scales:
            continue
        left, right = (_amount(a), _amount(b)) if figure.scale is not None else (a.value, b.value)
        yield "difference", abs(left) - abs(right)
        if not across_years:
            yield "sum", abs(left) + abs(right)
            if figure.scale is None and not figure.currency and figure.decimals and right:
                yield "ratio", left / right


def _percent_results(
    pool: list[Cell], rows: Collection[int], years: Collection[int]
) -> Iterator[tuple[Derivation, Decimal]]:
    for a, b, across_years in _pairs(pool, rows, years):
        if a.percent and b.percent and across_years:
            yield "point change", a.value - b.value
        if a.percent or b.percent or not b.value:
            continue
        if across_years:
            yield "growth", (abs(a.value) - abs(b.value)) / abs(b.value) * 100
            span = a.years[0] - b.years[0]
            if span > 1:
                rate = float(abs(a.value) / abs(b.value)) ** (1 / span) - 1
                yield "growth", Decimal(str(round(rate * 100, 6)))
        else:
            yield "share", a.value / b.value * 100


def derivation(
    figure: Figure,
    page: Page,
    rows: Collection[int],
    operands: Collection[int],
    years: Collection[int],
) -> tuple[Derivation, int] | None:
    r"""How ``figure`` follows from two cells of the named units, and which way, or None.

    The way is +1 for a rise over time, -1 for a fall, 0 for an operation across rows.

    A growth rate or a difference over time takes one of the named ``rows`` in two years (one
    of them among ``years`` when the compression names any); a share, ratio, sum or difference
    of rows takes two of the ``operands`` units (each named by its own phrase) in one of
    ``years``. A growth over more than one year may be compound (CAGR).

    Example:
        >>> from ib_middleware.judging.cells import read_page
        >>> from ib_middleware.judging.figures import figures
        >>> page = read_page("(Millions)\n2018\n2017\nCapex\n(1,577)\n(1,373)\n")
        >>> [derivation(f, page, {0}, {0}, set()) for f in figures("up $204 million, or 15%")]
        [('difference', 1), ('growth', 1)]
    """
    units = set(rows) | set(operands)
    groups = {cell.row for cell in page.cells if cell.unit in rows}
    pool = [c for c in page.cells if c.unit in units or c.row in groups][:_MAX_OPERANDS]
    if len(pool) < 2:
        return None
    percent = figure.percent or figure.bps
    target = figure.magnitude / 100 if figure.bps else figure.magnitude
    tolerance = figure.quantum / 100 if figure.bps else figure.quantum
    if not percent and figure.scale is not None:
        target *= Decimal(10) ** figure.scale
        tolerance *= Decimal(10) ** figure.scale
    try:
        results = (
            _percent_results(pool, rows, years)
            if percent
            else _amount_results([c for c in pool if not c.percent], figure, rows, years)
        )
        for kind, value in results:
            if _close(value, target, tolerance):
                way = 0 if kind in _ACROSS_ROWS else (1 if value > 0 else -1)
                return kind, way
    except (DivisionByZero, InvalidOperation):  # pragma: no cover - zero divisors are skipped
        return None
    return None

"""One sentence of a compression judged figure by figure against its page's cells.

For each figure: the years the sentence names for it, the rows its words name (the words
before it first, the whole sentence when those name none; among rows of amounts for an amount
and of percentages for a percentage), whether its words point down or out; then the cells that
hold its value decide: ``stated``, else ``derived`` (``derive``), else the likeliest failure.
A year the sentence names must be one the page names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ib_middleware.judging.cells import Page
from ib_middleware.judging.derive import Derivation, derivation
from ib_middleware.judging.figures import Figure, figures, periods
from ib_middleware.judging.lexicon import direction_around
from ib_middleware.judging.placement import (
    Naming,
    figure_years,
    name_units,
    operand_units,
    outflow,
    value_match,
    without_subject,
)

__all__ = ["REJECTIONS", "Finding", "Rejection", "judge_sentence", "sentences"]

Rejection = Literal[
    "unsupported figure", "wrong column", "wrong row", "wrong unit", "wrong sign", "unknown name"
]
REJECTIONS: tuple[Rejection, ...] = (
    "unsupported figure",
    "wrong column",
    "wrong row",
    "wrong unit",
    "wrong sign",
    "unknown name",
)
"""Every kind of rejection the support check gives."""

_SENTENCE_BREAK = re.compile(r"(?<=[.!?;])\s+(?=[A-Za-z(\"'$\d])")
_ABBREVIATION = re.compile(
    r"\b(?:jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|inc|co|corp|ltd|no|vs|approx|"
    r"e\.g|i\.e|u\.s|st|mr|ms|dr)\.$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Finding:
    """How the support check judged one figure or name of a compression.

    Attributes:
        verdict: ``stated``, ``derived``, ``verbatim`` (a quote of the page) or a rejection.
        start: Character offset where the span starts.
        end: Character offset just past the span.
        text: The span as written.
        derivation: For a derived figure, how: ``difference``, ``sum``, ``growth``,
            ``share``, ``ratio`` or ``point change``.
    """

    verdict: Literal["stated", "derived", "verbatim"] | Rejection
    start: int
    end: int
    text: str
    derivation: Derivation | None = None


@dataclass(frozen=True)
class _Where:
    """What a sentence says about one of its figures.

    Attributes:
        years: The years it names for the figure (empty: none).
        sentence_years: Every year the sentence names.
        naming: The rows its words name for the figure.
        any_naming: The rows they name among all rows (its digits in another unit there make
            a wrong unit).
        rows: Rows a figure over time may be derived from.
        operands: Rows a share, ratio, sum or difference of rows may take.
        money_out: Whether it words money out or a fall (an unsigned magnitude may then state
            a negative cell).
        way: Which way the words around the figure point (``lexicon.direction``).
    """

    years: set[int]
    sentence_years: set[int]
    naming: Naming
    any_naming: Naming
    rows: frozenset[int]
    operands: frozenset[int]
    money_out: bool
    way: int


def _judge_figure(
    figure: Figure, where: _Where, page: Page, *, allow_derived: bool
) -> tuple[Literal["stated", "derived"] | Rejection, Derivation | None]:
    """The verdict on one figure of a sentence, the likeliest failure named when none fits."""
    years, naming, money_out, way = where.years, where.naming, where.money_out, where.way
    failures: set[Rejection | Literal["wrong unit, other column"]] = set()
    for cell in page.cells:
        match = value_match(figure, cell)
        if match is None:
            continue
        row_ok = cell.unit in naming.named
        column_ok = not years or not cell.years or bool(years & set(cell.years))
        named_column = not years or bool(years & set(cell.years))
        if match == "unit":
            if cell.unit in where.any_naming.named:
                failures.add("wrong unit" if column_ok else "wrong unit, other column")
            continue
        if cell.value < 0:
            sign_ok = figure.negative or money_out
        elif page.units[cell.unit].kind == "row":
            # A table's sign is the page's statement: words of a fall or an outflow contradict
            # a positive cell, as a written minus does.
            sign_ok = not figure.negative and not (way < 0 and cell.value > 0)
        else:
            sign_ok = not figure.negative and way * cell.direction >= 0
        if row_ok and column_ok and sign_ok:
            return "stated", None
        if row_ok and column_ok:
            failures.add("wrong sign")
        elif row_ok:
            failures.add("wrong column")
        elif named_column:
            failures.add("wrong row")
    derivable = where.rows or where.operands
    # A long number stated in another row is that row's, not a coincidence to derive around.
    blocking = {"wrong sign", "wrong column"} | ({"wrong row"} if _digits(figure) >= 3 else set())
    if allow_derived and derivable and not failures & blocking:
        derived = derivation(figure, page, where.rows, where.operands, where.sentence_years)
        if derived is not None:
            how, change = derived
            # "rose $590 million" when it fell: the derived change has the other sign.
            if change * way < 0 and not figure.negative:
                return "wrong sign", None
            return "derived", how
    order: tuple[Rejection, ...] = ("wrong sign", "wrong column", "wrong unit", "wrong row")
    for kind in order:
        if kind in failures:
            return kind, None
    if "wrong unit, other column" in failures:
        return "wrong unit", None
    return "unsupported figure", None


def _digits(figure: Figure) -> int:
    return len(str(figure.magnitude).replace(".", "").lstrip("0"))


def _row_like(sentence: str, found: list[Figure]) -> bool:
    return len(found) >= 2 and not re.search(r"[.;:]\s*$", sentence[: found[0].start])


def sentences(text: str) -> list[tuple[int, str]]:
    r"""The sentences of a compression (lines split at sentence ends), with their offsets.

    Example:
        >>> sentences("Cash was $5 at Dec. 31, 2018. Capex rose.\nDebt fell")
        [(0, 'Cash was $5 at Dec. 31, 2018.'), (30, 'Capex rose.'), (42, 'Debt fell')]
    """
    units = []
    offset = 0
    for line in text.split("\n"):
        cursor = 0
        for match in _SENTENCE_BREAK.finditer(line):
            if _ABBREVIATION.search(line, 0, match.start()):
                continue  # "Dec. 31", "Inc. reported": a dot that ends a word, not a sentence
            units.append((offset + cursor, line[cursor : match.start()]))
            cursor = match.end()
        units.append((offset + cursor, line[cursor:]))
        offset += len(line) + 1
    return [(start, piece) for start, piece in units if piece.strip()]


def judge_sentence(
    start: int,
    sentence: str,
    page: Page,
    *,
    header_years: Sequence[int] = (),
    query: str = "",
    allow_derived: bool = True,
) -> list[Finding]:
    r"""The findings on the figures and years of one sentence of a compression.

    ``start`` is the sentence's offset in the compression; ``header_years`` the years of a
    header line above it, which name the columns of a row quoted as ``label v1 v2``.

    Example:
        >>> from ib_middleware.judging.cells import read_page
        >>> page = read_page("(Millions)\n2018\n2017\nCapex\n(1,577)\n(1,373)\n")
        >>> [(f.text, f.verdict) for f in judge_sentence(0, "Capex (1,373) (1,577)", page,
        ...     header_years=[2018, 2017])]
        [('(1,373)', 'wrong column'), ('(1,577)', 'wrong column')]
    """
    findings = []
    found_periods = periods(sentence)
    for period in found_periods:
        if period.year not in page.years:
            span = sentence[period.start : period.end]
            findings.append(Finding("wrong column", start + period.start, start + period.end, span))
    found = figures(sentence)
    years = figure_years(found, found_periods)
    if not found_periods and header_years and _row_like(sentence, found):
        years = [{year} for year in header_years[: len(found)]]
        years += [set() for _ in found[len(header_years) :]]
    money_out = outflow(sentence)
    all_years = {p.year for p in found_periods} | {y for ys in years for y in ys}
    words = without_subject(sentence, query)
    for figure in found:
        words = words[: figure.start] + " " * (figure.end - figure.start) + words[figure.end :]
    namings: dict[tuple[str, bool | None], Naming] = {}

    def naming_of(text: str, *, percent: bool | None) -> Naming:
        # A percentage sits in a row of percentages, an amount in a row of amounts.
        if (text, percent) not in namings:
            among = None
            if percent is not None:
                among = page.percent_units if percent else page.amount_units
            namings[text, percent] = name_units(page, text, among=among)
        return namings[text, percent]

    previous = 0
    for index, (figure, its_years) in enumerate(zip(found, years, strict=True)):
        percent = figure.percent or figure.bps
        # With several figures, the words before each name its row ("X was $a and Y $b").
        several = len(found) > 1
        left = naming_of(words[previous : figure.start] if several else "", percent=percent)
        following = found[index + 1].start if index + 1 < len(found) else len(sentence)
        over_time = naming_of(words, percent=None)
        where = _Where(
            years=its_years,
            sentence_years=all_years,
            naming=left if left.any_named else naming_of(words, percent=percent),
            any_naming=naming_of(words, percent=None),
            rows=over_time.named if over_time.any_named else frozenset(),
            operands=(
                operand_units(page, words[previous : figure.start], words[figure.end : following])
                if allow_derived
                else frozenset()
            ),
            money_out=money_out,
            way=direction_around(
                sentence[previous : figure.start], sentence[figure.end : following]
            ),
        )
        previous = figure.end
        verdict, how = _judge_figure(figure, where, page, allow_derived=allow_derived)
        findings.append(
            Finding(verdict, start + figure.start, start + figure.end, figure.text, how)
        )
    return findings

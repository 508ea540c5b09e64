"""The support check: figures and names of a compression against its context, by position."""

from __future__ import annotations

import pytest

from ib_middleware.judging.support import ContentSpan, content_spans, unsupported_content

PAGE = "Capital expenditure was $1,577 million in 2018. The logo is red."
TABLE = (
    "Cash flows\n(Millions)\n2018\n2017\n"
    "Purchases of PP&E\n(1,577)\n(1,373)\n"
    "Dividends paid\n(3,193)\n(2,803)\n"
)
ROWS = "Sales\n5,120\n4,900\nTax\n12\n9\nRent\n77\n70\nCosts\n3,310\n3,020"


def found(text: str, context: str, query: str = "") -> list[tuple[str, str, int, int]]:
    return [(s.kind, s.text, s.start, s.end) for s in unsupported_content(text, context, query)]


def test_content_spans_are_figures_and_names_in_order():
    text = "In FY2018 3M spent $1,577 million on PP&E."
    spans = content_spans(text)
    assert [(s.kind, s.text) for s in spans] == [
        ("figure", "FY2018"),
        ("entity", "3M"),
        ("figure", "$1,577 million"),
        ("entity", "PP&E"),
    ]
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_sentence_openers_and_lone_small_integers_are_neither():
    spans = content_spans("Capex was 5 times the 2 segments. Note 5 says 12%.")
    assert [(s.kind, s.text) for s in spans] == [("figure", "12%")]


@pytest.mark.parametrize(
    "figure", ["1,577", "$1,577", "(1,577)", "-1,577", "1577.0", "1577", "$1,577 million"]
)
def test_one_value_however_it_is_written(figure):
    assert found(f"Capex was {figure} in 2018.", TABLE) == []


@pytest.mark.parametrize("figure", ["$1.6 billion", "$1.58 billion", "1.577 billion"])
def test_rounded_to_the_precision_written_under_a_millions_header(figure):
    assert found(f"Capex was {figure}.", TABLE) == []


@pytest.mark.parametrize("figure", ["$1.5 billion", "$1.7 billion", "1,578", "$1,823 million"])
def test_other_values_are_absent(figure):
    text = f"Capex was {figure}."
    assert found(text, TABLE) == [("figure", figure, 10, 10 + len(figure))]


def test_a_year_is_a_figure_and_fy_names_the_year():
    assert found("In FY2018 capex was $1,577 million.", PAGE) == []
    assert found("In FY2016 capex was $1,577 million.", PAGE) == [("figure", "FY2016", 3, 9)]
    assert found("Capex was $1,577 million in 2016.", PAGE) == [("figure", "2016", 28, 32)]


def test_names_must_be_in_the_page_or_the_query():
    text = "3M capex was $1,577 million."
    assert found(text, PAGE) == [("entity", "3M", 0, 2)]
    assert found(text, PAGE, query="What was 3M's capital expenditure?") == []
    assert found("Capex at Acme was $1,577 million.", PAGE, query="capex?") == [
        ("entity", "Acme", 9, 13)
    ]


def test_names_compare_case_insensitively_and_without_possessive():
    page = "The ACME board met. " + PAGE
    assert found("Acme's capex was $1,577 million.", page) == []


def test_figure_from_another_row_is_misplaced():
    assert found("Sales 5,120 4,900", ROWS) == []
    assert found("Sales 3,310 4,900", ROWS) == [("misplaced figure", "3,310", 6, 11)]


def test_misplaced_figures_are_found_line_by_line_at_their_position_in_the_text():
    text = "Sales 5,120 4,900\nCosts 4,900 3,020"
    assert found(text, ROWS) == [("misplaced figure", "4,900", 24, 29)]
    assert found("Sales 5,120 4,900\nCosts 3,310 3,020", ROWS) == []


def test_an_absent_figure_is_reported_once_not_also_as_misplaced():
    assert unsupported_content("Sales 9,999 4,900", ROWS) == [ContentSpan("figure", 6, 11, "9,999")]


def test_a_verbatim_quote_is_never_misplaced():
    # The quote runs across rows exactly as the page does; reworded, the same figures are not.
    assert found("4,900 Tax 12 9", ROWS) == []
    assert found("4,900; Tax 12 9", ROWS) == [("misplaced figure", "4,900", 0, 5)]


def test_years_are_exempt_from_placement():
    # A table states its years in the header, never in the row the compression quotes.
    assert found("Purchases of PP&E (1,577) in 2018", TABLE) == []
    assert found("Purchases of PP&E (1,577) (1,373) in 2018 and 2017", TABLE) == []


def test_nothing_to_check_is_supported():
    assert unsupported_content("", PAGE) == []
    assert unsupported_content("The logo is red.", PAGE) == []
    assert found("Capex was 1,577.", "") == [("figure", "1,577", 10, 15)]


def test_a_different_scale_word_is_a_different_figure():
    assert found("Capex was $1,577 billion.", PAGE) == [("figure", "$1,577 billion", 10, 24)]

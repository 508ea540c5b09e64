"""The support check: figures and names of a compression against its page, by table cell."""

from __future__ import annotations

import pytest

from ib_middleware.judging.routing import check_support
from ib_middleware.judging.support import (
    REJECTIONS,
    ContentSpan,
    content_spans,
    support_findings,
    unsupported_content,
)

PAGE = "Capital expenditure was $1,577 million in 2018. The logo is red."
TABLE = (
    "Consolidated Statement of Cash Flows\nYears ended December 31\n(Millions)\n2018\n2017\n"
    "Net income including noncontrolling interest\n$\n5,363\n$\n4,869\n"
    "Net cash provided by (used in) investing activities\n222\n(3,086)\n"
    "Purchases of property, plant and equipment (PP&E)\n(1,577)\n(1,373)\n"
    "Acquisitions, net of cash acquired\n13\n(2,023)\n"
    "Dividends paid to shareholders\n(3,193)\n(2,803)\n"
    "Net increase (decrease) in cash and cash equivalents\n(200)\n655\n"
)
QUERY = "What is the FY2018 capital expenditure amount (in USD millions) for 3M?"


def found(text: str, context: str = TABLE, query: str = QUERY) -> list[tuple[str, str]]:
    return [(s.kind, s.text) for s in unsupported_content(text, context, query)]


def test_content_spans_are_figures_years_and_names_in_order():
    text = "In FY2018 3M spent $1,577 million at Acme."
    spans = content_spans(text)
    assert [(s.kind, s.text) for s in spans] == [
        ("figure", "FY2018"),
        ("entity", "3M"),
        ("figure", "$1,577 million"),
        ("entity", "Acme"),
    ]
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_ordinary_openers_and_lone_small_integers_are_neither_figures_nor_names():
    spans = content_spans("Capex was 5 times the 2 segments. Note 5 says 12%.")
    assert [(s.kind, s.text) for s in spans] == [("figure", "12%")]


@pytest.mark.parametrize(
    "figure",
    ["$1,577M", "$1,577 million", "$1.577 billion", "$1.6 billion", "$1.58bn", "1,577", "$2 bn"],
)
def test_a_cell_is_stated_however_its_scale_is_written(figure):
    assert found(f"Capex was {figure} in 2018.") == []


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Capex was $1,373M in 2018.", "wrong column"),
        ("Capex was $1,577M in 2017.", "wrong column"),
        ("Capex was $1,577 thousand in 2018.", "wrong unit"),
        ("Capex was $15.8bn in 2018.", "wrong unit"),
        ("Capex was 1,577% in 2018.", "wrong unit"),
        ("Dividends paid to shareholders were $1,577 million in 2018.", "wrong row"),
        ("Capex was $9.9bn in 2018.", "unsupported figure"),
        ("Capex was $1.2 billion in 2018.", "unsupported figure"),
        ("Capex was $1.4 billion in 2018.", "wrong column"),
        ("Net cash provided by investing activities was -$222 million in 2018.", "wrong sign"),
        ("Net cash used in investing activities was $222 million in 2018.", "wrong sign"),
        ("Cash increased by $200 million in 2018.", "wrong sign"),
    ],
)
def test_each_wrong_figure_is_rejected_with_its_kind(text, kind):
    [(got, _)] = found(text)
    assert got == kind


def test_a_stray_number_scaled_up_is_unsupported_not_stated():
    assert found("3M's net income was $13 billion in 2018.") == [
        ("unsupported figure", "$13 billion")
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Dividends paid were $3,193 million in 2018 and $2,803 million in 2017.",
        "Dividends paid were $3.19 and $2.80 billion in 2018 and 2017.",
        "In 2018 and 2017, dividends paid were $3,193 million and $2,803 million.",
        "Net cash used in investing activities was $3,086 million in 2017.",
        "Cash decreased by $200 million in 2018.",
        "3M spent $1,577 million on PP&E in 2018.",
    ],
)
def test_paired_years_and_outflows_worded_as_magnitudes_are_stated(text):
    assert found(text) == []


def test_swapped_years_are_wrong_columns():
    text = "Dividends paid were $2,803 million in 2018 and $3,193 million in 2017."
    assert found(text) == [("wrong column", "$2,803 million"), ("wrong column", "$3,193 million")]


def test_a_year_the_page_does_not_name_is_rejected():
    assert ("wrong column", "2015") in found("Capex was $1,577 million in 2015.")
    assert found("Capex was $1,577 million at December 31, 2018.") == []
    assert found("Capex was $1,577 million on 31 December 2018.") == []


def test_derived_figures_pass_and_say_how_unless_turned_off():
    text = "Capex rose $204 million, or 15%, from 2017 to 2018."
    findings = [(f.text, f.verdict, f.derivation) for f in support_findings(text, TABLE)]
    assert findings == [
        ("$204 million", "derived", "difference"),
        ("15%", "derived", "growth"),
    ]
    assert [s.kind for s in unsupported_content(text, TABLE, allow_derived=False)] == [
        "unsupported figure",
        "unsupported figure",
    ]


def test_a_wrong_growth_rate_is_not_derived():
    assert found("Capex rose 25% from 2017 to 2018.") == [("unsupported figure", "25%")]


def test_a_quoted_row_under_a_quoted_header_is_checked_by_column():
    assert found("2018 2017\nDividends paid (3,193) (2,803)") == []
    assert found("2018 2017\nDividends paid (2,803) (3,193)") == [
        ("wrong column", "(2,803)"),
        ("wrong column", "(3,193)"),
    ]


def test_verbatim_lines_and_elisions_always_pass():
    text = "(Millions) 2018 2017\nDividends paid to shareholders (3,193) (2,803)\n[…]\n"
    assert found(text) == []


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Honeywell's capex was $1,577 million in 2018.", "Honeywell's"),
        ("In 2018, capex at honeywell was $1,577 million.", "honeywell"),
        ("Capex at Acme was $1,577 million in 2018.", "Acme"),
    ],
)
def test_names_neither_page_nor_query_holds_are_unknown(text, name):
    assert found(text) == [("unknown name", name)]


def test_names_of_the_query_short_forms_and_possessives_are_known():
    page = "Johnson & Johnson completed the initial public offering of Kenvue. " + PAGE
    assert found("J&J's IPO of Kenvue closed.", page, query="") == []
    assert found("JnJ's capex was $1,577 million.", PAGE, query="Did JnJ spend?") == []
    assert found("3M's capex was $1,577 million in 2018.") == []


def test_nothing_to_check_is_supported_and_no_page_supports_nothing():
    assert unsupported_content("", PAGE) == []
    assert unsupported_content("The logo is red.", PAGE) == []
    assert found("Capex was 1,577.", "") == [("unsupported figure", "1,577")]


def test_every_rejection_kind_is_one_of_the_six():
    assert set(REJECTIONS) == {
        "unsupported figure",
        "wrong column",
        "wrong row",
        "wrong unit",
        "wrong sign",
        "unknown name",
    }
    assert unsupported_content("Capex was $1,823 million.", PAGE) == [
        ContentSpan("unsupported figure", 10, 24, "$1,823 million")
    ]


def test_the_reason_names_kind_and_position_never_the_value_unless_captured():
    spans, reason = check_support("Capex was $1,577M in 2017.", TABLE, QUERY)
    assert reason == "unsupported content: wrong column at characters 10-17"
    assert "1,577" not in reason
    _, captured = check_support("Capex was $1,577M in 2017.", TABLE, QUERY, capture_content=True)
    assert captured == "unsupported content: wrong column at characters 10-17 ('$1,577M')"
    assert spans == (ContentSpan("wrong column", 10, 17, "$1,577M"),)
    assert check_support("Capex was $1,577M in 2018.", TABLE, QUERY) == ((), None)

"""The support check's readers: figures and periods as written, a page's cells, names."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ib_middleware.judging.cells import read_page
from ib_middleware.judging.figures import figures, periods
from ib_middleware.judging.names import unknown_names
from ib_middleware.judging.placement import figure_years


@pytest.mark.parametrize(
    ("text", "magnitude", "scale", "negative", "percent"),
    [
        ("$1,577M", "1577", 6, False, False),
        ("$1.577 billion", "1.577", 9, False, False),
        ("$9.9bn", "9.9", 9, False, False),
        ("1.5mn", "1.5", 6, False, False),
        ("$250K", "250", 3, False, False),
        ("(1,577)", "1577", None, True, False),
        ("$(411)", "411", None, True, False),
        ("-$222 million", "222", 6, True, False),
        ("(14.1)%", "14.1", None, True, True),
        ("12.5 percent", "12.5", None, False, True),
    ],
)
def test_a_figure_keeps_its_magnitude_scale_sign_and_unit(
    text, magnitude, scale, negative, percent
):
    [figure] = figures(text)
    assert (figure.magnitude, figure.scale, figure.negative, figure.percent) == (
        Decimal(magnitude),
        scale,
        negative,
        percent,
    )
    assert figure.text == text


def test_basis_points_and_shared_scale_words():
    [bps] = figures("up 45 bps")
    assert bps.bps
    assert bps.magnitude == 45
    first, second = figures("$1.37 and $1.58 billion")
    assert (first.scale, second.scale) == (9, 9)


@pytest.mark.parametrize("text", ["3M", "10-K", "Note 4", "Exhibit 99.1", "3 segments", "Q2"])
def test_names_forms_notes_and_lone_small_integers_are_not_figures(text):
    assert figures(text) == []


@pytest.mark.parametrize(
    ("text", "years"),
    [
        ("FY2018", [(2018, 0)]),
        ("FY22", [(2022, 0)]),
        ("fiscal 2022", [(2022, 0)]),
        ("Q2 FY2024", [(2024, 2)]),
        ("December 31, 2018", [(2018, 0)]),
        ("31 December 2018", [(2018, 0)]),
        ("Dec. 31, 2018", [(2018, 0)]),
        ("Year Ended June 30, 2016", [(2016, 0)]),
        ("$2018 million", []),
    ],
)
def test_periods_are_read_apart_from_figures(text, years):
    assert [(p.year, p.quarter) for p in periods(text)] == years
    assert all(f.magnitude != 31 for f in figures(text))


def test_figures_take_the_nearest_year_or_pair_in_order():
    text = "Net sales rose from $14,082M in 2021 to $14,189M in 2022"
    assert figure_years(figures(text), periods(text)) == [{2021}, {2022}]
    text = "$1.37 and $1.58 billion in 2017 and 2018"
    assert figure_years(figures(text), periods(text)) == [{2017}, {2018}]
    text = "Revenue was $8,890 million in Q2 FY24"
    assert figure_years(figures(text), periods(text)) == [{2024, 2023}]


CASH_FLOWS = (
    "Consolidated Statement of Cash Flows\nYears ended December 31\n(Millions)\n"
    "2018\n2017\n2016\n"
    "Purchases of PP&E\n(1,577)\n(1,373)\n(1,420)\n"
    "Other net\n9\n\u2014\n(4)\n"
)


def test_a_table_row_maps_its_values_to_the_header_years_with_scale_and_sign():
    page = read_page(CASH_FLOWS)
    cells = [(str(c.value), c.scales, c.years) for c in page.cells if c.unit == 0]
    assert cells == [("-1577", (6,), (2018,)), ("-1373", (6,), (2017,)), ("-1420", (6,), (2016,))]
    other = [(str(c.value), c.years) for c in page.cells if c.unit == 1]
    assert other == [("9", (2018,)), ("0", (2017,)), ("-4", (2016,))]  # an em-dash is zero
    assert page.years == {2016, 2017, 2018}


def test_a_one_line_row_and_its_change_column():
    page = read_page(
        "Results of operations (in millions):\n\nYear ended December 31,\n2022\n2021\n"
        "Net sales $14,189 $14,082 1%\nGross margin $4,506 $5,063 (11%)\n"
    )
    row = [(str(c.value), c.percent, c.years) for c in page.cells if c.value > 1000 or c.percent]
    row = row[:3]
    assert row == [("14189", False, (2022,)), ("14082", False, (2021,)), ("1", True, ())]


def test_per_share_amounts_under_an_except_per_share_header():
    page = read_page(
        "(In millions, except per share amounts)\n2020\n2019\n"
        "Net sales\n11,303\n11,503\nDiluted\n$\n0.54\n$\n1.07\n"
    )
    [first, _, eps, _] = page.cells
    assert first.scales == (6,)
    assert set(eps.scales) == {6, 0}


def test_prose_figures_pair_with_years_said_respectively_and_keep_their_direction():
    page = read_page(
        "Earnings were $21.7 billion and $22.8 billion for the years 2022 and 2021, "
        "respectively. When compared to 2021, the $590 million decrease was driven by a "
        "$238 million increase in charges."
    )
    by_value = {str(c.value): c for c in page.cells}
    assert by_value["21.7"].years == (2022,)
    assert by_value["22.8"].years == (2021,)
    assert by_value["590"].direction == -1
    assert by_value["238"].direction == 1


def test_a_closing_page_number_is_not_a_cell():
    page = read_page("Net income was $5,363 million in 2018.\n \n60\n")
    assert [str(c.value) for c in page.cells] == ["5363"]


@pytest.mark.parametrize(
    ("text", "unknown"),
    [
        ("Honeywell's capex rose.", ["Honeywell's"]),
        ("Revenue at pepsico rose.", ["pepsico"]),
        ("Acme reported capex.", ["Acme"]),
        ("Capex rose. Spending on PP&E and SG&A fell.", []),
        ("J&J's IPO of Kenvue closed.", []),
        ("Pre-tax earnings at 3M's plants rose.", []),
    ],
)
def test_names_are_checked_at_sentence_start_in_lowercase_and_as_short_forms(text, unknown):
    page = (
        "Johnson & Johnson completed the initial public offering of Kenvue. 3M plants "
        "spent more on pre-tax items."
    )
    assert [span.text for span in unknown_names(text, page)] == unknown

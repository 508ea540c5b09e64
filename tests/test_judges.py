"""Judges: normalisation, containment, numbers, exact match and token F1, table-driven."""

from __future__ import annotations

import pytest

from ib_middleware.lab.judges import (
    JUDGES,
    answer_contained,
    exact_match,
    extract_numbers,
    facts_contained,
    is_numeric_answer,
    normalize_text,
    numeric_match,
    token_f1,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello,   World!", "hello world"),
        ("$1,577.00", "1577.00"),
        ("1,234,567 units", "1234567 units"),
        ("End of sentence. Next", "end of sentence next"),
        ("3.5% growth", "3.5 growth"),
        ("data-center_segment", "data center segment"),
        ("\u00a0non\u2011breaking\u00a0", "non breaking"),
        ("", ""),
    ],
)
def test_normalize_text(text, expected):
    assert normalize_text(text) == expected


@pytest.mark.parametrize(
    ("answer", "numeric"),
    [
        ("$1577.00", True),
        ("12.4%", True),
        ("24.26", True),
        ("-0.4", True),
        ("(370)", True),
        ("$1.8 bn", True),
        ("2,018 million", True),
        ("$400,000,000 increase.", False),
        ("Yes", False),
        ("36%. The answer assumes FY2023", False),
        ("", False),
    ],
)
def test_is_numeric_answer(answer, numeric):
    assert is_numeric_answer(answer) is numeric


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("1,577", [1577.0]),
        ("(370) and 12.5%", [370.0, 12.5]),
        ("$1.6 billion", [1.6, 1600.0]),
        ("$2,018mn", [2018.0, 2018.0]),
        ("5 thousand", [5.0, 0.005]),
        ("FY2022 and 10-K", [10.0]),
        ("3 months", [3.0]),
        ("no numbers", []),
    ],
)
def test_extract_numbers(text, values):
    assert extract_numbers(text) == pytest.approx(values)


@pytest.mark.parametrize(
    ("answer", "text", "expected"),
    [
        # numeric gold answers
        ("$1577.00", "Purchases of PP&E (1,577) (1,373)", True),
        ("$1577.00", "capital expenditure was $1.577 billion", True),
        ("$1577.00", "capex 1,578", False),
        ("12.4%", "margin of 12.4 percent", True),
        ("12.4%", "margin of 12.40%", True),
        ("4.2%", "grew 14.25%", False),
        ("24.26", "a multiple of 24.26x", True),
        ("4.2", "4.25 and 34.2", False),
        ("24.26", "ratio of 24.26.", True),
        ("0.66", "0.66", True),
        ("-14.76%", "rate was (14.76)%", True),
        # text answers
        ("Data Center", "The data-center segment grew.", True),
        ("Data Center", "the datacenter segment", False),
        ("Yes", "yesterday", False),
        ("There are none", "there are none.", True),
        ("", "anything", False),
    ],
)
def test_answer_contained(answer, text, expected):
    assert answer_contained(answer, text) is expected


@pytest.mark.parametrize(
    ("answer", "text", "expected"),
    [
        ("AMCOR's Adj. EBITDA was $2,018mn", "Adjusted EBITDA 2,018", True),
        ("Shrank by 0.9% organically.", "organic sales fell 0.9%", True),
        ("Shrank by 0.9% organically.", "organic sales fell 1.9%", False),
        ("From 24.6% to 21.6%", "rates: 24.6% and 21.6%", True),
        ("From 24.6% to 21.6%", "rates: 24.6% only", False),
        ("Developed Rest of the World", "developed rest of the world", True),
        ("Developed Rest of the World", "rest of world", False),
        ("$1577.00", "1,577", True),
    ],
)
def test_facts_contained(answer, text, expected):
    assert facts_contained(answer, text) is expected


@pytest.mark.parametrize(
    ("prediction", "answer", "rel_tol", "expected"),
    [
        ("$1,577 million", "$1577.00", 0.01, True),
        ("about 1.58 billion", "$1577.00", 0.01, True),
        ("about 1.6 billion", "$1577.00", 0.01, False),
        ("about 1.6 billion", "$1577.00", 0.02, True),
        ("12.5%", "12.4%", 0.01, True),
        ("13%", "12.4%", 0.01, False),
        ("no figure", "12.4%", 0.01, False),
        ("12.4", "no figure", 0.01, False),
        ("0", "0", 0.01, True),
    ],
)
def test_numeric_match(prediction, answer, rel_tol, expected):
    assert numeric_match(prediction, answer, rel_tol=rel_tol) is expected


@pytest.mark.parametrize(
    ("prediction", "answer", "expected"),
    [
        ("Data Center.", "data center", True),
        ("$1,577", "1577", True),
        ("data centers", "data center", False),
        ("", "", True),
    ],
)
def test_exact_match(prediction, answer, expected):
    assert exact_match(prediction, answer) is expected


@pytest.mark.parametrize(
    ("prediction", "answer", "expected"),
    [
        ("the cat sat", "the cat sat", 1.0),
        ("cat", "the cat sat", 0.5),
        ("capex was 1577 million", "1577 million", 2 / 3),
        ("a a b", "a b b", 2 / 3),
        ("yes", "no", 0.0),
        ("", "answer", 0.0),
        ("", "", 1.0),
    ],
)
def test_token_f1(prediction, answer, expected):
    assert token_f1(prediction, answer) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("name", "text", "answer", "expected"),
    [
        ("facts", "EBITDA 2,018", "EBITDA was $2,018mn", True),
        ("contains", "EBITDA 2,018", "EBITDA was $2,018mn", False),
        ("contains", "capex 1,577", "$1577.00", True),
        ("numeric", "capex about 1,580", "$1577.00", True),
        ("contains", "capex about 1,580", "$1577.00", False),
        ("numeric", "the data center", "Data Center", True),
    ],
)
def test_named_judges_take_text_then_answer(name, text, answer, expected):
    assert JUDGES[name](text, answer) is expected


@pytest.mark.parametrize(
    ("name", "text", "answer", "expected"),
    [
        ("exact", "Data-Center.", "data center", True),
        ("exact", "$1,577", "1577", True),
        ("exact", "the data center", "data center", False),
        ("token_f1", "the data center", "data center", True),  # F1 0.8
        ("token_f1", "cat", "the cat sat", True),  # F1 exactly 0.5: the threshold is inclusive
        ("token_f1", "cat", "the cat sat down", False),  # F1 0.4
        ("token_f1", "yes", "no", False),
        ("token_f1", "", "", True),
    ],
)
def test_exact_and_token_f1_judges(name, text, answer, expected):
    assert JUDGES[name](text, answer) is expected

"""The support check on the hand-written support cases (the bundled support_cases.jsonl).

The file's shape is checked strictly. The verdicts are checked case by case against what a
reviewer expects; the cases the current check gets wrong are listed in ``KNOWN_MISSES`` and
marked as strict expected failures, so a change that fixes one (or breaks another) shows up
here and the list is refreshed with it. ``bench/support_cases.py`` prints the rates per kind.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ib_middleware.judging.routing import check_support
from ib_middleware.lab.data import SupportCase, load_support_cases
from ib_middleware.lab.data.support_cases import (
    FAITHFUL_KINDS,
    REJECT_KINDS,
    WRONG_KINDS,
    support_cases_path,
)

CASES = load_support_cases()


def _ids(kind: str, numbers: str) -> list[str]:
    return [f"{kind}-{number}" for number in numbers.split()]


# Cases whose verdict the current support check gets wrong (refresh with
# `uv run python bench/support_cases.py --misses`).
KNOWN_MISSES = frozenset(
    (
        *_ids("abbreviations", "10"),
        *_ids("derived", "10 12"),
        *_ids("wrong_row", "03"),
    )
)


def verdict(case: SupportCase) -> str:
    spans, _ = check_support(case.compression, case.context, case.query)
    return "reject" if spans else "pass"


def test_the_file_loads_with_enough_cases_of_every_kind():
    assert len(CASES) >= 120
    counts = Counter(case.kind for case in CASES)
    assert set(counts) == set(FAITHFUL_KINDS) | set(WRONG_KINDS)
    assert min(counts.values()) >= 8, counts
    assert len({case.id for case in CASES}) == len(CASES)
    assert len({(case.financebench_id, case.page) for case in CASES}) >= 12


def test_every_case_is_consistent():
    for case in CASES:
        assert case.id.startswith(f"{case.kind}-"), case.id
        assert case.expected == ("pass" if case.kind in FAITHFUL_KINDS else "reject"), case.id
        if case.expected == "reject":
            assert case.reject_kind in REJECT_KINDS, case.id
        else:
            assert case.reject_kind is None, case.id
        assert case.context.strip(), case.id
        assert case.compression.strip(), case.id
        assert case.note.strip(), case.id


def test_known_misses_name_cases():
    assert {case.id for case in CASES} >= KNOWN_MISSES


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            case,
            id=case.id,
            marks=[pytest.mark.xfail(strict=True, reason="known miss of the current support check")]
            if case.id in KNOWN_MISSES
            else [],
        )
        for case in CASES
    ],
)
def test_the_support_check_gives_the_expected_verdict(case: SupportCase):
    assert verdict(case) == case.expected, case.note


def test_the_aggregate_rates_are_reported(record_property):
    faithful = [case for case in CASES if case.expected == "pass"]
    wrong = [case for case in CASES if case.expected == "reject"]
    passed = sum(verdict(case) == "pass" for case in faithful) / len(faithful)
    rejected = sum(verdict(case) == "reject" for case in wrong) / len(wrong)
    record_property("faithful_passed", round(passed, 3))
    record_property("wrong_rejected", round(rejected, 3))
    print(f"support cases: faithful passed {passed:.1%}, wrong rejected {rejected:.1%}")
    # The rates and the known misses tell one story.
    assert passed == sum(case.id not in KNOWN_MISSES for case in faithful) / len(faithful)
    assert rejected == sum(case.id not in KNOWN_MISSES for case in wrong) / len(wrong)


def _write(tmp_path: Path, rows: list[object]) -> Path:
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    return path


def _first_row() -> dict[str, object]:
    with support_cases_path().open(encoding="utf-8") as handle:
        return dict(json.loads(handle.readline()))


def test_a_small_file_loads_with_its_page(tmp_path):
    [case] = load_support_cases(_write(tmp_path, [_first_row()]))
    assert case == CASES[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"expected": "maybe"}, "expects 'pass'"),
        ({"kind": "vibes"}, "unknown kind 'vibes'"),
        ({"page": 7}, "`page` 7 is not an index"),
        ({"page": "0"}, "`page` must be a int"),
        ({"financebench_id": "nope"}, "no bundled FinanceBench case 'nope'"),
        ({"note": None}, "`note` must be a str"),
        ({"reject_kind": "wrong row"}, "a pass case has no `reject_kind`"),
    ],
)
def test_a_malformed_line_is_named(tmp_path, change, message):
    row = {**_first_row(), **change}
    path = _write(tmp_path, [_first_row() | {"id": "other"}, row])
    with pytest.raises(ValueError, match=r"cases\.jsonl:2: ") as raised:
        load_support_cases(path)
    assert message in str(raised.value)


def test_a_reject_without_its_kind_and_a_repeated_id_are_named(tmp_path):
    wrong = next(case for case in CASES if case.expected == "reject")
    with support_cases_path().open(encoding="utf-8") as handle:
        row = next(r for r in map(json.loads, handle) if r["id"] == wrong.id)
    with pytest.raises(ValueError, match=r"cases\.jsonl:1: a reject needs `reject_kind`"):
        load_support_cases(_write(tmp_path, [{**row, "reject_kind": None}]))
    with pytest.raises(ValueError, match=r"cases\.jsonl:2: id .* is used by an earlier line"):
        load_support_cases(_write(tmp_path, [row, row]))
    (tmp_path / "broken.jsonl").write_text("{\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.jsonl:1: invalid JSON"):
        load_support_cases(tmp_path / "broken.jsonl")
    with pytest.raises(ValueError, match=r"cases\.jsonl:1: expected a JSON object"):
        load_support_cases(_write(tmp_path, [[1, 2]]))

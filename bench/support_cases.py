"""The support check on the hand-written support cases: the share as expected, per kind.

Every case of ``support_cases.jsonl`` (ib_middleware.lab.data.support_cases: compressions of
bundled FinanceBench pages, faithful or wrong in one known way) goes through
``ib_middleware.judging.routing.check_support(compression, page, query)``; a case passes when
the check reports no span. Per kind: the number of cases, the share with the expected verdict
(passed for a faithful kind, rejected for a wrong one), and for a wrong kind the share whose
rejection names the expected kind of span (a looser measure; reported only when the check
names span kinds from the cases' vocabulary: unsupported figure, wrong column, wrong row, wrong
unit, wrong sign, unknown name). Then the faithful cases passed and the wrong ones rejected
over all kinds, and the median time of one check. The last line is one JSON object.

Run: uv run python bench/support_cases.py
Data: FinanceBench sample (Islam et al., 2023; CC BY-NC 4.0), bundled with the package.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from ib_middleware.judging.routing import check_support
from ib_middleware.lab.data.support_cases import (
    FAITHFUL_KINDS,
    REJECT_KINDS,
    WRONG_KINDS,
    SupportCase,
    load_support_cases,
)

Check = Callable[[str, str, str], Sequence[Any]]
"""A support check: (compression, context, query) to the spans it objects to."""


def _spans(compression: str, context: str, query: str) -> Sequence[Any]:
    return check_support(compression, context, query)[0]


def run(cases: Sequence[SupportCase], check: Check = _spans) -> list[dict[str, Any]]:
    """One row per case: its verdict, the kinds of the spans reported, the check's time."""
    rows = []
    for case in cases:
        started = time.perf_counter()
        spans = check(case.compression, case.context, case.query)
        elapsed = time.perf_counter() - started
        rows.append(
            {
                "id": case.id,
                "kind": case.kind,
                "expected": case.expected,
                "reject_kind": case.reject_kind,
                "verdict": "reject" if spans else "pass",
                "span_kinds": sorted({str(getattr(span, "kind", "")) for span in spans}),
                "seconds": elapsed,
            }
        )
    return rows


def _share(hits: int, n: int) -> float | None:
    return round(hits / n, 3) if n else None


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The per-kind table and the overall rates (the JSON line's fields)."""
    names_kinds = any(kind in REJECT_KINDS for row in rows for kind in row["span_kinds"])
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in (*FAITHFUL_KINDS, *WRONG_KINDS):
        group = [row for row in rows if row["kind"] == kind]
        if not group:
            continue
        expected = sum(row["verdict"] == row["expected"] for row in group)
        named = sum(
            row["verdict"] == "reject" and row["reject_kind"] in row["span_kinds"] for row in group
        )
        wrong = kind in WRONG_KINDS
        by_kind[kind] = {
            "n": len(group),
            "as_expected": _share(expected, len(group)),
            "kind_as_expected": _share(named, len(group)) if wrong and names_kinds else None,
        }
    passed = [row["verdict"] == "pass" for row in rows if row["expected"] == "pass"]
    rejected = [row["verdict"] == "reject" for row in rows if row["expected"] == "reject"]
    return {
        "benchmark": "support_cases",
        "n_cases": len(rows),
        "faithful_passed": _share(sum(passed), len(passed)),
        "wrong_rejected": _share(sum(rejected), len(rejected)),
        "by_kind": by_kind,
        "median_ms_per_check": (
            round(statistics.median(row["seconds"] for row in rows) * 1000, 3) if rows else None
        ),
    }


def table(summary: dict[str, Any]) -> str:
    """The per-kind table as text."""

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    lines = [f"{'kind':<16}{'expect':>8}{'n':>5}{'as expected':>14}{'kind named':>12}"]
    for kind, row in summary["by_kind"].items():
        expect = "pass" if kind in FAITHFUL_KINDS else "reject"
        lines.append(
            f"{kind:<16}{expect:>8}{row['n']:>5}{cell(row['as_expected']):>14}"
            f"{cell(row['kind_as_expected']):>12}"
        )
    lines.append(
        f"faithful passed {cell(summary['faithful_passed'])}, "
        f"wrong rejected {cell(summary['wrong_rejected'])}, "
        f"{summary['n_cases']} cases, median {summary['median_ms_per_check']} ms per check"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", help="a support cases file (the bundled one by default)")
    parser.add_argument("--misses", action="store_true", help="list the cases not as expected")
    args = parser.parse_args(argv)
    rows = run(load_support_cases(args.cases))
    summary = summarize(rows)
    print(table(summary))
    if args.misses:
        for row in rows:
            if row["verdict"] != row["expected"]:
                print(f"miss {row['id']}: expected {row['expected']}, got {row['verdict']}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

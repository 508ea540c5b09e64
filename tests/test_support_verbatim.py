"""Text copied from the page always passes the support check (the default ladder copies text).

Every bundled FinanceBench page (75 cases; CC BY-NC 4.0, see the data README) is compressed by
the segments rung at several budgets, and by the graded default ladder's settings: none of
those verbatim compressions may be rejected, and a reworded copy of the same figures is still
judged cell by cell (it does not pass for free).
"""

from __future__ import annotations

import pytest

from ib_middleware.judging.routing import check_support
from ib_middleware.lab.data import load_financebench
from ib_middleware.selection import SegmentCompressor

CASES = load_financebench()
COMPRESSORS = [
    SegmentCompressor(),
    SegmentCompressor(budget_tokens=400, max_segments=None),
    SegmentCompressor(budget_share=0.5, max_segments=None, context_words=True, second_hop=True),
]


@pytest.mark.parametrize("compressor", COMPRESSORS, ids=lambda c: c.name)
def test_no_verbatim_keep_of_any_bundled_page_is_rejected(compressor):
    rejected = []
    for case in CASES:
        context = "\n\n".join(case.pages)
        text = compressor.compress(context, case.query).text
        spans, reason = check_support(text, context, case.query)
        if spans:
            rejected.append((case.case_id, reason))
    assert rejected == []


def test_a_reworded_copy_is_checked_not_waved_through():
    case = CASES[0]  # 3M's cash flow statement
    context = case.pages[0]
    assert check_support("Reportedly, capex was $1,577 million in 2018.", context, "") == ((), None)
    spans, _ = check_support("Reportedly, capex was $1,373 million in 2018.", context, "")
    assert [span.kind for span in spans] == ["wrong column"]

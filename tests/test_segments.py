"""Structure-aware segments of a page, and the compressor that selects whole segments."""

from __future__ import annotations

import pytest

from ib_middleware.compressors import ApproximateTokenCounter
from ib_middleware.segments import (
    ELISION,
    bm25_scores,
    is_value_line,
    join_segments,
    split_segments,
)
from ib_middleware.selection import SegmentCompressor

TABLE = (
    "Cash flows\n(Millions)\n2018\n2017\n"
    "Capex\n(1,577)\n(1,373)\n"
    "Dividends\n(3,193)\n(2,803)\n"
    "Done. Next one."
)
HEADER = "(Millions) 2018 2017"
PROSE = (
    "Capex was $1,577 million in 2018. The logo is red. The board met twice. "
    "Dividends were $3,193 million, and dividends rose again."
)


def test_table_cells_join_their_label_into_rows_under_the_header():
    segments = split_segments(TABLE)
    assert [(s.kind, s.text) for s in segments] == [
        ("sentence", "Cash flows"),
        ("header", HEADER),
        ("row", "Capex (1,577) (1,373)"),
        ("row", "Dividends (3,193) (2,803)"),
        ("sentence", "Done."),
        ("sentence", "Next one."),
    ]
    capex, dividends = segments[2], segments[3]
    assert capex.header == dividends.header == HEADER
    assert segments[4].header == ""
    assert [s.index for s in segments] == list(range(6))
    assert TABLE[capex.start : capex.end] == "Capex\n(1,577)\n(1,373)"


def test_sentences_keep_their_offsets_in_the_page():
    segments = split_segments(PROSE)
    assert [s.text for s in segments] == [
        "Capex was $1,577 million in 2018.",
        "The logo is red.",
        "The board met twice.",
        "Dividends were $3,193 million, and dividends rose again.",
    ]
    assert {s.kind for s in segments} == {"sentence"}
    assert all(PROSE[s.start : s.end] == s.text for s in segments)


def test_list_items_stay_whole_with_their_continuation_lines():
    page = "Risks:\n(a) Competition may increase\nin Asia.\n(b) Costs may rise.\nAfter the list."
    assert [(s.kind, s.text) for s in split_segments(page)] == [
        ("sentence", "Risks:"),
        ("item", "(a) Competition may increase in Asia."),
        ("item", "(b) Costs may rise."),
        ("sentence", "After the list."),
    ]
    dashes = "Segments:\n- Safety and industrial\n- Health care"
    assert [s.kind for s in split_segments(dashes)] == ["sentence", "item", "item"]


def test_numbered_list_items_stay_whole():
    page = "Risks:\n1. Competition may increase.\n2. Costs may rise."
    assert [(s.kind, s.text) for s in split_segments(page)] == [
        ("sentence", "Risks:"),
        ("item", "1. Competition may increase."),
        ("item", "2. Costs may rise."),
    ]


def test_value_lines_hold_figures_only():
    assert is_value_line(" $ (1,577) ")
    assert is_value_line("12.5%")
    assert is_value_line("—")
    assert not is_value_line("Capex (1,577)")
    assert not is_value_line("   ")


def test_join_segments_in_source_order_with_elisions_and_headers():
    segments = split_segments(TABLE)
    capex, dividends, done = segments[2], segments[3], segments[4]
    assert join_segments([done, capex]) == f"{HEADER}\n{capex.text}\n{ELISION}\n{done.text}"
    # Adjacent rows: no elision, and the shared header once.
    assert join_segments([dividends, capex]) == f"{HEADER}\n{capex.text}\n{dividends.text}"
    assert join_segments([capex, dividends], with_headers=False) == (
        f"{capex.text}\n{dividends.text}"
    )
    # A header already chosen is not repeated; a segment chosen twice appears once.
    assert join_segments([segments[1], capex, capex]) == f"{HEADER}\n{capex.text}"
    assert join_segments([]) == ""


def test_bm25_scores_rank_the_texts_for_the_query():
    texts = ["Capex was 5.", "The logo is red.", "capex capex"]
    scores = bm25_scores(texts, "What was capex?")
    assert len(scores) == 3
    assert scores[1] == 0.0
    assert scores[2] > scores[0] > 0.0
    assert bm25_scores(texts, "what was the") == [0.0, 0.0, 0.0]  # stopwords only
    assert bm25_scores([], "capex") == []


# --- SegmentCompressor ---------------------------------------------------------------------------


def test_selection_keeps_the_header_with_its_row():
    compression = SegmentCompressor().compress(TABLE, "What was capex?")
    assert compression.text == f"{HEADER}\nCapex (1,577) (1,373)"
    assert compression.method == "extractive"
    assert compression.calls == 0
    counter = ApproximateTokenCounter()
    assert compression.input_tokens == counter.count_tokens(TABLE)
    assert compression.output_tokens == counter.count_tokens(compression.text)


def test_selection_keeps_source_order_and_marks_gaps():
    query = "dividends and capex"
    scores = bm25_scores([s.text for s in split_segments(PROSE)], query)
    assert scores[3] > scores[0] > 0.0  # the dividends sentence ranks first
    compressor = SegmentCompressor()
    assert [s.index for s in compressor.select(PROSE, query)] == [0, 3]
    assert compressor.compress(PROSE, query).text == (
        f"Capex was $1,577 million in 2018.\n{ELISION}\n"
        "Dividends were $3,193 million, and dividends rose again."
    )


def test_nothing_relevant_gives_an_empty_compression():
    compression = SegmentCompressor().compress(TABLE, "What colour is the logo?")
    assert compression.text == ""
    assert compression.output_tokens == 0


@pytest.mark.parametrize(
    "options",
    [{"budget_tokens": 20}, {"max_segments": 1}, {"relative_score": 1.0}],
    ids=["budget", "max_segments", "relative_score"],
)
def test_limits_keep_only_the_best_segment(options):
    text = SegmentCompressor(**options).compress(PROSE, "dividends and capex").text
    assert text == "Dividends were $3,193 million, and dividends rose again."


def test_the_best_segment_is_kept_even_over_budget():
    compression = SegmentCompressor(budget_tokens=1).compress(PROSE, "dividends")
    assert compression.text == "Dividends were $3,193 million, and dividends rose again."


def test_name_and_bad_options():
    assert SegmentCompressor().name == "segments-160"
    assert SegmentCompressor(budget_tokens=40).name == "segments-40"
    assert SegmentCompressor(name="rows").name == "rows"
    for options in ({"budget_tokens": 0}, {"max_segments": 0}):
        with pytest.raises(ValueError, match="budget_tokens"):
            SegmentCompressor(**options)
    for options in ({"relative_score": 1.5}, {"budget_share": 1.0}):
        with pytest.raises(ValueError, match="relative_score"):
            SegmentCompressor(**options)


def test_budget_share_grows_the_budget_on_long_pages():
    compressor = SegmentCompressor(budget_tokens=40, budget_share=0.3)
    assert compressor.budget(100) == 40
    assert compressor.budget(1000) == 300
    page = " ".join(f"Capex item {i} was {i},000." for i in range(120))
    short = SegmentCompressor(budget_tokens=40, max_segments=200, relative_score=0.0)
    grown = SegmentCompressor(
        budget_tokens=40, max_segments=200, relative_score=0.0, budget_share=0.3
    )
    small, large = (c.compress(page, "What was capex?") for c in (short, grown))
    assert small.output_tokens <= 40 < large.output_tokens <= 0.3 * large.input_tokens


async def test_async_twin_gives_the_same_selection():
    compressor = SegmentCompressor()
    sync = compressor.compress(TABLE, "What was capex?")
    asynchronous = await compressor.acompress(TABLE, "What was capex?")
    assert asynchronous.text == sync.text

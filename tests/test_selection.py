"""Selection options of the segments compressor: share budgets, context words, facets, hops."""

from __future__ import annotations

from unittest import mock

import pytest

from ib_middleware import selection
from ib_middleware.compressors import ApproximateTokenCounter
from ib_middleware.segments import split_segments
from ib_middleware.selection import SegmentCompressor, facets, rank_segments

RESULTS = (
    "Big Stone Gap (film)\n"
    "Big Stone Gap is a 2014 American comedy film directed by Adriana Trigiani. "
    "It is set in Virginia.\n\n"
    "Weather\n"
    "Rain fell in Greenwich on Tuesday. The village fair was cancelled.\n\n"
    "Adriana Trigiani\n"
    "Adriana Trigiani is an Italian American author. She lives in Greenwich Village."
)
QUERY = "The director of the comedy Big Stone Gap is based in what New York city?"


def test_a_block_opening_line_titles_its_sentences() -> None:
    segments = split_segments(RESULTS)
    assert segments[0].title == "Big Stone Gap (film)"
    assert segments[4].title == segments[5].title == "Adriana Trigiani"
    assert segments[5].ranked_text == "Adriana Trigiani She lives in Greenwich Village."
    # A long line naming a year is prose, not a table header.
    assert all(s.kind == "sentence" for s in segments)
    assert split_segments("No blank lines here.\nOne block.")[0].title == ""


def test_the_second_hop_follows_the_bridge_title() -> None:
    plain = rank_segments(RESULTS, QUERY, context_words=True)
    hop = rank_segments(RESULTS, QUERY, context_words=True, second_hop=True)
    lives = next(i for i, s in enumerate(plain.segments) if s.text.startswith("She lives"))
    # Its title is all it shares with the question's bridge: the first hit names her.
    assert plain.scores[lives] == 0.0 < hop.scores[lives]
    assert list(hop.order).index(lives) < list(plain.order).index(lives)
    assert selection._bridges(hop.segments, list(plain.order[:2])) == ["Adriana Trigiani"]


def test_rungs_of_one_item_share_one_split_and_ranking() -> None:
    selection._RANKINGS.clear()
    with mock.patch.object(selection, "split_segments", wraps=split_segments) as split:
        for share in (0.1, 0.25, 0.5):
            SegmentCompressor(budget_share=share, max_segments=None).compress(RESULTS, QUERY)
        assert split.call_count == 1
        SegmentCompressor().compress(RESULTS, "another query")
        assert split.call_count == 2


def test_the_ranking_cache_is_small() -> None:
    selection._RANKINGS.clear()
    for number in range(selection._CACHE_SIZE + 5):
        rank_segments(RESULTS, f"query {number}")
    assert len(selection._RANKINGS) == selection._CACHE_SIZE


@pytest.mark.parametrize("share", [0.1, 0.25, 0.5])
def test_a_share_budget_fills_up_to_its_share(share: float) -> None:
    counter = ApproximateTokenCounter()
    page = " ".join(f"Capex item {i} was {i},000 in 2018." for i in range(200))
    compressor = SegmentCompressor(
        budget_tokens=1, budget_share=share, max_segments=None, relative_score=0.0
    )
    compression = compressor.compress(page, "What was capex in 2018?")
    assert compression.output_tokens <= share * counter.count_tokens(page)
    assert compression.output_tokens >= 0.8 * share * counter.count_tokens(page)


def test_facets_keep_a_segment_for_every_year_of_the_query() -> None:
    page = (
        "Revenue grew in 2018 and revenue grew again, revenue everywhere. "
        "Revenue was 5 in 2019. The logo is red."
    )
    query = "What was revenue in 2018 and 2019?"
    assert facets(query, tuple(split_segments(page))) == ["2018", "2019"]  # no table: no metric
    one = SegmentCompressor(max_segments=1).select(page, query)
    assert [s.index for s in one] == [1]
    covered = SegmentCompressor(max_segments=2, relative_score=1.0, cover_facets=True)
    assert [s.index for s in covered.select(page, query)] == [0, 1]


def test_no_segment_cap_and_bad_options() -> None:
    assert len(SegmentCompressor(max_segments=None, relative_score=0.0).select(RESULTS, QUERY)) > 4
    with pytest.raises(ValueError, match="max_segments"):
        SegmentCompressor(max_segments=0)

"""Relevant-information PMI with a fake scorer: both witnesses, the cache, errors, routing."""

from __future__ import annotations

import math

import pytest

from ib_middleware import EngineError
from ib_middleware.compressors import ApproximateTokenCounter, ExtractiveCompressor
from ib_middleware.engines import ContinuationScore, ScoreRequest
from ib_middleware.judging.relevance import DEFAULT_RELEVANT_TEMPLATE, RelevantInformationEstimator
from ib_middleware.judging.routing import Rung, judge, signal
from ib_middleware.stage import CompressionStage
from ib_middleware.testing import FakeScorer

MODES = ["sync", "async"]
PAGE = (
    "The logo is red. Capital expenditure guidance for 2019 is $1,700 million. "
    "The board met twice. Capital expenditure was $1,577 million in 2018, capital expenditure "
    "at a high. Expenditure on travel was small."
)
QUERY = "What was capital expenditure in 2018?"
GUIDANCE = "Capital expenditure guidance for 2019 is $1,700 million."
ACTUAL = "Capital expenditure was $1,577 million in 2018, capital expenditure at a high."
TRAVEL = "Expenditure on travel was small."
GOOD = "Capex was $1,577 million in 2018."


def evidence_scorer() -> FakeScorer:
    """The relevant part costs 1 nat after notes stating 1,577, else 5 nats."""
    return FakeScorer(lambda prompt, s: -1.0 if "1,577" in prompt else -5.0)


async def estimate(estimator, compression, mode, *, context=PAGE, query=QUERY):
    if mode == "sync":
        return estimator.estimate(context, query, compression)
    return await estimator.aestimate(context, query, compression)


def test_relevant_part_is_the_top_segments_in_source_order():
    # BM25 ranks ACTUAL first, then GUIDANCE, then TRAVEL; the logo and the board share no term.
    def part(k):
        return RelevantInformationEstimator(
            FakeScorer(), witness="segments", relevant_segments=k
        ).relevant_part(PAGE, QUERY)

    assert part(1) == ACTUAL
    assert part(2) == f"{GUIDANCE}\n{ACTUAL}"  # source order, no elision mark
    assert part(5) == f"{GUIDANCE}\n{ACTUAL}\n{TRAVEL}"  # only segments scoring above zero


def test_relevant_part_of_a_table_is_the_row_without_its_header():
    table = "Cash flows\n(Millions)\n2018\n2017\nCapex\n(1,577)\n(1,373)\nDividends\n(3,193)\n"
    estimator = RelevantInformationEstimator(FakeScorer(), witness="segments")
    assert estimator.relevant_part(table, "What was capex?") == "Capex (1,577) (1,373)"


def test_relevant_part_without_any_match_keeps_the_first_segment():
    estimator = RelevantInformationEstimator(FakeScorer(), witness="segments")
    assert estimator.relevant_part(PAGE, "Who audits the firm?") == "The logo is red."
    assert estimator.relevant_part("  \n ", "q") == ""


@pytest.mark.parametrize("mode", MODES)
async def test_estimate_scores_the_relevant_part_with_and_without_the_compression(mode):
    scorer = evidence_scorer()
    estimator = RelevantInformationEstimator(scorer, witness="segments", relevant_segments=1)
    result = await estimate(estimator, GOOD, mode)
    with_z, query_with_z, without_z, query_alone = scorer.history
    template = DEFAULT_RELEVANT_TEMPLATE
    assert with_z == ScoreRequest(
        template.with_compression.format(compression=GOOD, query=QUERY), ACTUAL
    )
    assert query_with_z == ScoreRequest(
        template.query_with_compression.format(compression=GOOD), QUERY
    )
    assert without_z == ScoreRequest(template.without_compression.format(query=QUERY), ACTUAL)
    assert query_alone == ScoreRequest(template.query_without_compression, QUERY)
    assert result.estimator == "relevant_pmi"
    assert result.nats == pytest.approx(4.0)
    assert result.bits == pytest.approx(4.0 / math.log(2))
    assert result.upper_bound_nats == pytest.approx(5.0)
    assert result.relevant_fraction == pytest.approx(0.8)
    assert result.relevant_tokens == len(ACTUAL.split())  # the fake counts words
    assert result.n_tokens == ApproximateTokenCounter().count_tokens(GOOD)
    assert result.bits_per_token == pytest.approx(result.bits / result.n_tokens)
    assert result.scorer_model == "fake-scorer"
    assert result.reference_count == 0


@pytest.mark.parametrize("mode", MODES)
async def test_a_compression_without_the_evidence_explains_nothing(mode):
    estimator = RelevantInformationEstimator(evidence_scorer(), witness="segments")
    result = await estimate(estimator, "The logo is red.", mode)
    assert result.nats == pytest.approx(0.0)
    assert result.relevant_fraction == pytest.approx(0.0)


@pytest.mark.parametrize("mode", MODES)
async def test_the_null_score_is_cached_per_relevant_part_and_query(mode):
    scorer = evidence_scorer()
    estimator = RelevantInformationEstimator(scorer, witness="segments")
    first = await estimate(estimator, GOOD, mode)
    assert len(scorer.history) == 4
    second = await estimate(estimator, "The logo is red.", mode)
    assert len(scorer.history) == 6, "the second estimate on the page sent the null scores again"
    assert "Notes:" in scorer.history[4].prompt
    assert "Passage:" in scorer.history[5].prompt
    assert second.upper_bound_nats == first.upper_bound_nats
    await estimate(estimator, GOOD, mode, query="What was capex guidance for 2019?")
    assert len(scorer.history) == 10, "another query has another relevant part and null scores"


def test_no_cache_scores_the_null_every_time():
    scorer = evidence_scorer()
    estimator = RelevantInformationEstimator(scorer, witness="segments", cache_size=0)
    estimator.estimate(PAGE, QUERY, GOOD)
    estimator.estimate(PAGE, QUERY, GOOD)
    assert len(scorer.history) == 8


class CountingScorer(FakeScorer):
    """A scorer that answers ``drop`` fewer (or, negative, more) scores than it was asked."""

    def __init__(self, drop: int) -> None:
        super().__init__(lambda prompt, s: -1.0)
        self.drop = drop

    def score(self, requests):
        results = super().score(requests)
        if self.drop < 0:
            return results + [ContinuationScore((-1.0,), 1)] * -self.drop
        return results[: len(results) - self.drop]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("drop", [1, -1], ids=["too few", "too many"])
async def test_wrong_number_of_scores_is_an_engine_error(mode, drop):
    estimator = RelevantInformationEstimator(CountingScorer(drop), witness="segments")
    with pytest.raises(EngineError, match="scores for 4 requests"):
        await estimate(estimator, GOOD, mode)


@pytest.mark.parametrize("mode", MODES)
async def test_unusable_scores_are_engine_errors(mode):
    scorer = evidence_scorer()
    # The batch: s after z, the query after z, then s and the query alone.
    scorer.enqueue([-1.0], [-1.0], [-2.0, -2.0], [-1.0])
    estimator = RelevantInformationEstimator(scorer, witness="segments")
    with pytest.raises(EngineError, match="tokenised the same text differently"):
        await estimate(estimator, GOOD, mode)
    scorer.enqueue([float("nan")], [-1.0], [-2.0], [-1.0])
    with pytest.raises(EngineError, match="unusable log-probabilities"):
        await estimate(estimator, GOOD, mode)


def test_bad_options_are_rejected():
    for options in ({"relevant_segments": 0}, {"cache_size": -1}):
        with pytest.raises(ValueError, match="relevant_segments"):
            RelevantInformationEstimator(FakeScorer(), witness="segments", **options)


def test_routing_signal_is_the_fraction_explained():
    estimator = RelevantInformationEstimator(evidence_scorer(), witness="segments")
    result = estimator.estimate(PAGE, QUERY, GOOD)
    value, unit = signal(result)
    assert value == pytest.approx(0.8)
    assert unit == "of the relevant part explained"
    assert judge(result, 0.5).accepted
    assert judge(result, 0.5).reason == "accepted: 0.800 >= 0.500 of the relevant part explained"
    rejected = judge(result, 0.9)
    assert not rejected.accepted
    assert rejected.reason == (
        "too little relevant information: 0.800 < 0.900 of the relevant part explained"
    )


@pytest.mark.parametrize("mode", MODES)
async def test_the_stage_thresholds_the_fraction(mode):
    stage = CompressionStage(
        [Rung(ExtractiveCompressor(budget_tokens=24), threshold_bits_per_token=0.5)],
        estimator=RelevantInformationEstimator(evidence_scorer(), witness="segments"),
        token_budget=20,
    )
    [result] = stage.run([PAGE], QUERY) if mode == "sync" else await stage.arun([PAGE], QUERY)
    assert result.decision == "accepted", result.reason
    assert "1,577" in result.text
    assert "of the relevant part explained" in result.reason


@pytest.mark.parametrize("mode", MODES)
async def test_query_fraction_is_the_share_of_the_query_the_compression_explains(mode):
    # The query costs 1 nat after a passage naming capital expenditure, 4 nats otherwise.
    def scorer_function(prompt: str, continuation: str) -> float:
        if continuation == QUERY:
            return -1.0 if "Capital expenditure" in prompt else -4.0
        return -2.0

    estimator = RelevantInformationEstimator(FakeScorer(scorer_function), witness="segments")
    on_topic = await estimate(estimator, ACTUAL, mode)
    off_topic = await estimate(estimator, "The logo is red.", mode)
    assert on_topic.query_fraction == pytest.approx(0.75)
    assert off_topic.query_fraction == pytest.approx(0.0)


# --- the whole page as witness: pointwise retention pmi(q; z) / pmi(q; x) ---------------------


def retention_scorer() -> FakeScorer:
    """The query costs 1 nat after text stating 1,577, 3 after other text, 5 after nothing."""

    def score(prompt: str, continuation: str) -> float:
        if "1,577" in prompt:
            return -1.0
        return -3.0 if "Passage:\n" in prompt else -5.0

    return FakeScorer(score)


@pytest.mark.parametrize("mode", MODES)
async def test_retention_scores_the_query_after_z_after_the_page_and_alone(mode):
    scorer = retention_scorer()
    estimator = RelevantInformationEstimator(scorer, witness="page")
    assert estimator.witness == "page"
    result = await estimate(estimator, GOOD, mode)
    template = DEFAULT_RELEVANT_TEMPLATE
    assert scorer.history == [
        ScoreRequest(template.query_with_compression.format(compression=GOOD), QUERY),
        ScoreRequest(template.query_with_compression.format(compression=PAGE), QUERY),
        ScoreRequest(template.query_without_compression, QUERY),
    ]
    assert result.nats == pytest.approx(4.0)  # pmi(q; z)
    assert result.retention == pytest.approx(1.0)  # z keeps all the page tells about q
    assert result.query_fraction == pytest.approx(0.8)
    assert result.relevant_fraction is None
    assert signal(result) == (pytest.approx(1.0), "of what the page tells about the query kept")


@pytest.mark.parametrize("mode", MODES)
async def test_retention_of_the_wrong_part_is_low_and_the_page_scores_are_cached(mode):
    scorer = retention_scorer()
    estimator = RelevantInformationEstimator(scorer, witness="page")
    good = await estimate(estimator, GOOD, mode)
    wrong = await estimate(estimator, GUIDANCE.replace("1,700", "1,800"), mode)
    assert len(scorer.history) == 4, "the page and the query alone are scored once per page"
    assert wrong.retention == pytest.approx(0.5)
    assert good.retention > wrong.retention


def test_retention_divides_by_at_least_a_floor_of_the_query():
    # A page that tells nothing about the query: retention is not blown up by a tiny pmi(q; x).
    scorer = FakeScorer(lambda prompt, s: -4.99 if "Passage" in prompt else -5.0)
    estimator = RelevantInformationEstimator(scorer, witness="page", retention_floor=0.1)
    result = estimator.estimate(PAGE, QUERY, "The logo is red.")
    assert result.retention == pytest.approx(0.01 / 0.5)


def test_an_explicit_witness_overrides_the_page():
    scorer = evidence_scorer()
    estimator = RelevantInformationEstimator(scorer, witness="page")
    result = estimator.estimate(PAGE, QUERY, GOOD, relevant=ACTUAL)
    assert result.relevant_fraction == pytest.approx(0.8)
    assert result.retention is None
    assert scorer.history[0].continuation == ACTUAL


def test_an_unknown_witness_is_rejected():
    with pytest.raises(ValueError, match="witness"):
        RelevantInformationEstimator(FakeScorer(), witness="oracle")  # type: ignore[arg-type]

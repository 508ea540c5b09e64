"""Online estimators with fakes and with the real embedded scorer."""

from __future__ import annotations

import math

import pytest

from ib_middleware import EngineError
from ib_middleware.judging.online import ContrastivePMIEstimator, CXMIEstimator
from ib_middleware.testing import FakeScorer


def test_cxmi_uses_with_and_without_context_prompts():
    scorer = FakeScorer(lambda p, z: [-0.2, -0.3] if "Document:" in p else [-2.0, -0.1])
    estimate = CXMIEstimator(scorer).estimate("page", "q?", "two words")
    assert estimate.nats == pytest.approx(1.8 - 0.2)
    assert estimate.bits_per_token == pytest.approx(estimate.bits / 2)
    assert estimate.unsupported_spans == ((1, 2),)
    assert estimate.unsupported_fraction == 0.5
    assert "page" in scorer.history[0].prompt
    assert "page" not in scorer.history[1].prompt


async def test_async_twins_agree():
    scorer = FakeScorer(lambda p, z: -1.0 if "Document:" in p else -3.0)
    sync = CXMIEstimator(scorer).estimate("page", "q", "z z")
    asynchronous = await CXMIEstimator(scorer).aestimate("page", "q", "z z")
    assert sync == asynchronous
    pmi = ContrastivePMIEstimator(FakeScorer(lambda p, z: -1.0 if "own" in p else -9.0))
    first = pmi.estimate("own", "q", "z", references=["a", "b"])
    second = await pmi.aestimate("own", "q", "z", references=["a", "b"])
    assert first == second


def test_mismatched_tokenisation_or_nan_is_an_engine_error():
    scorer = FakeScorer()
    scorer.enqueue([-1.0, -1.0], [-1.0])
    with pytest.raises(EngineError, match="differently"):
        CXMIEstimator(scorer).estimate("x", "q", "z z")
    scorer.enqueue([float("nan")], [-1.0])
    with pytest.raises(EngineError, match="unusable"):
        CXMIEstimator(scorer).estimate("x", "q", "z")


def test_contrastive_reservoir_is_bounded_and_excludes_self():
    scorer = FakeScorer(lambda p, z: -1.0)
    estimator = ContrastivePMIEstimator(scorer, reservoir_size=2)
    with pytest.raises(ValueError, match="needs reference contexts"):
        estimator.estimate("first", "q", "z")
    for page in ["a", "b", "c"]:
        estimator.estimate(page, "q", "z", references=["other"])
    assert estimator.reservoir == ("b", "c")
    estimate = estimator.estimate("c", "q", "z")
    assert estimate.reference_count == 1  # "b" only: "c" itself is excluded
    assert estimate.upper_bound_nats == pytest.approx(math.log(2))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_real_cxmi_separates_grounded_from_invented(gemma_engine):
    page = (
        "3M Company. Purchases of property, plant and equipment were $1,577 million in 2018, "
        "$1,373 million in 2017 and $1,420 million in 2016."
    )
    query = "What was 3M's FY2018 capital expenditure?"
    estimator = CXMIEstimator(gemma_engine)
    grounded = estimator.estimate(page, query, "3M spent $1,577 million on property in 2018.")
    invented = estimator.estimate(page, query, "Bananas are yellow and grow in Ecuador.")
    assert grounded.bits_per_token > invented.bits_per_token
    assert grounded.bits_per_token > 0.5
    assert grounded.scorer_model == "gemma-3-270m"
    assert len(grounded.unsupported_text) == len(grounded.unsupported_spans)

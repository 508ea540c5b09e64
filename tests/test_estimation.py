"""Offline MI estimation: the score tensor, grouping, failures, and a run on the real engines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ib_middleware import (
    DEFAULT_SCORING_TEMPLATE,
    EngineError,
    estimate_compressor_mi,
    score_tensor,
)
from ib_middleware.engines import ScoreRequest
from ib_middleware.lab.data import load_financebench
from ib_middleware.testing import FakeScorer

CONTEXTS = ["alpha is A", "beta is B", "gamma is C"]
QUERIES = ["which letter?", "which letter?", "which letter?"]
COMPRESSIONS = [["A", "A!"], ["B", "B!"], ["C", "C!"]]


def letter_scorer() -> FakeScorer:
    return FakeScorer(lambda prompt, z: -0.5 if z[0] in prompt.split("Question")[0] else -6.0)


def test_tensor_layout_and_query_conditioning():
    scorer = letter_scorer()
    scores, lengths = score_tensor(CONTEXTS, QUERIES, COMPRESSIONS, scorer)
    assert scores.shape == (3, 2, 3)
    assert lengths.shape == (3, 2)
    assert np.all(np.diag(scores[:, 0, :]) == -0.5)
    assert scores[0, 0, 1] == -6.0
    # Every request for context l uses the query of the compression being scored.
    prompts = {request.prompt for request in scorer.history}
    for l_index, context in enumerate(CONTEXTS):
        for i in range(3):
            assert DEFAULT_SCORING_TEMPLATE.prompt(context, QUERIES[i]) in prompts
        del l_index


def test_one_scorer_call_per_context():
    calls: list[int] = []

    class CountingScorer(FakeScorer):
        def score(self, requests):
            calls.append(len(requests))
            return super().score(requests)

    score_tensor(CONTEXTS, QUERIES, COMPRESSIONS, CountingScorer(lambda p, z: -1.0))
    assert calls == [6, 6, 6]


def test_estimate_separates_contexts():
    result = estimate_compressor_mi(CONTEXTS, QUERIES, COMPRESSIONS, letter_scorer())
    assert 0.0 < result.estimate.nats <= math.log(3)
    assert result.bits_per_token == pytest.approx(result.estimate.bits / result.lengths.mean())
    assert result.scorer_model == "fake-scorer"


def test_failed_scoring_retries_then_raises_never_zero():
    scorer = FakeScorer(lambda p, z: -1.0)
    scorer.enqueue(EngineError("boom"))
    scores, _ = score_tensor(CONTEXTS, QUERIES, COMPRESSIONS, scorer, retries=1)
    assert np.all(scores == -1.0)
    failing = FakeScorer(lambda p, z: -1.0)
    failing.enqueue(EngineError("first"), EngineError("second"))
    with pytest.raises(EngineError, match="second"):
        score_tensor(CONTEXTS, QUERIES, COMPRESSIONS, failing, retries=1)


def test_non_finite_score_is_an_error():
    scorer = FakeScorer(lambda p, z: -1.0)
    scorer.enqueue(float("nan"))
    with pytest.raises(EngineError, match="never counted as 0"):
        score_tensor(CONTEXTS, QUERIES, COMPRESSIONS, scorer, retries=0)


@pytest.mark.parametrize(
    ("contexts", "queries", "compressions", "message"),
    [
        (["a"], ["q"], [["z"]], "at least 2"),
        (["a", "b"], ["q"], [["z"], ["z"]], "one entry per context"),
        (["a", "b"], ["q", "q"], [["z"], ["z", "y"]], "same number"),
        (["a", "b"], ["q", "q"], [["z"], ["  "]], "empty"),
    ],
)
def test_bad_inputs(contexts, queries, compressions, message):
    with pytest.raises(ValueError, match=message):
        score_tensor(contexts, queries, compressions, FakeScorer(lambda p, z: -1.0))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_financebench_estimate_with_embedded_models(smollm2_engine, gemma_engine):
    """SmolLM2-style extractive compressions of real pages, scored by Gemma (another family)."""
    cases = load_financebench()[:4]
    contexts = [
        smollm2_engine.detokenize(smollm2_engine.tokenize(case.context)[:300]) for case in cases
    ]
    queries = [case.query for case in cases]
    compressions = [[" ".join(c.split()[5:30]), " ".join(c.split()[40:60])] for c in contexts]
    result = estimate_compressor_mi(contexts, queries, compressions, gemma_engine)
    # Verbatim excerpts of their own page are far likelier under it: near log N.
    assert result.estimate.nats > 0.5 * math.log(4)
    assert result.estimate.nats <= math.log(4)
    assert result.bits_per_token > 0


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_tensor_matches_pairwise_scoring(smollm2_engine):
    """Batched, prefix-grouped scoring equals scoring every pair on its own."""
    cases = load_financebench()[:3]
    contexts = [" ".join(case.context.split()[:80]) for case in cases]
    queries = [case.query for case in cases]
    compressions = [[" ".join(c.split()[10:25])] for c in contexts]
    scores, _ = score_tensor(contexts, queries, compressions, smollm2_engine)
    for i in range(3):
        for l_index in range(3):
            prompt = DEFAULT_SCORING_TEMPLATE.prompt(contexts[l_index], queries[i])
            [alone] = smollm2_engine.score([ScoreRequest(prompt, compressions[i][0])])
            assert scores[i, 0, l_index] == pytest.approx(alone.total, abs=1e-6)

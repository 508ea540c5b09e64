"""Offline mutual-information estimation of a compressor on a dataset.

Given N contexts with their queries and M compressions of each, it scores every compression
under every context (the (N, M, N) score tensor of He et al., 2025) with a ``Scorer`` and hands
the tensor to ``ib_estimators.mc_mutual_information``. Requests are sent one context at a time,
so an engine that reuses prefixes evaluates each context once for all N x M compressions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from ib_estimators import MIEstimate, bit_efficiency, mc_mutual_information
from numpy.typing import NDArray
from rich.progress import Progress

from ib_middleware.engines import ContinuationScore, Scorer, ScoreRequest
from ib_middleware.errors import EngineError
from ib_middleware.prompts import DEFAULT_SCORING_TEMPLATE, ScoringTemplate

__all__ = ["CompressorMI", "estimate_compressor_mi", "score_tensor"]


@dataclass(frozen=True)
class CompressorMI:
    """Mutual information between contexts and a compressor's outputs.

    Attributes:
        estimate: The Monte Carlo estimate (nats, bits, CI, saturation).
        bits_per_token: Bit efficiency: ``estimate.bits`` over the mean compression length.
        lengths: (N, M) compression lengths in scorer tokens.
        scores: The (N, M, N) score tensor, ``scores[i, j, l] = log p(z_ij | x_l, q_i)``.
        scorer_model: The scoring model's identifier.
    """

    estimate: MIEstimate
    bits_per_token: float
    lengths: NDArray[np.int64]
    scores: NDArray[np.float64]
    scorer_model: str


def _check_inputs(
    contexts: Sequence[str],
    queries: Sequence[str],
    compressions: Sequence[Sequence[str]],
    *,
    allow_empty: bool,
) -> int:
    n_contexts = len(contexts)
    if n_contexts < 2:
        msg = f"mutual information needs at least 2 contexts, got {n_contexts}"
        raise ValueError(msg)
    if len(queries) != n_contexts or len(compressions) != n_contexts:
        msg = (
            f"contexts, queries and compressions must have one entry per context: got "
            f"{n_contexts}, {len(queries)} and {len(compressions)}"
        )
        raise ValueError(msg)
    n_samples = len(compressions[0])
    if n_samples < 1 or any(len(row) != n_samples for row in compressions):
        msg = "every context needs the same number M >= 1 of compressions"
        raise ValueError(msg)
    if not allow_empty and any(not z.strip() for row in compressions for z in row):
        msg = (
            "a compression is empty; an empty compression carries no information to score "
            "(pass empty='zero' to count it as 0 nats)"
        )
        raise ValueError(msg)
    return n_samples


def _score_with_retries(
    scorer: Scorer, requests: list[ScoreRequest], retries: int
) -> list[ContinuationScore]:
    for attempt in range(retries + 1):
        try:
            results = scorer.score(requests)
        except EngineError:
            if attempt == retries:
                raise
            continue
        if len(results) != len(requests):
            msg = f"scorer returned {len(results)} scores for {len(requests)} requests"
            raise EngineError(msg)
        if not all(math.isfinite(result.total) for result in results):
            msg = "scorer returned a non-finite log-probability; it is never counted as 0"
            raise EngineError(msg)
        return results
    msg = "unreachable: retries exhausted"  # pragma: no cover
    raise EngineError(msg)  # pragma: no cover


def score_tensor(
    contexts: Sequence[str],
    queries: Sequence[str],
    compressions: Sequence[Sequence[str]],
    scorer: Scorer,
    *,
    template: ScoringTemplate = DEFAULT_SCORING_TEMPLATE,
    retries: int = 1,
    progress: bool = False,
    empty: Literal["error", "zero"] = "error",
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Build the (N, M, N) score tensor and the (N, M) compression lengths.

    Requests are grouped by context: one scorer call per context l carries all N x M
    compressions scored after prompts built from x_l, so prefix-reusing engines evaluate x_l
    once (for llama.cpp, once per distinct query on sliding-window models).

    Args:
        contexts: The N raw contexts.
        queries: The query of each context.
        compressions: For each context, its M compressions.
        scorer: Any engine implementing ``Scorer``.
        template: Scoring prompt template.
        retries: Extra attempts for a failed scorer call; after that the error is raised.
        progress: Show a rich progress bar.
        empty: ``error`` rejects an empty (or whitespace) compression; ``zero`` scores it
            ``log p = 0`` under every context with length 0: the empty continuation, which
            adds exactly 0 nats to the estimate. Sweeps use ``zero`` because small models do
            return empty compressions, and dropping them would flatter the compressor.

    Raises:
        ValueError: On inconsistent inputs, or an empty compression with ``empty="error"``.
        EngineError: If scoring keeps failing; a failed score is never replaced by 0.
    """
    n_samples = _check_inputs(contexts, queries, compressions, allow_empty=empty == "zero")
    n_contexts = len(contexts)
    scores = np.zeros((n_contexts, n_samples, n_contexts), dtype=np.float64)
    lengths = np.zeros((n_contexts, n_samples), dtype=np.int64)
    pairs = [
        (i, j) for i in range(n_contexts) for j in range(n_samples) if compressions[i][j].strip()
    ]
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"scoring with {scorer.model_id}", total=n_contexts)
        for l_index, context in enumerate(contexts):
            if not pairs:
                break
            requests = [
                ScoreRequest(template.prompt(context, queries[i]), compressions[i][j])
                for i, j in pairs
            ]
            results = _score_with_retries(scorer, requests, retries)
            for (i, j), result in zip(pairs, results, strict=True):
                scores[i, j, l_index] = result.total
                lengths[i, j] = result.n_tokens
            bar.advance(task)
    return scores, lengths


def estimate_compressor_mi(
    contexts: Sequence[str],
    queries: Sequence[str],
    compressions: Sequence[Sequence[str]],
    scorer: Scorer,
    *,
    template: ScoringTemplate = DEFAULT_SCORING_TEMPLATE,
    retries: int = 1,
    progress: bool = False,
    confidence: float = 0.95,
    seed: int = 0,
    empty: Literal["error", "zero"] = "error",
) -> CompressorMI:
    """Estimate I(X; Z | Q) of a compressor from N contexts and M compressions of each.

    Args:
        contexts: The N raw contexts x_i.
        queries: The query q_i of each context.
        compressions: M compressions z_ij ~ p(z | x_i, q_i) per context.
        scorer: The proxy scoring model (ideally another family than the compressor).
        template: Scoring prompt template; the default is query-conditioned.
        retries: Extra attempts per failed scorer call before raising.
        progress: Show a rich progress bar.
        confidence: Level of the bootstrap confidence interval.
        seed: Bootstrap seed.
        empty: How an empty compression is handled (see ``score_tensor``).

    Returns:
        The estimate, bits per token, lengths and the raw score tensor.

    Example:
        >>> from ib_middleware.testing import FakeScorer
        >>> scorer = FakeScorer(lambda prompt, z: -1.0 if z[-1] in prompt else -9.0)
        >>> result = estimate_compressor_mi(
        ...     ["alpha is A", "beta is B"], ["q?", "q?"], [["A"], ["B"]], scorer
        ... )
        >>> round(result.estimate.nats, 3) > 0
        True
    """
    scores, lengths = score_tensor(
        contexts,
        queries,
        compressions,
        scorer,
        template=template,
        retries=retries,
        progress=progress,
        empty=empty,
    )
    estimate = mc_mutual_information(scores, confidence=confidence, seed=seed)
    return CompressorMI(
        estimate=estimate,
        bits_per_token=bit_efficiency(estimate, lengths),
        lengths=lengths,
        scores=scores,
        scorer_model=scorer.model_id,
    )

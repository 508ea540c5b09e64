"""Monte Carlo estimate of I(X; Z | Q) from teacher-forced log-probabilities (He et al., 2025).

For N contexts x_1..x_N with queries q_1..q_N and M compressions z_ij ~ p(z | x_i, q_i)::

    I_hat = 1/(N M) sum_i sum_j [ log p(z_ij | x_i, q_i) - log( 1/N sum_l p(z_ij | x_l, q_i) ) ]

Each term is at most log N (the own context is one of the N in the mixture), so the estimate is a
lower-bound-style estimator capped at log N: near the cap it is biased downwards and only says
"at least this much". Finite samples can give a slightly negative mean; it is clipped to 0 and the
``clipped`` flag records that.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats
from scipy.special import logsumexp

from ib_estimators._validation import as_float_array
from ib_estimators.units import nats_to_bits

SATURATION_MARGIN_NATS = 0.1
"""An estimate within this many nats of log N is flagged ``saturated``.

At that point the own context carries on average more than e^-0.1 ≈ 90% of the mixture's
probability mass, so the reference set can no longer tell how much more information there is.
"""


@dataclass(frozen=True)
class MIEstimate:
    """A Monte Carlo mutual-information estimate and everything needed to judge it.

    Attributes:
        nats: The estimate in nats, clipped at 0.
        bits: The same in bits.
        raw_nats: The estimate before clipping (may be slightly negative).
        clipped: True when ``raw_nats`` was negative and ``nats`` was set to 0.
        upper_bound_nats: log N, the most this estimator can ever report.
        saturated: True when ``nats`` is within ``SATURATION_MARGIN_NATS`` of log N: the true
            value is at least this large; raise N to resolve it.
        per_sample: The (N, M) pointwise terms whose mean is ``raw_nats``.
        ci_nats: Bootstrap confidence interval over contexts (lower, upper), clipped at 0.
        confidence: The confidence level of ``ci_nats``.
        n_contexts: N.
        n_samples: M, compressions per context.
    """

    nats: float
    bits: float
    raw_nats: float
    clipped: bool
    upper_bound_nats: float
    saturated: bool
    per_sample: NDArray[np.float64]
    ci_nats: tuple[float, float]
    confidence: float
    n_contexts: int
    n_samples: int

    @property
    def ci_bits(self) -> tuple[float, float]:
        """The confidence interval in bits."""
        return (nats_to_bits(self.ci_nats[0]), nats_to_bits(self.ci_nats[1]))

    @property
    def upper_bound_bits(self) -> float:
        """log2 N, the cap in bits."""
        return nats_to_bits(self.upper_bound_nats)


def _score_tensor(scores: ArrayLike) -> NDArray[np.float64]:
    array = as_float_array(scores, name="scores", allow_neg_inf=True)
    if array.ndim == 2:
        array = array[:, np.newaxis, :]
    if array.ndim != 3 or array.shape[0] != array.shape[2]:
        msg = (
            f"scores must have shape (N, M, N) with scores[i, j, l] = log p(z_ij | x_l, q_i), "
            f"or (N, N) for M = 1; got shape {array.shape}"
        )
        raise ValueError(msg)
    n_contexts = array.shape[0]
    if n_contexts < 2:
        msg = "scores needs at least 2 contexts: with N = 1 the estimate is 0 by construction"
        raise ValueError(msg)
    own = np.einsum("iji->ij", array)
    if np.isneginf(own).any():
        msg = (
            "scores[i, j, i] is -inf for some compression: a compression sampled from context i "
            "cannot have zero probability under it; check that the scorer used the right context"
        )
        raise ValueError(msg)
    return array


def pointwise_terms(scores: ArrayLike) -> NDArray[np.float64]:
    """Return the (N, M) per-sample terms of the Monte Carlo estimator.

    Args:
        scores: Array of shape (N, M, N), ``scores[i, j, l] = log p(z_ij | x_l, q_i)`` in nats.

    Returns:
        ``log p(z_ij | x_i, q_i) - log(1/N sum_l p(z_ij | x_l, q_i))`` for every i, j.

    Example:
        >>> import numpy as np
        >>> pointwise_terms(np.log(np.eye(2) * 0.5 + 0.25)).round(3).tolist()
        [[0.405], [0.405]]
    """
    array = _score_tensor(scores)
    n_contexts = array.shape[0]
    own = np.einsum("iji->ij", array)
    mixture = logsumexp(array, axis=2) - math.log(n_contexts)
    terms: NDArray[np.float64] = own - mixture
    return terms


def _bootstrap_ci(
    context_means: NDArray[np.float64], *, confidence: float, n_bootstrap: int, seed: int
) -> tuple[float, float]:
    if np.ptp(context_means) == 0.0:
        value = float(context_means[0])
        return (value, value)
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        # BCa warns (and returns NaN) on near-degenerate samples; fall back to percentile then.
        warnings.simplefilter("ignore")
        result = stats.bootstrap(
            (context_means,),
            np.mean,
            n_resamples=n_bootstrap,
            confidence_level=confidence,
            method="BCa",
            random_state=rng,
        )
        low, high = result.confidence_interval
        if not (np.isfinite(low) and np.isfinite(high)):
            result = stats.bootstrap(
                (context_means,),
                np.mean,
                n_resamples=n_bootstrap,
                confidence_level=confidence,
                method="percentile",
                random_state=np.random.default_rng(seed),
            )
            low, high = result.confidence_interval
    return (float(low), float(high))


def mc_mutual_information(
    scores: ArrayLike, *, confidence: float = 0.95, n_bootstrap: int = 1000, seed: int = 0
) -> MIEstimate:
    """Estimate I(X; Z | Q) from a score tensor, as in He et al. (2025).

    Args:
        scores: Array of shape (N, M, N) with ``scores[i, j, l] = log p(z_ij | x_l, q_i)`` in
            nats: compression j of context i, scored under context l with query i. An (N, N)
            array means M = 1. ``-inf`` is allowed off the diagonal (zero probability under
            another context); NaN, +inf and -inf on the diagonal are rejected.
        confidence: Confidence level of the bootstrap interval.
        n_bootstrap: Bootstrap resamples over contexts.
        seed: Seed of the bootstrap, so results are reproducible.

    Returns:
        An ``MIEstimate`` in nats and bits, with clipping and saturation flags, the per-sample
        terms and a bootstrap confidence interval over contexts.

    Raises:
        ValueError: On a wrong shape, fewer than 2 contexts, NaN or +inf, or a confidence
            level outside (0, 1).

    Example:
        >>> import numpy as np
        >>> deterministic = np.where(np.eye(4, dtype=bool), 0.0, -np.inf)
        >>> estimate = mc_mutual_information(deterministic)
        >>> round(estimate.bits, 3), estimate.saturated
        (2.0, True)
    """
    if not 0.0 < confidence < 1.0:
        msg = f"confidence must lie strictly between 0 and 1, got {confidence}"
        raise ValueError(msg)
    if n_bootstrap < 1:
        msg = f"n_bootstrap must be at least 1, got {n_bootstrap}"
        raise ValueError(msg)
    terms = pointwise_terms(scores)
    n_contexts, n_samples = terms.shape
    raw = float(terms.mean())
    upper = math.log(n_contexts)
    # Float rounding can push a term a hair over log N; the bound is exact, so enforce it.
    raw = min(raw, upper)
    clipped = raw < 0.0
    nats = max(raw, 0.0)
    low, high = _bootstrap_ci(
        terms.mean(axis=1), confidence=confidence, n_bootstrap=n_bootstrap, seed=seed
    )
    ci = (min(max(low, 0.0), upper), min(max(high, 0.0), upper))
    return MIEstimate(
        nats=nats,
        bits=nats_to_bits(nats),
        raw_nats=raw,
        clipped=clipped,
        upper_bound_nats=upper,
        saturated=nats >= upper - SATURATION_MARGIN_NATS,
        per_sample=terms,
        ci_nats=ci,
        confidence=confidence,
        n_contexts=n_contexts,
        n_samples=n_samples,
    )


def bit_efficiency(estimate: MIEstimate, lengths: ArrayLike | Sequence[int]) -> float:
    """Bits of mutual information per output token: the paper's rate R = I(X; Z | Q) / L.

    Args:
        estimate: An estimate from ``mc_mutual_information``.
        lengths: Compression lengths in tokens; their mean is L.

    Returns:
        ``estimate.bits / mean(lengths)``.

    Raises:
        ValueError: If ``lengths`` is empty, holds NaN, or its mean is not positive.

    Example:
        >>> import numpy as np
        >>> estimate = mc_mutual_information(np.where(np.eye(4, dtype=bool), 0.0, -np.inf))
        >>> bit_efficiency(estimate, [4, 4, 4, 4])
        0.5
    """
    array = as_float_array(lengths, name="lengths")
    mean_length = float(array.mean())
    if mean_length <= 0.0:
        msg = f"lengths must be positive token counts; their mean is {mean_length}"
        raise ValueError(msg)
    return estimate.bits / mean_length

"""Pointwise (online) information signals for one compression z of one context x.

- Contrastive PMI compares log p(z | x, q) with the mixture over a reference set of contexts
  that includes x itself; with K other contexts it is bounded by log(K + 1).
- CXMI (conditional cross-mutual information) compares log p(z | x, q) with the null-context
  log p(z | q). It is unbounded and splits into one contribution per token of z; tokens with a
  negative contribution are less likely given the context than without it, i.e. not supported
  by the context (a hallucination signal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import logsumexp

from ib_estimators._validation import as_float_array
from ib_estimators.units import nats_to_bits


@dataclass(frozen=True)
class PointwiseEstimate:
    """A pointwise information estimate for one compression.

    Attributes:
        nats: Information in nats.
        bits: The same in bits.
        bits_per_token: ``bits`` divided by the compression length in tokens.
        n_tokens: Compression length in tokens.
        upper_bound_nats: The estimator's cap (log(K + 1) for contrastive PMI), or None when
            the estimator is unbounded (CXMI).
    """

    nats: float
    bits: float
    bits_per_token: float
    n_tokens: int
    upper_bound_nats: float | None

    @property
    def saturated(self) -> bool:
        """True when a bounded estimate sits within 0.1 nats of its cap."""
        if self.upper_bound_nats is None:
            return False
        return self.nats >= self.upper_bound_nats - 0.1


@dataclass(frozen=True)
class CXMIEstimate(PointwiseEstimate):
    """CXMI with its per-token contributions.

    Attributes:
        per_token_nats: log p(t_k | x, q, t_<k) - log p(t_k | q, t_<k) for each token k.
        unsupported_spans: Half-open (start, end) token index ranges of consecutive tokens
            whose contribution is negative: the context makes them less likely.
    """

    per_token_nats: NDArray[np.float64]
    unsupported_spans: tuple[tuple[int, int], ...]

    @property
    def unsupported_fraction(self) -> float:
        """Fraction of tokens with a negative contribution."""
        return float((self.per_token_nats < 0.0).mean())


def _check_tokens(n_tokens: int) -> int:
    if n_tokens < 1:
        msg = f"n_tokens must be the compression length in tokens (at least 1), got {n_tokens}"
        raise ValueError(msg)
    return n_tokens


def contrastive_pmi(
    own_logprob: float, reference_logprobs: ArrayLike | Sequence[float], *, n_tokens: int
) -> PointwiseEstimate:
    """Contrastive PMI of z against a reference set of contexts.

    Computes ``log p(z | x) - log( 1/(K+1) * (p(z | x) + sum_k p(z | x_k)) )`` where the
    x_k are the K reference contexts (not including x; it is added here). The value lies in
    [-inf, log(K + 1)] and is clipped at 0 from below, like the Monte Carlo estimator.

    Args:
        own_logprob: log p(z | x, q), summed over the tokens of z, in nats.
        reference_logprobs: log p(z | x_k, q) for each reference context, in nats.
            ``-inf`` is allowed (zero probability under that context).
        n_tokens: Length of z in tokens, for bits per token.

    Returns:
        A ``PointwiseEstimate`` with ``upper_bound_nats = log(K + 1)``.

    Raises:
        ValueError: On NaN or +inf, a non-finite ``own_logprob``, or no references.

    Example:
        >>> estimate = contrastive_pmi(-2.0, [-50.0, -60.0, -70.0], n_tokens=4)
        >>> round(estimate.bits, 3), round(estimate.bits_per_token, 3)
        (2.0, 0.5)
    """
    own = float(as_float_array([own_logprob], name="own_logprob")[0])
    references = as_float_array(reference_logprobs, name="reference_logprobs", allow_neg_inf=True)
    references = references.reshape(-1)
    tokens = _check_tokens(n_tokens)
    n_mixture = references.size + 1
    mixture = float(logsumexp(np.concatenate(([own], references)))) - math.log(n_mixture)
    upper = math.log(n_mixture)
    nats = min(max(own - mixture, 0.0), upper)
    bits = nats_to_bits(nats)
    return PointwiseEstimate(
        nats=nats,
        bits=bits,
        bits_per_token=bits / tokens,
        n_tokens=tokens,
        upper_bound_nats=upper,
    )


def _negative_runs(values: NDArray[np.float64]) -> tuple[tuple[int, int], ...]:
    negative = np.concatenate(([False], values < 0.0, [False]))
    edges = np.flatnonzero(np.diff(negative.astype(np.int8)))
    return tuple((int(start), int(end)) for start, end in zip(edges[::2], edges[1::2], strict=True))


def cxmi(
    with_context: ArrayLike | Sequence[float], without_context: ArrayLike | Sequence[float]
) -> CXMIEstimate:
    """Conditional cross-mutual information of z with its context, token by token.

    Args:
        with_context: Per-token log-probabilities of z given the context and query, in nats.
        without_context: Per-token log-probabilities of the same tokens given the query alone.

    Returns:
        A ``CXMIEstimate``: the summed contribution (may be negative; not clipped, because a
        negative total is itself the signal that z is not grounded in x), bits, bits per token,
        the per-token contributions and the spans of unsupported tokens.

    Raises:
        ValueError: If the arrays differ in length, are empty, or hold NaN or infinities.

    Example:
        >>> estimate = cxmi([-0.1, -0.2, -3.0], [-2.0, -2.2, -1.0])
        >>> round(estimate.nats, 2), estimate.unsupported_spans
        (1.9, ((2, 3),))
    """
    with_array = as_float_array(with_context, name="with_context").reshape(-1)
    without_array = as_float_array(without_context, name="without_context").reshape(-1)
    if with_array.shape != without_array.shape:
        msg = (
            "with_context and without_context must score the same tokens; got "
            f"{with_array.size} and {without_array.size} log-probabilities"
        )
        raise ValueError(msg)
    contributions = with_array - without_array
    nats = float(contributions.sum())
    bits = nats_to_bits(nats)
    n_tokens = int(contributions.size)
    return CXMIEstimate(
        nats=nats,
        bits=bits,
        bits_per_token=bits / n_tokens,
        n_tokens=n_tokens,
        upper_bound_nats=None,
        per_token_nats=contributions,
        unsupported_spans=_negative_runs(contributions),
    )


@dataclass(frozen=True)
class RelevantPMIEstimate:
    """How much a compression z tells about the relevant part s of its context.

    Attributes:
        nats: log p(s | z, q) - log p(s | q), summed over the tokens of s.
        bits: The same in bits.
        n_tokens: Length of s in tokens.
        surprisal_nats: -log p(s | q): what s costs to predict from the query alone.
        per_token_nats: The contribution of each token of s.
    """

    nats: float
    bits: float
    n_tokens: int
    surprisal_nats: float
    per_token_nats: NDArray[np.float64]

    @property
    def fraction(self) -> float:
        """Share of s's surprisal that z explains: ``nats / surprisal_nats`` (1 = all of it)."""
        return self.nats / self.surprisal_nats if self.surprisal_nats > 0 else 0.0

    @property
    def upper_bound_nats(self) -> float:
        """The most z can tell about s: all of its surprisal."""
        return self.surprisal_nats


def relevant_pmi(
    with_compression: ArrayLike | Sequence[float], without_compression: ArrayLike | Sequence[float]
) -> RelevantPMIEstimate:
    """Pointwise information a compression carries about the query-relevant part of x.

    Args:
        with_compression: Per-token log-probabilities of s given z and the query, in nats.
        without_compression: Per-token log-probabilities of s given the query alone.

    Raises:
        ValueError: If the arrays differ in length, are empty, or hold NaN or infinities.

    Example:
        >>> estimate = relevant_pmi([-0.5, -0.5], [-3.0, -2.0])
        >>> round(estimate.nats, 2), round(estimate.fraction, 2)
        (4.0, 0.8)
    """
    with_array = as_float_array(with_compression, name="with_compression").reshape(-1)
    without_array = as_float_array(without_compression, name="without_compression").reshape(-1)
    if with_array.shape != without_array.shape:
        msg = (
            "with_compression and without_compression must score the same tokens; got "
            f"{with_array.size} and {without_array.size} log-probabilities"
        )
        raise ValueError(msg)
    contributions = with_array - without_array
    nats = float(contributions.sum())
    return RelevantPMIEstimate(
        nats=nats,
        bits=nats_to_bits(nats),
        n_tokens=int(contributions.size),
        surprisal_nats=float(-without_array.sum()),
        per_token_nats=contributions,
    )


@dataclass(frozen=True)
class RetentionEstimate:
    """How much of what the whole context tells about the query a compression keeps.

    The information bottleneck's pointwise retention: pmi(q; z) / pmi(q; x), with
    pmi(q; t) = log p(q | t) - log p(q). Its witness is the whole context, so it does not
    depend on which part of the context anyone ranked as relevant.

    Attributes:
        compression_nats: pmi(q; z), what z tells about the query.
        context_nats: pmi(q; x), what the whole context tells about it.
        query_surprisal_nats: -log p(q), what the query costs to predict from nothing.
        floor: The least pmi(q; x), as a share of the query's surprisal, the retention divides
            by (a context that tells almost nothing about the query cannot be retained).
    """

    compression_nats: float
    context_nats: float
    query_surprisal_nats: float
    floor: float

    @property
    def retention(self) -> float:
        """pmi(q; z) / max(pmi(q; x), floor * -log p(q)): 1 keeps all the page tells."""
        denominator = max(self.context_nats, self.floor * self.query_surprisal_nats)
        return self.compression_nats / denominator if denominator > 0 else 0.0


def pmi_retention(
    with_compression: ArrayLike | Sequence[float],
    with_context: ArrayLike | Sequence[float],
    without: ArrayLike | Sequence[float],
    *,
    floor: float = 0.02,
) -> RetentionEstimate:
    """Pointwise retention pmi(q; z) / pmi(q; x) from the query's per-token log-probabilities.

    Args:
        with_compression: log p(q_k | z, q_<k) for every token of the query, in nats.
        with_context: log p(q_k | x, q_<k), the whole context in place of z.
        without: log p(q_k | q_<k), neither.
        floor: The least denominator, as a share of -log p(q).

    Raises:
        ValueError: If the arrays differ in length, are empty, or hold NaN or infinities.

    Example:
        >>> estimate = pmi_retention([-1.0, -1.0], [-0.5, -0.5], [-3.0, -3.0])
        >>> round(estimate.retention, 2)
        0.8
    """
    arrays = [
        as_float_array(values, name=name).reshape(-1)
        for values, name in (
            (with_compression, "with_compression"),
            (with_context, "with_context"),
            (without, "without"),
        )
    ]
    if len({array.size for array in arrays}) != 1:
        sizes = ", ".join(str(array.size) for array in arrays)
        msg = f"the three scorings must cover the same query tokens; got {sizes} log-probabilities"
        raise ValueError(msg)
    if not 0.0 < floor <= 1.0:
        msg = "floor must be in (0, 1]"
        raise ValueError(msg)
    with_z, with_x, null = (float(array.sum()) for array in arrays)
    return RetentionEstimate(
        compression_nats=with_z - null,
        context_nats=with_x - null,
        query_surprisal_nats=-null,
        floor=floor,
    )

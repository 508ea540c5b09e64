"""How well a score separates good items from bad ones: ROC AUC with a clustered bootstrap CI.

Items often come in groups that share a source (several compressions of one context), so the
interval resamples groups, not items: items of one group are not independent evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata

__all__ = ["AUCEstimate", "roc_auc"]


@dataclass(frozen=True)
class AUCEstimate:
    """ROC AUC of a score with its bootstrap interval.

    Attributes:
        auc: P(score of a positive > score of a negative), ties counted one half.
        ci_low: Lower end of the interval.
        ci_high: Upper end of the interval.
        n_positive: Positive items.
        n_negative: Negative items.
    """

    auc: float
    ci_low: float
    ci_high: float
    n_positive: int
    n_negative: int


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def roc_auc(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    groups: Sequence[object] | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> AUCEstimate:
    """AUC of ``scores`` for boolean ``labels``, with a bootstrap CI over ``groups``.

    ``-inf`` is a valid score (a hard reject ranks below everything); NaN is not.

    Example:
        >>> estimate = roc_auc([0.9, 0.8, 0.3, 0.1], [True, True, False, False])
        >>> estimate.auc, estimate.n_positive
        (1.0, 2)
    """
    values = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(labels, dtype=bool)
    if values.shape != truth.shape or values.ndim != 1:
        msg = "scores and labels must be 1-D arrays of the same length"
        raise ValueError(msg)
    if np.isnan(values).any():
        msg = "scores hold NaN"
        raise ValueError(msg)
    if not 0.0 < confidence < 1.0:
        msg = f"confidence must be in (0, 1), got {confidence}"
        raise ValueError(msg)
    # Ranks need finite values: -inf and +inf become the extremes, ties kept.
    finite = np.nan_to_num(values, neginf=np.nanmin(values[np.isfinite(values)], initial=0) - 1e9)
    finite = np.nan_to_num(finite, posinf=np.nanmax(finite[np.isfinite(finite)], initial=0) + 1e9)
    point = _auc(finite, truth)
    keys = list(range(len(values))) if groups is None else list(groups)
    if len(keys) != len(values):
        msg = "groups must have one entry per score"
        raise ValueError(msg)
    unique = sorted(set(keys), key=str)
    members = {key: np.flatnonzero([k == key for k in keys]) for key in unique}
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_bootstrap):
        chosen = rng.integers(0, len(unique), len(unique))
        index = np.concatenate([members[unique[i]] for i in chosen])
        value = _auc(finite[index], truth[index])
        if not np.isnan(value):
            draws.append(value)
    alpha = (1.0 - confidence) / 2.0
    low, high = (
        (float(np.quantile(draws, alpha)), float(np.quantile(draws, 1.0 - alpha)))
        if draws
        else (float("nan"), float("nan"))
    )
    return AUCEstimate(point, low, high, int(truth.sum()), int((~truth).sum()))

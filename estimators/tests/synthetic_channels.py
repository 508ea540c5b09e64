"""Synthetic channels with closed-form mutual information, for validating the estimators."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import stats


def symmetric_channel_scores(
    n_contexts: int, n_samples: int, *, symbols: int, error: float, seed: int
) -> tuple[NDArray[np.float64], float]:
    """Score tensor and true MI (nats) of a K-ary symmetric channel with uniform input.

    X is uniform on K symbols; Z = X with probability 1 - error, otherwise one of the other
    K - 1 symbols uniformly. I = ln K - H(error) - error ln(K - 1).
    """
    rng = np.random.default_rng(seed)
    x = rng.integers(0, symbols, size=n_contexts)
    flip = rng.random((n_contexts, n_samples)) < error
    offsets = rng.integers(1, symbols, size=(n_contexts, n_samples))
    z = np.where(flip, (x[:, None] + offsets) % symbols, x[:, None])
    same = z[:, :, None] == x[None, None, :]
    scores = np.where(same, math.log(1.0 - error), math.log(error / (symbols - 1)))
    entropy = -(1 - error) * math.log(1 - error) - error * math.log(error)
    truth = math.log(symbols) - entropy - error * math.log(symbols - 1)
    return scores, truth


def gaussian_channel_scores(
    n_contexts: int, n_samples: int, *, snr: float, seed: int
) -> tuple[NDArray[np.float64], float]:
    """Score tensor and true MI (nats) of Z = X + noise with X ~ N(0, snr), noise ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, math.sqrt(snr), size=n_contexts)
    z = x[:, None] + rng.normal(size=(n_contexts, n_samples))
    scores = stats.norm.logpdf(z[:, :, None] - x[None, None, :])
    return scores, 0.5 * math.log1p(snr)

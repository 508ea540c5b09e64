"""Input checks shared by the estimators: one place that says what to fix."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def as_float_array(
    values: ArrayLike, *, name: str, allow_neg_inf: bool = False
) -> NDArray[np.float64]:
    """Convert ``values`` to a float64 array and reject empty, NaN and infinite entries.

    Args:
        values: Anything numpy can turn into a numeric array.
        name: The argument's name, used in error messages.
        allow_neg_inf: Accept ``-inf`` (a log-probability of an impossible event).

    Raises:
        ValueError: If the array is empty, non-numeric, or holds NaN or a disallowed infinity.
    """
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        msg = f"{name} must be numeric log-probabilities in nats; could not convert it: {exc}"
        raise ValueError(msg) from exc
    if array.size == 0:
        msg = f"{name} is empty; pass at least one value"
        raise ValueError(msg)
    if np.isnan(array).any():
        count = int(np.isnan(array).sum())
        msg = (
            f"{name} contains {count} NaN value(s); a scorer failed upstream, "
            "re-score those entries"
        )
        raise ValueError(msg)
    if np.isposinf(array).any():
        msg = f"{name} contains +inf; log-probabilities are at most 0, check the scorer's output"
        raise ValueError(msg)
    if not allow_neg_inf and np.isneginf(array).any():
        msg = f"{name} contains -inf; every value here must be a finite log-probability"
        raise ValueError(msg)
    return array

"""Unit conversions: every estimator works in nats and reports bits as well."""

from __future__ import annotations

import math

LN2 = math.log(2.0)


def nats_to_bits(nats: float) -> float:
    """Convert nats to bits.

    Example:
        >>> round(nats_to_bits(math.log(2.0)), 6)
        1.0
    """
    return nats / LN2

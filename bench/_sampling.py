"""Seeded spread samples of a benchmark's cases (shared by the bench scripts)."""

from __future__ import annotations

import random


def spread_sample(total: int, wanted: int, seed: int) -> list[int]:
    """``wanted`` indices out of ``range(total)``: one seeded pick in each of equal strata."""
    if wanted >= total:
        return list(range(total))
    rng = random.Random(seed)  # a seeded sample, not a secret
    edges = [round(i * total / wanted) for i in range(wanted + 1)]
    return [rng.randrange(edges[i], edges[i + 1]) for i in range(wanted)]

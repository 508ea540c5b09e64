"""What a sweep measured, before analysis: cells and items as JSON-ready rows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ib_estimators import MIEstimate

__all__ = ["SweepRun", "summarise_cell"]


@dataclass
class SweepRun:
    """Everything a sweep measured, before analysis.

    Attributes:
        cells: One row per compressor x predictor x seed (accuracy, MI, costs ...).
        items: One row per compression x predictor (the routing evaluation's input).
        cases: Id, query, answer and context tokens of each case.
        cache_hits: Units of work read back from the cache.
        cache_misses: Units of work computed in this run.
    """

    cells: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)
    cache_hits: int = 0
    cache_misses: int = 0


def _mean(values: Iterable[float | None]) -> float | None:
    present = [float(value) for value in values if value is not None]
    return float(np.mean(present)) if present else None


def summarise_cell(
    common: dict[str, Any],
    predictor: str,
    items: list[dict[str, Any]],
    estimate: MIEstimate,
    mean_length: float,
) -> dict[str, Any]:
    """One cell's row: the means of its items, and the compressor's MI estimate."""
    accuracy = _mean(item["correct"] for item in items) or 0.0
    return common | {
        "predictor": predictor,
        "n_contexts": len({item["case"] for item in items}),
        "samples": 1 + max(item["sample"] for item in items),
        "accuracy": accuracy,
        "distortion": 1.0 - accuracy,
        "full_context_accuracy": _mean(item["full_correct"] for item in items),
        "containment": _mean(item["contained"] for item in items),
        "mean_output_tokens": mean_length,
        "mean_input_tokens": _mean(item["input_tokens"] for item in items),
        "mi_bits": estimate.bits,
        "mi_ci_bits": list(estimate.ci_bits),
        "log_n_bits": estimate.upper_bound_bits,
        "saturated": estimate.saturated,
        "clipped": estimate.clipped,
        # A saturated estimate is a lower bound (log N), not a rate: dividing it by the length
        # would only measure 1/length. It is kept apart and never enters the rate analyses.
        "bits_per_token": (
            estimate.bits / mean_length if mean_length > 0 and not estimate.saturated else None
        ),
        "bits_per_token_lower_bound": (
            estimate.bits / mean_length if mean_length > 0 and estimate.saturated else None
        ),
        "perplexity": _mean(item["perplexity"] for item in items),
        "compressor_flops": _mean(item["compressor_flops"] for item in items),
        "predictor_flops": _mean(item["predictor_flops"] for item in items),
        "compressor_cost": _mean(item["compressor_cost"] for item in items),
        "predictor_cost": _mean(item["predictor_cost"] for item in items),
        "full_cost": _mean(item["full_cost"] for item in items),
        "failures": sum(item["failed"] for item in items),
        "empty": sum(item["output_tokens"] == 0 for item in items),
    }

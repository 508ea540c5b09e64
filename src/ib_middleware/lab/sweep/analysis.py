"""Analyses of a sweep: rate-distortion fits, correlations, knobs, and routing evaluation.

Every analysis runs once per predictor and once for ``containment``, the predictor-free
distortion (does the compression still hold every figure of the gold answer?). An analysis
that cannot be done on the data at hand (too few points, a constant sample, a separated
regression) records why instead of a number.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict
from functools import partial
from typing import Any

import numpy as np
from ib_estimators import correlate, fit_rate_distortion, knob_analysis

from ib_middleware.lab.sweep.records import SweepRun

__all__ = ["CONTAINMENT", "analyse", "routing_curves"]

CONTAINMENT = "containment"
"""The pseudo-predictor whose correctness is answer containment in the compression."""

_BOOTSTRAP = 1000


def _attempt(function: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return function()
    except ValueError as error:
        return {"error": str(error)}


def _views(run: SweepRun) -> dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Cells and items per predictor, plus the containment pseudo-predictor."""
    predictors = list(dict.fromkeys(cell["predictor"] for cell in run.cells))
    views = {
        name: (
            [cell for cell in run.cells if cell["predictor"] == name],
            [item for item in run.items if item["predictor"] == name],
        )
        for name in predictors
    }
    if predictors:
        first = predictors[0]
        cells = [
            cell | {"predictor": CONTAINMENT, "distortion": 1.0 - (cell["containment"] or 0.0)}
            for cell in views[first][0]
        ]
        items = [
            item
            | {
                "predictor": CONTAINMENT,
                "correct": item["contained"],
                "full_correct": item["full_contained"],
                "predictor_cost": 0.0,
                "full_cost": 0.0,
            }
            for item in views[first][1]
        ]
        views[CONTAINMENT] = (cells, items)
    return views


def _rate_distortion(cells: Sequence[dict[str, Any]]) -> dict[str, Any]:
    points = [c for c in cells if c["bits_per_token"] is not None]
    rates = [c["bits_per_token"] for c in points]
    distortions = [c["distortion"] for c in points]
    fit = asdict(fit_rate_distortion(rates, distortions))
    return fit | {"rates": rates, "distortions": distortions}


def _correlation(x: Sequence[float | None], y: Sequence[float | None]) -> dict[str, Any]:
    pairs = [(a, b) for a, b in zip(x, y, strict=True) if a is not None and b is not None]
    return asdict(correlate([a for a, _ in pairs], [b for _, b in pairs]))


def _correlations(
    cells: Sequence[dict[str, Any]], items: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    distortion = [c["distortion"] for c in cells]
    result = {
        "bits_per_token_vs_distortion": _attempt(
            lambda: _correlation([c["bits_per_token"] for c in cells], distortion)
        ),
        "mi_bits_vs_distortion": _attempt(
            lambda: _correlation([c["mi_bits"] for c in cells], distortion)
        ),
        "per_compression_bits_per_token_vs_correct": _attempt(
            lambda: _correlation(
                [i["bits_per_token"] for i in items], [float(i["correct"]) for i in items]
            )
        ),
    }
    if any(c.get("perplexity") is not None for c in cells):
        result["mi_bits_vs_log_perplexity"] = _attempt(
            lambda: _correlation(
                [c["mi_bits"] for c in cells],
                [math.log(c["perplexity"]) if c.get("perplexity") else None for c in cells],
            )
        )
    return result


def _knobs(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    rows = [i for i in items if i["kind"] == "abstractive" and i["compressor_params"]]
    if len(rows) < 8:
        return {"error": f"needs at least 8 abstractive compressions, got {len(rows)}"}
    candidates = {
        "log_compressor_params": [math.log(r["compressor_params"]) for r in rows],
        "log_predictor_params": [
            math.log(r["predictor_params"]) if r["predictor_params"] else math.nan for r in rows
        ],
        "sentences": [float(r["sentences"]) for r in rows],
    }
    features = {
        name: values
        for name, values in candidates.items()
        if all(math.isfinite(v) for v in values) and np.ptp(values) > 0
    }
    families: list[str] | None = [str(r["family"]) for r in rows]
    notes = []
    sizes_per_family = defaultdict(set)
    for row in rows:
        sizes_per_family[row["family"]].add(row["compressor_params"])
    if len(sizes_per_family) < 2:
        families = None
    elif all(len(sizes) == 1 for sizes in sizes_per_family.values()) and (
        "log_compressor_params" in features
    ):
        families = None
        notes.append(
            "compressor family and size are confounded (one size per family), so only size "
            "is fitted; add a second size of a family to separate them"
        )
    analysis = knob_analysis([r["correct"] for r in rows], features, families=families)
    return {
        "coefficients": [asdict(c) for c in analysis.coefficients],
        "pseudo_r_squared": analysis.pseudo_r_squared,
        "n_observations": analysis.n_observations,
        "reference_family": analysis.reference_family,
        "notes": notes,
    }


def _route(items: Sequence[dict[str, Any]], order: Sequence[int], k: int) -> tuple[float, float]:
    """Accuracy and cost per query when the first ``k`` items of ``order`` fall back."""
    fallback = set(order[:k])
    correct = cost = 0.0
    for index, item in enumerate(items):
        back = index in fallback
        correct += item["full_correct"] if back else item["correct"]
        cost += item["compressor_cost"] + (item["full_cost"] if back else item["predictor_cost"])
    return correct / len(items), cost / len(items)


def _gains(items: Sequence[dict[str, Any]], rates: Sequence[float]) -> dict[str, Any]:
    n = len(items)
    signal = [i["bits_per_token"] if i["bits_per_token"] is not None else -math.inf for i in items]
    by_signal = sorted(range(n), key=lambda index: (signal[index], index))
    by_length = sorted(range(n), key=lambda index: (items[index]["output_tokens"], index))
    compressed = float(np.mean([i["correct"] for i in items]))
    full = float(np.mean([i["full_correct"] for i in items]))
    curves: dict[str, list[float]] = defaultdict(list)
    for rate in rates:
        k = round(rate * n)
        mi_accuracy, mi_cost = _route(items, by_signal, k)
        length_accuracy, length_cost = _route(items, by_length, k)
        curves["mi"].append(mi_accuracy)
        curves["mi_cost"].append(mi_cost)
        curves["length"].append(length_accuracy)
        curves["length_cost"].append(length_cost)
        curves["random"].append((1 - k / n) * compressed + (k / n) * full)
    interior = [index for index, rate in enumerate(rates) if 0.0 < rate < 1.0]
    return dict(curves) | {
        "gain_vs_random": float(np.mean([curves["mi"][x] - curves["random"][x] for x in interior])),
        "gain_vs_length": float(np.mean([curves["mi"][x] - curves["length"][x] for x in interior])),
    }


def routing_curves(
    items: Sequence[dict[str, Any]], rates: Sequence[float], *, seed: int = 0
) -> dict[str, Any]:
    """Accuracy and cost of MI, random and length routing at each fallback rate.

    MI routing falls back on the compressions with the lowest bits per token; length routing
    on the shortest compressions; random routing on a random subset (its expectation). The
    gains are MI's accuracy minus the other's, averaged over the interior rates, with a
    bootstrap 95% interval over compressions.

    Example:
        >>> items = [
        ...     {"bits_per_token": b, "output_tokens": t, "correct": c, "full_correct": True,
        ...      "compressor_cost": 0.0, "predictor_cost": 1.0, "full_cost": 4.0}
        ...     for b, t, c in [(0.1, 9, False), (0.9, 5, True), (0.5, 7, True), (0.2, 8, False)]
        ... ]
        >>> curves = routing_curves(items, [0.0, 0.5, 1.0])
        >>> curves["mi"], curves["random"]
        ([0.5, 1.0, 1.0], [0.5, 0.75, 1.0])
    """
    if not items:
        msg = "no compressions to route"
        raise ValueError(msg)
    result = _gains(items, rates)
    rng = np.random.default_rng(seed)
    boot: dict[str, list[float]] = defaultdict(list)
    for _ in range(_BOOTSTRAP):
        sample = [items[index] for index in rng.integers(0, len(items), len(items))]
        gains = _gains(sample, rates)
        boot["random"].append(gains["gain_vs_random"])
        boot["length"].append(gains["gain_vs_length"])
    return result | {
        "rates": list(rates),
        "n": len(items),
        "compressed_accuracy": float(np.mean([i["correct"] for i in items])),
        "full_accuracy": float(np.mean([i["full_correct"] for i in items])),
        "full_cost": float(np.mean([i["full_cost"] for i in items])),
        "gain_vs_random_ci": [float(v) for v in np.quantile(boot["random"], [0.025, 0.975])],
        "gain_vs_length_ci": [float(v) for v in np.quantile(boot["length"], [0.025, 0.975])],
    }


def _routing(items: Sequence[dict[str, Any]], rates: Sequence[float]) -> dict[str, Any]:
    compressors = dict.fromkeys(item["compressor"] for item in items)
    return {
        compressor: _attempt(
            partial(
                routing_curves, [item for item in items if item["compressor"] == compressor], rates
            )
        )
        for compressor in compressors
    }


def analyse(run: SweepRun, rates: Sequence[float]) -> dict[str, Any]:
    """All analyses of a sweep, JSON-ready, keyed by predictor (and ``containment``)."""
    result: dict[str, Any] = {}
    for predictor, (cells, items) in _views(run).items():
        result[predictor] = {
            "rate_distortion": _attempt(partial(_rate_distortion, cells)),
            "correlations": _correlations(cells, items),
            "knobs": _attempt(partial(_knobs, items)),
            "routing": _routing(items, rates),
        }
    return result

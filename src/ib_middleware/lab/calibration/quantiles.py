"""The version-2 sweep: per-rung quantile thresholds, the gate's quantile grid, the selection.

Rung k's threshold is a common quantile q of rung k's signal over the cases that reach rung k
(as RouteLLM calibrates its routers); the relevance gate's threshold comes from a grid of
quantiles of the observed share of the query explained. The sweep records an operating point for
each (gate, q) pair; a target distortion picks the feasible point forwarding the fewest tokens, a
target fallback rate the closest point. (Calibration v3 chooses among a fixed family instead:
``grid``.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ib_middleware.judging.routing import route_action
from ib_middleware.lab.calibration.simulation import CaseRecord, RungOutcome, simulate
from ib_middleware.policy import CurvePoint

__all__ = [
    "DEFAULT_GATE_LEVELS",
    "RungOutcome",
    "Selection",
    "TargetKind",
    "gate_grid",
    "quantile_grid",
    "quantile_thresholds",
    "select_point",
    "sweep",
]

TargetKind = Literal["distortion", "fallback"]
DEFAULT_GATE_LEVELS = tuple(round(0.05 * step, 2) for step in range(11))
"""Quantiles of the observed query fractions tried as the gate's threshold: 0, 0.05, ..., 0.5."""


@dataclass(frozen=True)
class Selection:
    """The operating point chosen for a target, and whether it meets the target."""

    point: CurvePoint
    target_met: bool
    note: str


def quantile_grid(points: int = 21) -> list[float]:
    """Evenly spaced quantiles from 0 to 1 inclusive.

    Example:
        >>> quantile_grid(5)
        [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    if points < 2:
        msg = f"a quantile grid needs at least 2 points, got {points}"
        raise ValueError(msg)
    return [round(float(q), 10) for q in np.linspace(0.0, 1.0, points)]


def _quantile(values: Sequence[float], quantile: float) -> float:
    if quantile >= 1.0:
        return float(np.nextafter(max(values), math.inf))
    return float(np.quantile(np.asarray(values, dtype=np.float64), quantile))


def quantile_thresholds(
    records: Sequence[CaseRecord], quantile: float, *, prune_below: float | None = None
) -> list[float]:
    """Each rung's threshold: the ``quantile`` of its signal over the cases that reach it.

    Rung 0 sees every case; rung k + 1 the cases rung k neither accepted nor pruned under its
    threshold (and the gate ``prune_below``). ``quantile = 0`` accepts every valid compression
    that reaches the rung; ``quantile = 1`` sets the threshold just above the largest, so
    nothing observed is accepted. A rung no valid compression reaches takes the quantile of all
    its valid compressions, and one with none at all +0.0 (it accepted nothing either way).

    Example:
        >>> rows = [CaseRecord(str(i), 100, True, (RungOutcome(v, True, 10),)) for i, v in
        ...         enumerate([0.1, 0.2, 0.3, 0.4, 0.5])]
        >>> quantile_thresholds(rows, 0.5), quantile_thresholds(rows, 0.0)
        ([0.3], [0.1])
    """
    if not 0.0 <= quantile <= 1.0:
        msg = f"quantile must be in [0, 1], got {quantile}"
        raise ValueError(msg)
    n_rungs = len(records[0].rungs) if records else 0
    thresholds: list[float] = []
    reaching = [record for record in records if not record.passthrough]
    for rung in range(n_rungs):
        values = [v for r in reaching if (v := r.rungs[rung].bits_per_token) is not None]
        values = values or [v for r in records if (v := r.rungs[rung].bits_per_token) is not None]
        threshold = _quantile(values, quantile) if values else 0.0
        thresholds.append(threshold)
        reaching = [
            r
            for r in reaching
            if (outcome := r.rungs[rung]).bits_per_token is None
            or route_action(outcome.bits_per_token, outcome.query_fraction, threshold, prune_below)
            == "escalate"
        ]
    return thresholds


def gate_grid(
    records: Sequence[CaseRecord], levels: Sequence[float] = DEFAULT_GATE_LEVELS
) -> list[float | None]:
    """The relevance gate's candidate thresholds: None (no gate), then quantiles of the data.

    The ``levels`` quantiles of rung 0's observed query fractions (of every rung's, when rung 0
    has none), distinct and ascending. Just ``[None]`` when no outcome has a query fraction:
    the estimator does not measure it, and a gate could not be calibrated.

    Example:
        >>> rows = [CaseRecord(str(i), 100, True, (RungOutcome(0.5, True, 10, None, f),))
        ...         for i, f in enumerate([0.0, 0.2, 0.4])]
        >>> gate_grid(rows, [0.0, 0.5])
        [None, 0.0, 0.2]
        >>> gate_grid([CaseRecord("a", 100, True, (RungOutcome(0.5, True, 10),))])
        [None]
    """
    first = [f for r in records if r.rungs and (f := r.rungs[0].query_fraction) is not None]
    every = [f for r in records for o in r.rungs if (f := o.query_fraction) is not None]
    values = np.asarray(first or every, dtype=np.float64)
    if not values.size:
        return [None]
    return [None, *sorted({float(np.quantile(values, level)) for level in levels})]


def sweep(
    records: Sequence[CaseRecord],
    quantiles: Sequence[float],
    prune_grid: Sequence[float | None] = (None,),
) -> list[CurvePoint]:
    """The operating point at each (gate, common quantile) pair, gate by gate.

    Example:
        >>> rows = [CaseRecord(str(i), 100, True, (RungOutcome(v, v > 0.25, 10),)) for i, v in
        ...         enumerate([0.1, 0.2, 0.3, 0.4])]
        >>> [(p.fallback_rate, p.distortion) for p in sweep(rows, [0.0, 0.5, 1.0])]
        [(0.0, 0.5), (0.5, 0.0), (1.0, 0.0)]
    """
    return [
        simulate(
            records,
            quantile_thresholds(records, q, prune_below=gate),
            quantile=q,
            prune_below=gate,
        )
        for gate in prune_grid
        for q in quantiles
    ]


def select_point(
    curve: Sequence[CurvePoint], target_kind: TargetKind, target_value: float
) -> Selection:
    """Choose the operating point for a target.

    - ``distortion``: among points with distortion at most the target, the one forwarding the
      fewest tokens (ties: lower distortion, then lower fallback rate). When none meets it,
      the point of least distortion, with ``target_met`` False and a note saying so.
    - ``fallback``: the point whose fallback rate is closest to the target; ties go to the
      lower distortion, then to fewer forwarded tokens.

    Remaining ties go to the earlier point of the curve (no gate first, lower quantiles first).

    Example:
        >>> curve = [
        ...     CurvePoint(quantile=0.0, thresholds=[0.1], fallback_rate=0.0, distortion=0.4,
        ...                forwarded_token_fraction=0.1),
        ...     CurvePoint(quantile=0.5, thresholds=[0.3], fallback_rate=0.5, distortion=0.1,
        ...                forwarded_token_fraction=0.5),
        ... ]
        >>> select_point(curve, "distortion", 0.2).point.quantile
        0.5
        >>> select_point(curve, "fallback", 0.1).point.quantile
        0.0
    """
    if not curve:
        msg = "no operating points to choose from"
        raise ValueError(msg)
    if target_kind == "fallback":
        point = min(
            curve,
            key=lambda p: (
                abs(p.fallback_rate - target_value),
                p.distortion,
                p.forwarded_token_fraction,
            ),
        )
        met = math.isclose(point.fallback_rate, target_value, abs_tol=1e-9)
        note = (
            f"fallback rate {point.fallback_rate:.3f} is the closest to the target "
            f"{target_value:.3f} on the grid"
        )
        return Selection(point=point, target_met=met, note=note)
    feasible = [p for p in curve if p.distortion <= target_value + 1e-12]
    if feasible:
        point = min(
            feasible, key=lambda p: (p.forwarded_token_fraction, p.distortion, p.fallback_rate)
        )
        note = (
            f"fewest forwarded tokens ({point.forwarded_token_fraction:.3f} of the input) with "
            f"distortion {point.distortion:.3f} <= {target_value:.3f}"
        )
        return Selection(point=point, target_met=True, note=note)
    point = min(curve, key=lambda p: (p.distortion, p.forwarded_token_fraction, p.fallback_rate))
    note = (
        f"no operating point reaches distortion <= {target_value:.3f}; chose the least "
        f"distortion measured, {point.distortion:.3f} (the fallback's own distortion bounds it)"
    )
    return Selection(point=point, target_met=False, note=note)

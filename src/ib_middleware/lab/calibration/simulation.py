"""The ladder replayed on a measured table: pure functions, no model runs.

A case walks the rungs in order: a rung with no signal (failed, invalid or unsupported) passes it
on; otherwise the run-time rule, ``routing.route_action``, prunes it (relevance gate), accepts it
or escalates. No rung: the full context (fallback). Each route has a label (a pruned case is
correct when it needs no evidence; an accepted one by the judge; the fallback by whether the raw
context holds the answer) and forwards tokens (the note, the compression or the context).

Rung k's threshold is a common quantile q of rung k's signal over the cases that reach rung k
(as RouteLLM calibrates its routers); the relevance gate's threshold comes from a grid of
quantiles of the observed share of the query explained. The sweep records an operating point for
each (gate, q) pair; a target distortion picks the feasible point forwarding the fewest tokens, a
target fallback rate the closest point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np

from ib_middleware.judging.routing import Action, route_action
from ib_middleware.policy import CurvePoint

__all__ = [
    "DEFAULT_GATE_LEVELS",
    "PASSTHROUGH",
    "PRUNED",
    "CaseRecord",
    "Route",
    "RungOutcome",
    "Selection",
    "TargetKind",
    "decide_case",
    "gate_grid",
    "quantile_grid",
    "quantile_thresholds",
    "route_case",
    "route_cases",
    "route_label",
    "route_tokens",
    "select_point",
    "simulate",
    "sweep",
]

TargetKind = Literal["distortion", "fallback"]
PRUNED: Literal["pruned"] = "pruned"
PASSTHROUGH: Literal["passthrough"] = "passthrough"
Route: TypeAlias = int | Literal["pruned", "passthrough"] | None
"""Where a case ends: the rung that accepted it, ``"pruned"``, ``"passthrough"`` (within the
token budget, never compressed) or None (the fallback)."""

DEFAULT_GATE_LEVELS = tuple(round(0.05 * step, 2) for step in range(11))
"""Quantiles of the observed query fractions tried as the gate's threshold: 0, 0.05, ..., 0.5."""


@dataclass(frozen=True)
class RungOutcome:
    """One rung's compression of one case.

    Attributes:
        bits_per_token: The online estimate, or None when the rung failed or its compression
            was invalid (such a compression is never accepted).
        correct: The judge's label: the compression holds the answer.
        output_tokens: Tokens of the compression, when there is one.
        error: Why ``bits_per_token`` is None.
        query_fraction: The share of the query the compression explains (what the relevance
            gate thresholds), when the estimator measures it.
    """

    bits_per_token: float | None
    correct: bool
    output_tokens: int | None = None
    error: str | None = None
    query_fraction: float | None = None


@dataclass(frozen=True)
class CaseRecord:
    """Everything the ladder simulation needs about one case.

    Attributes:
        case_id: The case's identifier.
        input_tokens: Tokens of the raw context.
        fallback_correct: The raw context holds the answer (the fallback's label).
        rungs: One outcome per rung, cheapest first.
        needs_evidence: False when the context holds nothing the query needs (a distractor
            page): then every route is correct, pruning included; else pruning loses it.
        group: Cases sharing a group (the same question's variants) stay in one
            cross-validation fold and are resampled together.
        note_tokens: Tokens of the note that stands in for the case when it is pruned.
        workload: The kind of traffic the case comes from (``search``, ``filings``, ...):
            guarantees and figures are stated per workload.
        passthrough: The item is within the stage's token budget: the stage forwards it
            untouched, so no threshold or gate ever applies to it.
    """

    case_id: str
    input_tokens: int
    fallback_correct: bool
    rungs: tuple[RungOutcome, ...]
    needs_evidence: bool = True
    group: str = ""
    note_tokens: int = 0
    workload: str = ""
    passthrough: bool = False


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


def decide_case(
    record: CaseRecord, thresholds: Sequence[float], prune_below: float | None = None
) -> tuple[Action, int] | None:
    """The first rung whose rule prunes or accepts the case, and the action; None: fallback.

    Example:
        >>> row = CaseRecord("a", 100, True, (RungOutcome(None, False), RungOutcome(0.9, True, 9)))
        >>> decide_case(row, [0.5, 0.5]), decide_case(row, [0.5, 0.95])
        (('accept', 1), None)
    """
    if len(record.rungs) != len(thresholds):
        msg = f"{len(thresholds)} thresholds for {len(record.rungs)} rungs"
        raise ValueError(msg)
    for index, (outcome, threshold) in enumerate(zip(record.rungs, thresholds, strict=True)):
        if outcome.bits_per_token is None:
            continue
        value, fraction = outcome.bits_per_token, outcome.query_fraction
        action = route_action(value, fraction, threshold, prune_below)
        if action != "escalate":
            return action, index
    return None


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


def route_case(
    record: CaseRecord, thresholds: Sequence[float], prune_below: float | None = None
) -> Route:
    """Where the ladder sends one case: the rung that accepts it, ``"pruned"``, or None.

    An item within the token budget (``passthrough``) is never compressed: ``"passthrough"``.

    Example:
        >>> row = CaseRecord("a", 100, True, (RungOutcome(0.9, True, 9, query_fraction=0.05),))
        >>> route_case(row, [0.5]), route_case(row, [0.5], 0.1), route_case(row, [0.95])
        (0, 'pruned', None)
    """
    if record.passthrough:
        return PASSTHROUGH
    stop = decide_case(record, thresholds, prune_below)
    if stop is None:
        return None
    action, rung = stop
    return PRUNED if action == "prune" else rung


def route_cases(
    records: Sequence[CaseRecord],
    thresholds: Sequence[float],
    *,
    prune_below: float | None = None,
) -> list[Route]:
    """Each case's route under ``thresholds`` and the gate ``prune_below`` (``route_case``).

    A case goes to the first rung whose rule (``routing.route_action``) accepts or prunes it;
    an invalid or failed compression (bits per token None) never does.

    Example:
        >>> row = CaseRecord("a", 100, True, (RungOutcome(0.2, True, 9), RungOutcome(0.6, True, 9)))
        >>> route_cases([row], [0.5, 0.5]), route_cases([row], [0.5, 0.7])
        ([1], [None])
    """
    return [route_case(record, thresholds, prune_below) for record in records]


def route_label(record: CaseRecord, route: Route) -> bool:
    """Whether the text a route forwards serves the query.

    A pruned case is right exactly when it needs no evidence; an accepted one takes the judge's
    label of its compression; the fallback, whether the raw context holds the answer.

    Example:
        >>> row = CaseRecord("a", 100, True, (RungOutcome(0.9, False, 9),))
        >>> route_label(row, 0), route_label(row, None), route_label(row, "pruned")
        (False, True, False)
    """
    if route == PRUNED:
        return not record.needs_evidence
    if route is None or route == PASSTHROUGH:
        return record.fallback_correct
    return record.rungs[route].correct


def route_tokens(record: CaseRecord, route: Route) -> int:
    """Tokens a route forwards: the note, the compression, or the whole context.

    Example:
        >>> row = CaseRecord("a", 100, True, (RungOutcome(0.9, True, 9),), note_tokens=12)
        >>> route_tokens(row, 0), route_tokens(row, None), route_tokens(row, "pruned")
        (9, 100, 12)
    """
    if route == PRUNED:
        return record.note_tokens
    if route is None or route == PASSTHROUGH:
        return record.input_tokens
    return record.rungs[route].output_tokens or 0


def simulate(
    records: Sequence[CaseRecord],
    thresholds: Sequence[float],
    *,
    quantile: float = math.nan,
    prune_below: float | None = None,
) -> CurvePoint:
    """Replay the ladder on the measured table with the given thresholds and gate.

    Each case is routed as in ``route_case``; it scores that route's label (``route_label``)
    and forwards that route's tokens (``route_tokens``).

    Args:
        records: The measured table.
        thresholds: One threshold per rung.
        quantile: The quantile the thresholds came from, recorded on the point (NaN when
            they came from elsewhere).
        prune_below: The relevance gate's threshold; None turns the gate off.

    Returns:
        The operating point: fallback and pruned rates, distortion (1 - the correct share of
        all cases), containment (the correct share of the cases that need evidence; None
        without any) and the forwarded-token fraction.

    Example:
        >>> rows = [
        ...     CaseRecord("a", 100, True, (RungOutcome(0.9, True, 10),)),
        ...     CaseRecord("b", 100, True, (RungOutcome(0.1, False, 10),)),
        ... ]
        >>> point = simulate(rows, [0.5])
        >>> point.fallback_rate, point.distortion, point.forwarded_token_fraction
        (0.5, 0.0, 0.55)
    """
    if not records:
        msg = "the ladder simulation needs at least one case"
        raise ValueError(msg)
    routes = route_cases(records, thresholds, prune_below=prune_below)
    labels = [route_label(r, route) for r, route in zip(records, routes, strict=True)]
    needing = [label for r, label in zip(records, labels, strict=True) if r.needs_evidence]
    forwarded = sum(route_tokens(r, route) for r, route in zip(records, routes, strict=True))
    total = sum(record.input_tokens for record in records)
    return CurvePoint(
        quantile=quantile,
        thresholds=[float(t) for t in thresholds],
        fallback_rate=routes.count(None) / len(records),
        distortion=1.0 - sum(labels) / len(records),
        forwarded_token_fraction=forwarded / total if total else 1.0,
        prune_below=prune_below,
        pruned_rate=routes.count(PRUNED) / len(records),
        containment=sum(needing) / len(needing) if needing else None,
    )


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

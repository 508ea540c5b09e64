"""The ladder replayed on a measured table: pure functions, no model runs.

Each rung's threshold is the same quantile q of that rung's observed bits per token (as
RouteLLM calibrates its routers); for each q on a grid over [0, 1] the ladder is replayed on the
table and the operating point recorded: fallback rate, distortion (1 - accuracy over all cases,
each case scored by the route it took) and the fraction of input tokens forwarded. A target
fallback rate picks the closest point; a target distortion the lowest fallback rate that meets it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ib_middleware.policy import CurvePoint, Policy, PolicyRung

__all__ = [
    "CaseRecord",
    "RungOutcome",
    "RungSummary",
    "Selection",
    "TargetKind",
    "build_policy",
    "quantile_grid",
    "quantile_thresholds",
    "route_cases",
    "select_point",
    "simulate",
    "summarise_rungs",
    "sweep",
]

TargetKind = Literal["distortion", "fallback"]


@dataclass(frozen=True)
class RungOutcome:
    """One rung's compression of one case.

    Attributes:
        bits_per_token: The online estimate, or None when the rung failed or its compression
            was invalid (such a compression is never accepted).
        correct: The judge's label: the compression holds the answer.
        output_tokens: Tokens of the compression, when there is one.
        error: Why ``bits_per_token`` is None.
    """

    bits_per_token: float | None
    correct: bool
    output_tokens: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class CaseRecord:
    """Everything the ladder simulation needs about one case.

    Attributes:
        case_id: The case's identifier.
        input_tokens: Tokens of the raw context.
        fallback_correct: The raw context holds the answer (the fallback's label).
        rungs: One outcome per rung, cheapest first.
    """

    case_id: str
    input_tokens: int
    fallback_correct: bool
    rungs: tuple[RungOutcome, ...]


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


def quantile_thresholds(records: Sequence[CaseRecord], quantile: float) -> list[float]:
    """Each rung's threshold: the ``quantile`` of its observed bits per token.

    ``quantile = 0`` accepts every valid compression; ``quantile = 1`` sets the threshold just
    above the largest observation, so nothing observed is accepted. A rung with no valid
    observation gets +0.0 (it accepted nothing during calibration either way).

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
    thresholds = []
    for rung in range(n_rungs):
        values = [v for r in records if (v := r.rungs[rung].bits_per_token) is not None]
        if not values:
            thresholds.append(0.0)
        elif quantile >= 1.0:
            thresholds.append(float(np.nextafter(max(values), math.inf)))
        else:
            thresholds.append(float(np.quantile(np.asarray(values, dtype=np.float64), quantile)))
    return thresholds


def route_cases(records: Sequence[CaseRecord], thresholds: Sequence[float]) -> list[int | None]:
    """The rung each case is accepted at under ``thresholds``, or None for the fallback.

    A case goes to the first rung whose bits per token clear its threshold; an invalid or
    failed compression (bits per token None) never does.

    Example:
        >>> row = CaseRecord("a", 100, True, (RungOutcome(0.2, True, 9), RungOutcome(0.6, True, 9)))
        >>> route_cases([row], [0.5, 0.5]), route_cases([row], [0.5, 0.7])
        ([1], [None])
    """
    routes: list[int | None] = []
    for record in records:
        if len(record.rungs) != len(thresholds):
            msg = f"{len(thresholds)} thresholds for {len(record.rungs)} rungs"
            raise ValueError(msg)
        routes.append(
            next(
                (
                    index
                    for index, (outcome, threshold) in enumerate(
                        zip(record.rungs, thresholds, strict=True)
                    )
                    if outcome.bits_per_token is not None and outcome.bits_per_token >= threshold
                ),
                None,
            )
        )
    return routes


def simulate(
    records: Sequence[CaseRecord], thresholds: Sequence[float], *, quantile: float = math.nan
) -> CurvePoint:
    """Replay the ladder on the measured table with the given thresholds.

    Each case is routed as in ``route_cases``; it scores that route's label (the fallback's:
    whether the raw context holds the answer) and forwards that route's tokens.

    Args:
        records: The measured table.
        thresholds: One threshold per rung.
        quantile: The quantile the thresholds came from, recorded on the point (NaN when
            they came from elsewhere).

    Returns:
        The operating point: fallback rate, distortion, forwarded-token fraction.

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
    fallbacks = correct = forwarded = total = 0
    for record, route in zip(records, route_cases(records, thresholds), strict=True):
        total += record.input_tokens
        if route is None:
            fallbacks += 1
            correct += record.fallback_correct
            forwarded += record.input_tokens
        else:
            outcome = record.rungs[route]
            correct += outcome.correct
            forwarded += outcome.output_tokens or 0
    return CurvePoint(
        quantile=quantile,
        thresholds=[float(t) for t in thresholds],
        fallback_rate=fallbacks / len(records),
        distortion=1.0 - correct / len(records),
        forwarded_token_fraction=forwarded / total if total else 1.0,
    )


@dataclass(frozen=True)
class RungSummary:
    """How one rung did on the calibration cases, and at the chosen thresholds.

    Attributes:
        name: The rung's name.
        threshold: Its chosen threshold.
        valid: Cases with a valid, estimated compression.
        failed: Cases where it failed or its compression was invalid.
        accuracy: Share of valid compressions the judge labelled correct.
        accepted: Cases accepted at this rung under the chosen thresholds.
        accepted_accuracy: Share of those labelled correct (NaN when none was accepted).
        bits_per_token: (min, median, max) of the valid estimates (NaNs when none).
    """

    name: str
    threshold: float
    valid: int
    failed: int
    accuracy: float
    accepted: int
    accepted_accuracy: float
    bits_per_token: tuple[float, float, float]


def summarise_rungs(
    records: Sequence[CaseRecord], names: Sequence[str], thresholds: Sequence[float]
) -> list[RungSummary]:
    """Per-rung figures for a report.

    Example:
        >>> rows = [CaseRecord(str(i), 100, True, (RungOutcome(v, v > 0.25, 10),)) for i, v in
        ...         enumerate([0.1, 0.2, 0.3])]
        >>> rows.append(CaseRecord("3", 100, True, (RungOutcome(None, False, error="boom"),)))
        >>> [summary] = summarise_rungs(rows, ["r0"], [0.25])
        >>> summary.valid, summary.failed, summary.accepted, summary.accepted_accuracy
        (3, 1, 1, 1.0)
    """
    routes = route_cases(records, thresholds)
    summaries = []
    for index, (name, threshold) in enumerate(zip(names, thresholds, strict=True)):
        outcomes = [record.rungs[index] for record in records]
        valid = [o for o in outcomes if o.bits_per_token is not None]
        values = np.asarray([o.bits_per_token for o in valid], dtype=np.float64)
        taken = [o for o, route in zip(outcomes, routes, strict=True) if route == index]
        summaries.append(
            RungSummary(
                name=name,
                threshold=float(threshold),
                valid=len(valid),
                failed=len(outcomes) - len(valid),
                accuracy=sum(o.correct for o in valid) / len(valid) if valid else math.nan,
                accepted=len(taken),
                accepted_accuracy=sum(o.correct for o in taken) / len(taken) if taken else math.nan,
                bits_per_token=(
                    (float(values.min()), float(np.median(values)), float(values.max()))
                    if values.size
                    else (math.nan, math.nan, math.nan)
                ),
            )
        )
    return summaries


def sweep(records: Sequence[CaseRecord], quantiles: Sequence[float]) -> list[CurvePoint]:
    """The operating point at each common quantile.

    Example:
        >>> rows = [CaseRecord(str(i), 100, True, (RungOutcome(v, v > 0.25, 10),)) for i, v in
        ...         enumerate([0.1, 0.2, 0.3, 0.4])]
        >>> [(p.fallback_rate, p.distortion) for p in sweep(rows, [0.0, 0.5, 1.0])]
        [(0.0, 0.5), (0.5, 0.0), (1.0, 0.0)]
    """
    return [simulate(records, quantile_thresholds(records, q), quantile=q) for q in quantiles]


def select_point(
    curve: Sequence[CurvePoint], target_kind: TargetKind, target_value: float
) -> Selection:
    """Choose the operating point for a target.

    - ``fallback``: the point whose fallback rate is closest to the target; ties go to the
      lower distortion, then to fewer forwarded tokens.
    - ``distortion``: among points with distortion at most the target, the lowest fallback
      rate (ties: lower distortion, fewer tokens). When none meets it, the point of least
      distortion, with ``target_met`` False and a note saying so.

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
            feasible, key=lambda p: (p.fallback_rate, p.distortion, p.forwarded_token_fraction)
        )
        note = (
            f"lowest fallback rate ({point.fallback_rate:.3f}) with distortion "
            f"{point.distortion:.3f} <= {target_value:.3f}"
        )
        return Selection(point=point, target_met=True, note=note)
    point = min(curve, key=lambda p: (p.distortion, p.fallback_rate, p.forwarded_token_fraction))
    note = (
        f"no operating point reaches distortion <= {target_value:.3f}; chose the least "
        f"distortion measured, {point.distortion:.3f} (the fallback's own distortion bounds it)"
    )
    return Selection(point=point, target_met=False, note=note)


def build_policy(
    records: Sequence[CaseRecord],
    *,
    rung_names: Sequence[str],
    estimator: str,
    scorer: str,
    judge: str,
    target_kind: TargetKind,
    target_value: float,
    grid_points: int = 21,
    reproduce: str = "",
) -> tuple[Policy, Selection]:
    """Sweep the quantile grid, select the point for the target, and write it as a policy.

    Example:
        >>> rows = [CaseRecord(str(i), 100, True, (RungOutcome(v, v > 0.25, 10),)) for i, v in
        ...         enumerate([0.1, 0.2, 0.3, 0.4])]
        >>> policy, selection = build_policy(
        ...     rows, rung_names=["r0"], estimator="cxmi", scorer="m", judge="facts",
        ...     target_kind="distortion", target_value=0.0, grid_points=5)
        >>> policy.thresholds(), policy.fallback_rate, policy.distortion
        ({'r0': 0.25}, 0.5, 0.0)
    """
    if not records:
        msg = "calibration needs at least one measured case"
        raise ValueError(msg)
    if len(rung_names) != len(records[0].rungs):
        msg = f"{len(rung_names)} rung names for {len(records[0].rungs)} measured rungs"
        raise ValueError(msg)
    if target_kind not in ("distortion", "fallback"):
        msg = f"target_kind must be 'distortion' or 'fallback', got {target_kind!r}"
        raise ValueError(msg)
    curve = sweep(records, quantile_grid(grid_points))
    selection = select_point(curve, target_kind, target_value)
    policy = Policy(
        estimator=estimator,
        scorer=scorer,
        rungs=[
            PolicyRung(name=name, threshold_bits_per_token=threshold)
            for name, threshold in zip(rung_names, selection.point.thresholds, strict=True)
        ],
        target_kind=target_kind,
        target_value=target_value,
        fallback_rate=selection.point.fallback_rate,
        distortion=selection.point.distortion,
        judge=judge,
        n_cases=len(records),
        curve=curve,
        reproduce=reproduce,
    )
    return policy, selection

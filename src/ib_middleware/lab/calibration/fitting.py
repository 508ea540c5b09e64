"""A policy from a measured table: fit, cross-validate, evaluate; and the per-rung report.

``build_policy`` fits the shipped thresholds and gate on every case (``crossval.fit_point``),
then measures how such a fit routes cases it has not seen: k-fold cross-validation
(``crossval.cross_validate``), its held-out routes evaluated against random and length routing
at equal forwarded tokens with bootstrap intervals (``evaluation.evaluate_routes``). The
policy's headline figures (containment, distortion, forwarded fraction, the fallback, pruned and
accepted rates, the gain over random routing) are the cross-validated ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ib_middleware.lab.calibration.crossval import cross_validate, fit_point
from ib_middleware.lab.calibration.evaluation import evaluate_routes
from ib_middleware.lab.calibration.quantiles import Selection, TargetKind, quantile_grid
from ib_middleware.lab.calibration.simulation import CaseRecord, decide_case
from ib_middleware.policy import CurvePoint, Policy, PolicyRung

__all__ = ["RungSummary", "build_policy", "summarise_rungs"]


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
        pruned: Cases the relevance gate pruned at this rung.
    """

    name: str
    threshold: float
    valid: int
    failed: int
    accuracy: float
    accepted: int
    accepted_accuracy: float
    bits_per_token: tuple[float, float, float]
    pruned: int = 0


def summarise_rungs(
    records: Sequence[CaseRecord],
    names: Sequence[str],
    thresholds: Sequence[float],
    *,
    prune_below: float | None = None,
) -> list[RungSummary]:
    """Per-rung figures for a report, under ``thresholds`` and the gate ``prune_below``.

    Example:
        >>> from ib_middleware.lab.calibration.simulation import RungOutcome
        >>> rows = [CaseRecord(str(i), 100, True, (RungOutcome(v, v > 0.25, 10),)) for i, v in
        ...         enumerate([0.1, 0.2, 0.3])]
        >>> rows.append(CaseRecord("3", 100, True, (RungOutcome(None, False, error="boom"),)))
        >>> [summary] = summarise_rungs(rows, ["r0"], [0.25])
        >>> summary.valid, summary.failed, summary.accepted, summary.accepted_accuracy
        (3, 1, 1, 1.0)
    """
    stops = [decide_case(record, thresholds, prune_below) for record in records]
    summaries = []
    for index, (name, threshold) in enumerate(zip(names, thresholds, strict=True)):
        outcomes = [record.rungs[index] for record in records]
        valid = [o for o in outcomes if o.bits_per_token is not None]
        values = np.asarray([o.bits_per_token for o in valid], dtype=np.float64)
        taken = [o for o, stop in zip(outcomes, stops, strict=True) if stop == ("accept", index)]
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
                pruned=stops.count(("prune", index)),
            )
        )
    return summaries


def _in_sample(selection: Selection) -> dict[str, Any]:
    point: CurvePoint = selection.point
    return {
        "quantile": point.quantile,
        "thresholds": point.thresholds,
        "prune_below": point.prune_below,
        "fallback_rate": point.fallback_rate,
        "pruned_rate": point.pruned_rate,
        "distortion": point.distortion,
        "containment": point.containment,
        "forwarded_fraction": point.forwarded_token_fraction,
        "target_met": selection.target_met,
    }


def _listed(interval: tuple[float, float] | None) -> list[float] | None:
    return list(interval) if interval is not None else None


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
    folds: int = 5,
    bootstrap: int = 2000,
    seed: int = 0,
    prune_grid: Sequence[float | None] | None = None,
) -> tuple[Policy, Selection]:
    """Fit the thresholds and gate on every case, cross-validate and evaluate, as a policy.

    Args:
        records: The measured table.
        rung_names: The rungs' names, cheapest first.
        estimator: The online estimator the signal came from.
        scorer: Its scoring model.
        judge: How correctness was labelled.
        target_kind: ``distortion`` (fewest forwarded tokens within it) or ``fallback``.
        target_value: The target.
        grid_points: Common quantiles tried in [0, 1].
        reproduce: The command that reproduces the policy.
        folds: Cross-validation folds (below 2, or more than the groups: in-sample figures).
        bootstrap: Group resamples behind the 95% intervals (0: none).
        seed: Seeds the folds and the resampling.
        prune_grid: The gate's candidate thresholds (None among them: no gate); None takes
            them from each fit's data (``gate_grid``); ``[None]`` calibrates no gate.

    A relevance gate ships only when the cross-validated distortion with it is within a
    distortion target; otherwise the policy is fitted again without one, and
    ``evaluation["gate_rejected"]`` says what the gate measured.

    Returns:
        The policy (thresholds fitted on all cases; figures cross-validated; the routing
        evaluation under ``evaluation``) and the selection on all cases.

    Example:
        >>> from ib_middleware.lab.calibration.simulation import RungOutcome
        >>> rows = [CaseRecord(str(i), 100, True, (RungOutcome(v, v > 0.25, 10),)) for i, v in
        ...         enumerate([0.1, 0.2, 0.3, 0.4])]
        >>> policy, selection = build_policy(
        ...     rows, rung_names=["r0"], estimator="cxmi", scorer="m", judge="facts",
        ...     target_kind="distortion", target_value=0.0, grid_points=5, bootstrap=0)
        >>> policy.thresholds(), policy.fallback_rate, policy.distortion, policy.folds
        ({'r0': 0.25}, 0.5, 0.0, None)
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
    quantiles = quantile_grid(grid_points)
    curve, selection = fit_point(
        records,
        target_kind=target_kind,
        target_value=target_value,
        quantiles=quantiles,
        prune_grid=prune_grid,
    )
    held_out = cross_validate(
        records,
        target_kind=target_kind,
        target_value=target_value,
        quantiles=quantiles,
        prune_grid=prune_grid,
        folds=folds,
        seed=seed,
    )
    result = evaluate_routes(records, held_out.routes, bootstrap=bootstrap, seed=seed)
    if (
        target_kind == "distortion"
        and selection.point.prune_below is not None
        and held_out.folds is not None
        and result.distortion > target_value + 1e-12
    ):
        # The gate ships only when held-out cases show it keeps the target; else no gate.
        policy, ungated = build_policy(
            records,
            rung_names=rung_names,
            estimator=estimator,
            scorer=scorer,
            judge=judge,
            target_kind=target_kind,
            target_value=target_value,
            grid_points=grid_points,
            reproduce=reproduce,
            folds=folds,
            bootstrap=bootstrap,
            seed=seed,
            prune_grid=[None],
        )
        policy.evaluation["gate_rejected"] = {
            "prune_below": selection.point.prune_below,
            "cross_validated_distortion": result.distortion,
            "cross_validated_containment": result.policy.containment,
            "cross_validated_forwarded_fraction": result.policy.forwarded_fraction,
            "note": "the gate's cross-validated distortion exceeds the target: no gate shipped",
        }
        return policy, ungated
    evaluation = {
        "folds": held_out.folds,
        "note": held_out.note,
        "seed": seed,
        **result.as_dict(),
        "fold_fits": [_in_sample(fit) for fit in held_out.fits],
        "in_sample": _in_sample(selection),
    }
    policy = Policy(
        estimator=estimator,
        scorer=scorer,
        rungs=[
            PolicyRung(name=name, threshold_bits_per_token=threshold)
            for name, threshold in zip(rung_names, selection.point.thresholds, strict=True)
        ],
        target_kind=target_kind,
        target_value=target_value,
        fallback_rate=result.fallback_rate,
        distortion=result.distortion,
        judge=judge,
        n_cases=len(records),
        curve=curve,
        reproduce=reproduce,
        prune_below=selection.point.prune_below,
        pruned_rate=result.policy.pruned_rate,
        accepted_rate=result.accepted_rate,
        folds=held_out.folds,
        containment=result.policy.containment,
        containment_ci=_listed(result.policy.containment_ci),
        forwarded_fraction=result.policy.forwarded_fraction,
        forwarded_fraction_ci=_listed(result.policy.forwarded_fraction_ci),
        gain_over_random=result.gain_over_random,
        gain_over_random_ci=_listed(result.gain_over_random_ci),
        evaluation=evaluation,
    )
    return policy, selection

"""Calibration v3 from a measured table: nested cross-validation and a guarantee, as a policy.

``certified_policy`` does it all, with no model run:

1. the candidate family and every case's route under each (``grid``);
2. the shipped thresholds: the whole procedure (``nested.fit``: inner loop, target point,
   Learn-then-Test guarantee per workload) on every case;
3. held-out figures: the procedure in ``nested_cv`` (outer folds by question and document),
   per workload and pooled, against the baselines at equal tokens with group-bootstrap
   intervals (``evaluation.evaluate_routes``), for fold seed 0; then the same for
   ``seeds`` fold seeds, whose spread (median, 5th and 95th percentiles) stands beside the
   intervals, with the share of seeds whose held-out loss stays within alpha (the guarantee's
   check);
4. with several workloads, the same for a policy fitted on each workload alone, and how a
   policy fitted on one workload does on each other (transfer).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ib_middleware.lab.calibration.crossval import components
from ib_middleware.lab.calibration.evaluation import evaluate_routes
from ib_middleware.lab.calibration.grid import RouteTable, candidate_grid, route_table
from ib_middleware.lab.calibration.nested import Fit, NestedRun, Settings, fit, nested_cv
from ib_middleware.lab.calibration.simulation import CaseRecord
from ib_middleware.policy import FittedFor, Policy, PolicyRung, WorkloadGuarantee

__all__ = [
    "SPREAD_FIGURES",
    "certified_policy",
    "finite",
    "guarantees",
    "heldout_figures",
    "spread",
]

Index = npt.NDArray[np.intp]
SPREAD_FIGURES = (
    "containment",
    "forwarded_fraction",
    "distortion",
    "loss",
    "gain_over_random",
    "gain_over_random_forced",
    "gain_over_length",
)
"""The headline figures whose spread over fold seeds is reported."""


def heldout_figures(
    table: RouteTable,
    chosen: npt.NDArray[np.int64],
    index: Index,
    *,
    alpha: float,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """The routing evaluation of the cases ``index``, each routed by its chosen candidate.

    Adds the held-out ``loss`` (share of the cases whose accepted or pruned item lost needed
    evidence), whether it is within ``alpha`` and the passthrough rate.
    """
    records = [table.records[i] for i in index]
    routes = [table.column([i], int(chosen[i]))[0] for i in index]
    result = evaluate_routes(records, routes, bootstrap=bootstrap, seed=seed).as_dict()
    loss = float(table.loss[index, chosen[index]].mean()) if len(index) else 0.0
    return {
        **result,
        "containment": result["policy"]["containment"],
        "forwarded_fraction": result["policy"]["forwarded_fraction"],
        "loss": loss,
        "loss_within_alpha": loss <= alpha + 1e-12,
        "passthrough_rate": sum(r == "passthrough" for r in routes) / max(len(routes), 1),
    }


def spread(runs: Sequence[dict[str, Any]], alpha: float) -> dict[str, Any]:
    """Median and 5th-95th percentiles of each headline figure over fold seeds.

    Example:
        >>> runs = [{"containment": c, "loss": l} for c, l in [(0.9, 0.01), (1.0, 0.2)]]
        >>> s = spread(runs, 0.05)
        >>> s["containment"]["median"], s["guarantee_held_share"]
        (0.95, 0.5)
    """
    out: dict[str, Any] = {"seeds": len(runs)}
    for name in SPREAD_FIGURES:
        values = np.asarray(
            [run[name] for run in runs if run.get(name) is not None], dtype=np.float64
        )
        if values.size:
            low, median, high = np.percentile(values, [5, 50, 95])
            out[name] = {"median": float(median), "p5": float(low), "p95": float(high)}
    losses = [run["loss"] for run in runs if run.get("loss") is not None]
    if losses:
        out["guarantee_held_share"] = float(np.mean([loss <= alpha + 1e-12 for loss in losses]))
    return out


def _parts(table: RouteTable, index: Index) -> dict[str, Index]:
    names = table.workloads[index]
    return {name: index[names == name] for name in dict.fromkeys(names.tolist())}


def _nested(
    table: RouteTable,
    settings: Settings,
    index: Index,
    seeds: int,
    bootstrap: int,
) -> dict[str, dict[str, Any]]:
    """Held-out figures (seed 0, with intervals) and their spread over seeds, per workload."""
    parts = _parts(table, index)
    scopes = {**parts, "all": index} if len(parts) > 1 else parts
    first: dict[str, dict[str, Any]] = {}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in scopes}
    fits: list[dict[str, Any]] = []
    in_sample = not _can_nest(table, settings, index)
    for seed in range(1 if in_sample else max(seeds, 1)):
        run = (
            _in_sample(table, settings, index)
            if in_sample
            else nested_cv(table, settings, seed=seed, cases=index)
        )
        for name, part in scopes.items():
            figures = heldout_figures(
                table,
                run.chosen,
                part,
                alpha=settings.alpha,
                bootstrap=bootstrap if seed == 0 else 0,
                seed=seed,
            )
            runs[name].append(figures)
            if seed == 0:
                first[name] = figures
        if seed == 0:
            fits = [_fit_summary(table, f) for f in run.fits]
    out = {}
    for name in scopes:
        out[name] = {
            **first[name],
            "spread": spread(runs[name], settings.alpha),
            "outer_fits": fits,
        }
    return out


def finite(threshold: float) -> float:
    """A threshold as JSON can hold it: +inf (accept nothing) as the largest float.

    Example:
        >>> finite(0.5), finite(float("inf")) > 1e300
        (0.5, True)
    """
    return threshold if math.isfinite(threshold) else sys.float_info.max


def _can_nest(table: RouteTable, settings: Settings, index: Index) -> bool:
    """Whether the cases form enough components for the outer folds."""
    count = len(set(components([table.records[i] for i in index])))
    return settings.outer_folds >= 2 and count >= settings.outer_folds


def _in_sample(table: RouteTable, settings: Settings, index: Index) -> NestedRun:
    """Every case routed by the procedure fitted on all of them (too few for folds)."""
    fitted = fit(table, index, settings)
    chosen = np.full(len(table.records), fitted.candidate, dtype=np.int64)
    return NestedRun(chosen, np.zeros(len(table.records), dtype=np.int64), (fitted,), 0)


def _fit_summary(table: RouteTable, fitted: Fit) -> dict[str, Any]:
    chosen, target = table.candidates[fitted.candidate], table.candidates[fitted.target_point]
    return {
        "threshold": finite(chosen.threshold),
        "prune_below": chosen.prune_below,
        "target_point": {"threshold": finite(target.threshold), "prune_below": target.prune_below},
        "guarantee_won": fitted.candidate != fitted.target_point,
        "fit_target": fitted.fit_target,
        "gate_allowed": fitted.gate,
        "target_met": fitted.target_met,
        "note": fitted.note,
    }


def guarantees(
    table: RouteTable, fitted: Fit, rung_names: Sequence[str]
) -> dict[str, WorkloadGuarantee]:
    """Per workload, the guarantee of the fitted candidate, in the policy's terms."""
    candidate = table.candidates[fitted.candidate]
    thresholds = dict.fromkeys(rung_names, finite(candidate.threshold))
    out = {}
    for name, test in fitted.certified.items():
        certified = bool(test.valid[fitted.candidate])
        statement = (
            f"{name}: accepted or pruned items lose needed evidence in at most {test.alpha:g} "
            f"of cases, with probability at least {1 - test.delta:g} (Learn then Test, "
            f"binomial tail, fixed sequence; {test.n} calibration cases)"
        )
        if not certified:
            statement = f"{name}: no candidate certified; every item is forwarded whole"
        out[name] = WorkloadGuarantee(
            alpha=test.alpha,
            delta=test.delta,
            n=test.n,
            thresholds=thresholds,
            prune_below=candidate.prune_below,
            observed_loss=float(test.losses[fitted.candidate]) / max(test.n, 1),
            bound=test.bound(fitted.candidate),
            p_value=float(test.p_values[fitted.candidate]),
            level=test.level,
            certified=certified,
            statement=statement,
        )
    return out


def _own_policies(
    table: RouteTable, settings: Settings, seeds: int, bootstrap: int, rung_names: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per workload: a policy fitted on it alone, held out, and how it does on the others."""
    everything = np.arange(len(table.records))
    parts = _parts(table, everything)
    out: dict[str, dict[str, Any]] = {}
    for name, part in parts.items():
        fitted = fit(table, part, settings)
        chosen = np.full(len(table.records), fitted.candidate, dtype=np.int64)
        transfer = {
            other: heldout_figures(table, chosen, rows, alpha=settings.alpha, bootstrap=bootstrap)
            for other, rows in parts.items()
            if other != name
        }
        out[name] = {
            **_fit_summary(table, fitted),
            "guarantee": guarantees(table, fitted, rung_names)[name].model_dump(),
            "heldout": _nested(table, settings, part, seeds, bootstrap)[name],
            "transfer": transfer,
        }
    return out


def certified_policy(
    records: Sequence[CaseRecord],
    *,
    rung_names: Sequence[str],
    fitted_for: FittedFor,
    judge: str,
    settings: Settings,
    seeds: int = 20,
    bootstrap: int = 2000,
    reproduce: str = "",
    records_file: str | None = None,
) -> Policy:
    """Calibrate a version-3 policy (see the module docstring).

    Example:
        >>> from ib_middleware.lab.calibration.simulation import RungOutcome
        >>> rows = [CaseRecord(f"c{i}", 100, True, (RungOutcome(0.9 if i % 4 else 0.2,
        ...     i % 4 != 0, 20),), group=f"g{i // 3}") for i in range(300)]
        >>> fitted = FittedFor(estimator="relevant_pmi", scorer="m", ladder=[])
        >>> policy = certified_policy(rows, rung_names=["r0"], fitted_for=fitted,
        ...     judge="facts", settings=Settings(), seeds=2, bootstrap=0)
        >>> policy.thresholds(), policy.guarantee["all"].certified, policy.containment
        ({'r0': 0.9}, True, 1.0)
    """
    if not records:
        msg = "calibration needs at least one measured case"
        raise ValueError(msg)
    if len(rung_names) != len(records[0].rungs):
        msg = f"{len(rung_names)} rung names for {len(records[0].rungs)} measured rungs"
        raise ValueError(msg)
    grid, how = candidate_grid(records, gate=settings.gate)
    table = route_table(records, grid)
    everything = np.arange(len(records))
    shipped = fit(table, everything, settings)
    candidate = table.candidates[shipped.candidate]
    heldout = _nested(table, settings, everything, seeds, bootstrap)
    pooled = heldout.get("all") or next(iter(heldout.values()))
    workloads: dict[str, Any] = {name: {"shared": figures} for name, figures in heldout.items()}
    if len(_parts(table, everything)) > 1:
        for name, own in _own_policies(table, settings, seeds, bootstrap, rung_names).items():
            workloads[name]["own"] = own
    count = len(set(components(records)))
    nested = _can_nest(table, settings, everything)
    note = (
        f"nested cross-validation: {settings.outer_folds} outer folds by question and "
        f"document ({count} components), {settings.inner_folds} inner folds choose the "
        f"fitting target and the gate; {max(seeds, 1)} fold seeds"
        if nested
        else f"in-sample: too few question-document components ({count}) for "
        f"{settings.outer_folds} folds"
    )
    evaluation = {
        **{key: pooled[key] for key in pooled if key not in ("spread", "outer_fits")},
        "folds": settings.outer_folds if nested else None,
        "note": note,
        "spread": pooled["spread"],
        "outer_fits": pooled["outer_fits"],
        "shipped": _fit_summary(table, shipped),
        "grid": how,
        "settings": {
            "target": settings.target,
            "alpha": settings.alpha,
            "delta": settings.delta,
            "fit_targets": list(settings.targets()),
            "outer_folds": settings.outer_folds,
            "inner_folds": settings.inner_folds,
            "gate": settings.gate,
        },
    }
    policy_figures = pooled["policy"]
    return Policy(
        version=3,
        estimator=fitted_for.estimator,
        scorer=fitted_for.scorer,
        rungs=[
            PolicyRung(name=name, threshold_bits_per_token=finite(candidate.threshold))
            for name in rung_names
        ],
        target_kind="distortion",
        target_value=settings.target,
        fallback_rate=pooled["fallback_rate"],
        distortion=pooled["distortion"],
        judge=judge,
        n_cases=len(records),
        reproduce=reproduce,
        prune_below=candidate.prune_below,
        pruned_rate=policy_figures["pruned_rate"],
        accepted_rate=pooled["accepted_rate"],
        folds=settings.outer_folds if nested else None,
        containment=policy_figures["containment"],
        containment_ci=policy_figures["containment_ci"],
        forwarded_fraction=policy_figures["forwarded_fraction"],
        forwarded_fraction_ci=policy_figures["forwarded_fraction_ci"],
        gain_over_random=pooled["gain_over_random"],
        gain_over_random_ci=pooled["gain_over_random_ci"],
        evaluation=evaluation,
        fitted_for=fitted_for,
        guarantee=guarantees(table, shipped, rung_names),
        workloads=workloads,
        records=records_file,
    )

"""Nested cross-validation: every choice made inside the loop, the figures from outside it.

The whole procedure (``fit``) is what is cross-validated, so nothing is chosen after seeing
held-out results:

1. **Inner loop** (on the training cases only): for each configuration, an in-sample
   distortion target d (``Settings.fit_targets``) and whether a gate may be used, the
   training cases are split into ``inner_folds`` folds by component; each inner fold is routed
   by steps 2-3 fitted on the others. The configuration whose inner held-out routes forward
   the fewest tokens (mean forwarded fraction over the workloads) with distortion at most the
   stated target on every workload is chosen (none: the least distortion).
2. **Target point**: with the chosen configuration, the candidate with the fewest forwarded
   tokens whose in-sample distortion is at most d on every workload.
3. **Guarantee** (``guarantee.learn_then_test``, per workload): only candidates certified on
   every workload may ship. When the target point is not certified, the certified candidate
   with the fewest tokens ships instead: the guarantee wins.

``nested_cv`` runs it with ``outer_folds`` folds by component (``crossval.components``: no
question and no source document on both sides): each outer fold is routed by the procedure
fitted on the other folds; the procedure never sees the outer fold's cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from ib_middleware.lab.calibration.crossval import assign_folds
from ib_middleware.lab.calibration.grid import RouteTable
from ib_middleware.lab.calibration.guarantee import Certified, learn_then_test

__all__ = ["Fit", "NestedRun", "Settings", "fit", "fit_with", "nested_cv", "paths", "select"]

Index = npt.NDArray[np.intp]


@dataclass(frozen=True)
class Settings:
    """What the procedure aims for.

    Attributes:
        target: The distortion each workload may have on held-out cases.
        alpha: The guarantee's risk level alpha.
        delta: The guarantee's error probability delta.
        fit_targets: In-sample distortion targets the inner loop tries (None: the target
            times 0.25, 0.5, 0.75 and 1).
        outer_folds: Folds of the outer loop.
        inner_folds: Folds of the inner loop.
        gate: Whether candidates with a relevance gate may be chosen at all.
    """

    target: float = 0.05
    alpha: float = 0.05
    delta: float = 0.1
    fit_targets: tuple[float, ...] | None = None
    outer_folds: int = 5
    inner_folds: int = 4
    gate: bool = True

    def targets(self) -> tuple[float, ...]:
        """The in-sample targets the inner loop tries."""
        if self.fit_targets is not None:
            return self.fit_targets
        return tuple(round(self.target * share, 6) for share in (0.25, 0.5, 0.75, 1.0))


@dataclass(frozen=True)
class Fit:
    """What the procedure chose on a set of cases.

    Attributes:
        candidate: The candidate that ships (certified on every workload when possible).
        target_point: The candidate the in-sample target alone would pick.
        fit_target: The in-sample distortion target the inner loop chose.
        gate: Whether the inner loop allowed a gate.
        certified: Per workload, the guarantee's test on these cases.
        note: Why this candidate ships.
        inner: Per configuration (d, gate): inner held-out (max distortion, mean forwarded).
        target_met: Whether the target point's in-sample distortion is within the fitting
            target on every workload (else it is the least distortion found).
    """

    candidate: int
    target_point: int
    fit_target: float
    gate: bool
    certified: dict[str, Certified]
    note: str
    target_met: bool = True
    inner: dict[str, tuple[float, float]] = field(default_factory=dict)


def paths(table: RouteTable) -> list[list[int]]:
    """The guarantee's testing paths: per gate, its candidates in order (accept-nothing first).

    Example:
        >>> import math
        >>> from ib_middleware.lab.calibration.grid import Candidate, route_table
        >>> grid = [Candidate(math.inf, None), Candidate(0.5, None), Candidate(math.inf, 0.1)]
        >>> paths(route_table([], grid))
        [[0, 1], [2]]
    """
    by_gate: dict[float | None, list[int]] = {}
    for index, candidate in enumerate(table.candidates):
        by_gate.setdefault(candidate.prune_below, []).append(index)
    return list(by_gate.values())


def _per_workload(table: RouteTable, index: Index) -> list[Index]:
    names = table.workloads[index]
    return [index[names == name] for name in dict.fromkeys(names.tolist())]


def _scores(table: RouteTable, index: Index) -> tuple[npt.NDArray[np.float64], ...]:
    """Per candidate: the worst workload's distortion and the mean forwarded fraction."""
    parts = _per_workload(table, index)
    distortion = np.max([1.0 - table.correct[part].mean(axis=0) for part in parts], axis=0)
    forwarded = np.mean(
        [table.tokens[part].sum(axis=0) / max(table.inputs[part].sum(), 1.0) for part in parts],
        axis=0,
    )
    return distortion, forwarded


def select(table: RouteTable, index: Index, target: float, allowed: npt.NDArray[np.bool_]) -> int:
    """The allowed candidate with the fewest tokens within ``target`` on every workload.

    None within it: the least distortion. Ties: lower distortion, then the earlier candidate.
    """
    distortion, forwarded = _scores(table, index)
    feasible = allowed & (distortion <= target + 1e-12)
    pool = np.flatnonzero(feasible if feasible.any() else allowed)
    if feasible.any():
        keys = (pool, distortion[pool], forwarded[pool])
    else:
        keys = (pool, forwarded[pool], distortion[pool])
    return int(pool[np.lexsort(keys)[0]])


def _allowed(table: RouteTable, gate: bool) -> npt.NDArray[np.bool_]:
    return np.asarray([gate or c.prune_below is None for c in table.candidates], dtype=np.bool_)


def fit_with(
    table: RouteTable, index: Index, settings: Settings, fit_target: float, gate: bool
) -> Fit:
    """Steps 2 and 3 for one configuration: the target point, then the guarantee."""
    allowed = _allowed(table, gate and settings.gate)
    target_point = select(table, index, fit_target, allowed)
    met = bool(_scores(table, index)[0][target_point] <= fit_target + 1e-12)
    certified = {
        str(table.workloads[part[0]]): learn_then_test(
            table.loss[part], paths(table), alpha=settings.alpha, delta=settings.delta
        )
        for part in _per_workload(table, index)
    }
    valid = np.logical_and.reduce([c.valid for c in certified.values()]) & allowed
    if valid[target_point]:
        chosen, note = target_point, "the target point is certified by the guarantee"
    elif valid.any():
        chosen = select(table, index, fit_target, valid)
        target = table.candidates[target_point]
        note = (
            f"the target point (threshold {target.threshold:g}, gate {target.prune_below}) is "
            "not certified by the guarantee, which wins: the certified candidate with the "
            "fewest tokens ships"
        )
    else:
        chosen, note = 0, "no candidate certified (too few cases): every item forwarded whole"
    return Fit(chosen, target_point, fit_target, gate, certified, note, met)


def fit(table: RouteTable, index: Index, settings: Settings, *, seed: int = 0) -> Fit:
    """The whole procedure on the cases ``index``: inner loop, target point, guarantee.

    With fewer components than inner folds the configuration is the stated target with a
    gate allowed (no inner loop).
    """
    index = np.asarray(index, dtype=np.intp)
    configs = [(d, gate) for d in settings.targets() for gate in (False, True)]
    records = [table.records[i] for i in index]
    folds = assign_folds(records, settings.inner_folds, seed=seed) if records else []
    if len(set(folds)) < max(settings.inner_folds, 2):
        return fit_with(table, index, settings, settings.target, settings.gate)
    fold_of = np.asarray(folds)
    inner: dict[str, tuple[float, float]] = {}
    best: tuple[tuple[float, float, float], tuple[float, bool]] | None = None
    for d, gate in configs:
        held = np.empty(len(index), dtype=np.int64)
        for fold in range(settings.inner_folds):
            test = fold_of == fold
            held[test] = fit_with(table, index[~test], settings, d, gate).candidate
        distortion, forwarded = _held_out(table, index, held)
        inner[f"d={d:g},gate={gate}"] = (distortion, forwarded)
        meets = distortion <= settings.target + 1e-12
        key = (0.0, forwarded, distortion) if meets else (1.0, distortion, forwarded)
        if best is None or key < best[0]:
            best = (key, (d, gate))
    assert best is not None  # configs is never empty
    d, gate = best[1]
    return replace(fit_with(table, index, settings, d, gate), inner=inner)


def _held_out(
    table: RouteTable, index: Index, chosen: npt.NDArray[np.int64]
) -> tuple[float, float]:
    """Worst workload distortion and mean forwarded fraction of per-case chosen candidates."""
    correct = table.correct[index, chosen]
    tokens = table.tokens[index, chosen]
    names = table.workloads[index]
    distortions, forwarded = [], []
    for name in dict.fromkeys(names.tolist()):
        part = names == name
        distortions.append(1.0 - float(correct[part].mean()))
        forwarded.append(
            float(tokens[part].sum()) / max(float(table.inputs[index][part].sum()), 1.0)
        )
    return max(distortions), float(np.mean(forwarded))


@dataclass(frozen=True)
class NestedRun:
    """The outer loop's result for one fold seed.

    Attributes:
        chosen: Per case, the candidate the procedure fitted without its fold chose.
        fold_of: Per case, its outer fold.
        fits: Per outer fold, the procedure's fit on the other folds.
        seed: The fold seed.
    """

    chosen: npt.NDArray[np.int64]
    fold_of: npt.NDArray[np.int64]
    fits: tuple[Fit, ...]
    seed: int


def nested_cv(
    table: RouteTable,
    settings: Settings,
    *,
    seed: int = 0,
    cases: Sequence[int] | Index | None = None,
) -> NestedRun:
    """Route each outer fold by the procedure (``fit``) fitted on the other folds.

    Args:
        table: Routes of every case under every candidate.
        settings: What the procedure aims for.
        seed: Seeds the outer folds (the inner folds use ``seed + 1 + fold``).
        cases: Restrict to these cases (all by default); ``chosen`` is then -1 elsewhere.

    Raises:
        ValueError: With fewer components than outer folds.
    """
    index = np.arange(len(table.records)) if cases is None else np.asarray(cases, dtype=np.intp)
    folds = assign_folds([table.records[i] for i in index], settings.outer_folds, seed=seed)
    fold_of = np.asarray(folds, dtype=np.int64)
    if len(set(folds)) < settings.outer_folds:
        msg = f"too few question-document components for {settings.outer_folds} outer folds"
        raise ValueError(msg)
    chosen = np.full(len(table.records), -1, dtype=np.int64)
    fits = []
    for fold in range(settings.outer_folds):
        train, test = index[fold_of != fold], index[fold_of == fold]
        fitted = fit(table, train, settings, seed=seed + 1 + fold)
        fits.append(fitted)
        chosen[test] = fitted.candidate
    full_fold = np.full(len(table.records), -1, dtype=np.int64)
    full_fold[index] = fold_of
    return NestedRun(chosen, full_fold, tuple(fits), seed)

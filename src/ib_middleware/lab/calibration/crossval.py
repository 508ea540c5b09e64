"""Cross-validated routing: each fold routed by thresholds fitted on the other folds.

Fitting is the sweep and the selection (``simulation``): a curve over the relevance gate's grid
and the common quantiles, then the point for the target. In k-fold cross-validation the groups
of cases (``CaseRecord.group``, else the case itself) are dealt to k folds at random (seeded);
each fold is routed with the thresholds and gate fitted on the others, so no case helps choose
the thresholds it is judged by. The held-out routes, concatenated, are what the routing
evaluation and the policy's headline figures are computed from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ib_middleware.lab.calibration.quantiles import (
    Selection,
    TargetKind,
    gate_grid,
    select_point,
    sweep,
)
from ib_middleware.lab.calibration.simulation import CaseRecord, Route, route_cases
from ib_middleware.policy import CurvePoint

__all__ = [
    "CrossValidation",
    "assign_folds",
    "components",
    "cross_validate",
    "fit_point",
    "group_of",
]


def group_of(record: CaseRecord) -> str:
    """The group a case is folded and resampled with: its ``group``, else its own id.

    Example:
        >>> grouped, alone = CaseRecord("a", 1, True, (), group="q1"), CaseRecord("b", 1, True, ())
        >>> group_of(grouped), group_of(alone)
        ('q1', 'b')
    """
    return record.group or record.case_id


def components(records: Sequence[CaseRecord]) -> list[int]:
    """Each case's connected component of the question-document graph.

    A ``group`` may name several keys joined by ``|`` (``question:Q|document:D``); two cases
    sharing any key are connected, and so is everything connected to them. Folds and bootstrap
    resamples keep a component whole, so no question and no source document sits on both sides.
    Components are numbered in order of first appearance.

    Example:
        >>> rows = [CaseRecord(str(i), 1, True, (), group=g) for i, g in enumerate(
        ...     ["question:1|document:A", "question:2|document:A", "question:3|document:B"])]
        >>> components(rows)
        [0, 0, 1]
    """
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    keyed = [[k for k in group_of(r).split("|") if k] or [r.case_id] for r in records]
    for keys in keyed:
        for key in keys[1:]:
            parent[root(key)] = root(keys[0])
    numbers: dict[str, int] = {}
    return [numbers.setdefault(root(keys[0]), len(numbers)) for keys in keyed]


def assign_folds(records: Sequence[CaseRecord], folds: int, *, seed: int = 0) -> list[int]:
    """Each case's fold: whole components (``components``), shuffled, to the emptiest fold.

    The components are shuffled with ``seed`` and each goes to the fold holding the fewest
    cases so far, so folds are about equal in cases; every fold gets a component when there
    are at least ``folds`` of them.

    Example:
        >>> rows = [CaseRecord(str(i), 1, True, (), group=g) for i, g in enumerate("aabbc")]
        >>> fold = assign_folds(rows, 2)
        >>> fold[0] == fold[1] and fold[2] == fold[3], sorted(set(fold))
        (True, [0, 1])
    """
    if folds < 1:
        msg = f"folds must be at least 1, got {folds}"
        raise ValueError(msg)
    component = components(records)
    sizes = np.bincount(np.asarray(component, dtype=np.intp)) if component else np.zeros(0)
    order = np.random.default_rng(seed).permutation(len(sizes))
    load = [0] * folds
    fold_of_component = {}
    for position, index in enumerate(order):
        fold = position if position < folds else min(range(folds), key=load.__getitem__)
        fold_of_component[int(index)] = fold
        load[fold] += int(sizes[index])
    return [fold_of_component[c] for c in component]


def fit_point(
    records: Sequence[CaseRecord],
    *,
    target_kind: TargetKind,
    target_value: float,
    quantiles: Sequence[float],
    prune_grid: Sequence[float | None] | None = None,
) -> tuple[list[CurvePoint], Selection]:
    """Fit thresholds and gate on ``records``: sweep the (gate, quantile) grid, then select.

    ``prune_grid`` None takes the gate's grid from these records (``gate_grid``).

    Example:
        >>> from ib_middleware.lab.calibration.simulation import RungOutcome
        >>> rows = [CaseRecord(str(i), 100, True, (RungOutcome(v, v > 0.25, 10),)) for i, v in
        ...         enumerate([0.1, 0.2, 0.3, 0.4])]
        >>> curve, chosen = fit_point(rows, target_kind="distortion", target_value=0.0,
        ...                           quantiles=[0.0, 0.5, 1.0])
        >>> len(curve), chosen.point.quantile, chosen.point.thresholds
        (3, 0.5, [0.25])
    """
    grid = gate_grid(records) if prune_grid is None else list(prune_grid)
    curve = sweep(records, quantiles, grid)
    return curve, select_point(curve, target_kind, target_value)


@dataclass(frozen=True)
class CrossValidation:
    """The held-out route of every case, and how it was obtained.

    Attributes:
        routes: Each case's route (table order) under the thresholds fitted without its fold.
        folds: Folds used; None when too few groups (or folds < 2) made it in-sample.
        fold_of: Each case's fold (all 0 in-sample).
        fits: Per fold, the point fitted on the other folds (in-sample: the one fit).
        note: How the routes were obtained, for reports.
    """

    routes: tuple[Route, ...]
    folds: int | None
    fold_of: tuple[int, ...]
    fits: tuple[Selection, ...]
    note: str


def cross_validate(
    records: Sequence[CaseRecord],
    *,
    target_kind: TargetKind,
    target_value: float,
    quantiles: Sequence[float],
    prune_grid: Sequence[float | None] | None = None,
    folds: int = 5,
    seed: int = 0,
) -> CrossValidation:
    """Route each fold with thresholds and gate fitted (``fit_point``) on the other folds.

    With ``folds`` below 2, or fewer groups than folds, every case is routed by the fit on all
    cases (in-sample), ``folds`` is None and the note says why.

    Example:
        >>> from ib_middleware.lab.calibration.simulation import RungOutcome
        >>> rows = [CaseRecord(str(i), 100, True, (RungOutcome(v, v > 0.25, 10),)) for i, v in
        ...         enumerate([0.1, 0.2, 0.3, 0.4])]
        >>> cv = cross_validate(rows, target_kind="fallback", target_value=0.5,
        ...                     quantiles=[0.0, 0.5, 1.0], folds=2)
        >>> cv.folds, len(cv.routes), len(cv.fits)
        (2, 4, 2)
        >>> cross_validate(rows, target_kind="fallback", target_value=0.5,
        ...                quantiles=[0.5], folds=5).note
        'in-sample: too few groups (4) for 5 folds'
    """
    if not records:
        msg = "cross-validation needs at least one case"
        raise ValueError(msg)

    def fitted(rows: Sequence[CaseRecord]) -> Selection:
        _, chosen = fit_point(
            rows,
            target_kind=target_kind,
            target_value=target_value,
            quantiles=quantiles,
            prune_grid=prune_grid,
        )
        return chosen

    n_groups = len(set(components(records)))
    reason = (
        f"cross-validation needs at least 2 folds, got {folds}"
        if folds < 2
        else f"too few groups ({n_groups}) for {folds} folds"
        if n_groups < folds
        else None
    )
    if reason is not None:
        chosen = fitted(records)
        routes = route_cases(records, chosen.point.thresholds, prune_below=chosen.point.prune_below)
        return CrossValidation(
            tuple(routes), None, (0,) * len(records), (chosen,), f"in-sample: {reason}"
        )
    fold_of = assign_folds(records, folds, seed=seed)
    held_out: list[Route] = [None] * len(records)
    fits = []
    for fold in range(folds):
        train = [r for r, f in zip(records, fold_of, strict=True) if f != fold]
        test = [index for index, f in enumerate(fold_of) if f == fold]
        chosen = fitted(train)
        fits.append(chosen)
        routes = route_cases(
            [records[index] for index in test],
            chosen.point.thresholds,
            prune_below=chosen.point.prune_below,
        )
        for index, route in zip(test, routes, strict=True):
            held_out[index] = route
    note = (
        f"{folds}-fold cross-validation over {n_groups} groups: each fold routed by the "
        "thresholds fitted on the others"
    )
    return CrossValidation(tuple(held_out), folds, tuple(fold_of), tuple(fits), note)

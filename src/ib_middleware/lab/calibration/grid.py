"""The candidate policies, and every case's route under each, computed once.

Calibration v3 chooses among a fixed family of candidates: a gate ``prune_below`` (or none)
and one threshold τ shared by every rung (accept the first rung whose compression's signal
reaches τ; every rung's signal is in the same unit, and a wider rung reaches it more easily).
The family is fixed numbers, chosen before any case is seen (the guarantee's test needs that):
a fine grid over [0, 1] for a signal that is a share (every observed value within [0, 1]), a
wider one (4 down to 0, then -inf) for any other (a retention ratio, bits per token). Per gate,
candidates run from the most conservative threshold (+inf: accept nothing) toward looser ones:
the order the guarantee's fixed-sequence test walks.

Because the family is fixed, each case's route under each candidate is computed once, by the
run-time rule (``simulation.route_case``, which calls ``routing.route_action``); fitting on any
subset of cases (a fold) is then a matter of summing columns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ib_middleware.lab.calibration.simulation import (
    PASSTHROUGH,
    PRUNED,
    CaseRecord,
    Route,
    route_case,
    route_label,
    route_tokens,
)

__all__ = [
    "FALLBACK",
    "FIXED_GATES",
    "FIXED_THRESHOLDS",
    "PASSED",
    "PRUNE",
    "WIDE_THRESHOLDS",
    "Candidate",
    "RouteTable",
    "candidate_grid",
    "route_of",
    "route_table",
]

FIXED_THRESHOLDS = tuple(round(0.025 * step, 3) for step in range(40, -1, -1))
"""Thresholds tried for a share signal, loosest last: 1.0, 0.975, ..., 0 (after +inf)."""
WIDE_THRESHOLDS = (*(round(0.05 * step, 2) for step in range(80, -1, -1)), -math.inf)
"""Thresholds tried for any other signal (a retention ratio, bits per token): 4.0, 3.95, ...,
0, then -inf (accept every valid compression)."""
FIXED_GATES: tuple[float | None, ...] = (None, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2)
"""Gates tried (share of the query a compression explains), none first."""

FALLBACK, PRUNE, PASSED = -1, -2, -3
"""Route codes besides a rung index: full context, pruned, passed through (within budget)."""

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Candidate:
    """One candidate policy: a threshold shared by every rung and a gate (None: no gate)."""

    threshold: float
    prune_below: float | None


def _is_share(values: Sequence[float]) -> bool:
    return all(-1e-9 <= value <= 1.0 + 1e-9 for value in values)


def candidate_grid(
    records: Sequence[CaseRecord],
    *,
    thresholds: Sequence[float] | None = None,
    gates: Sequence[float | None] | None = None,
    gate: bool = True,
) -> tuple[list[Candidate], str]:
    """The candidate family, gate by gate, thresholds from +inf (accept nothing) down.

    Args:
        records: The measured table (only whether its signals lie within [0, 1] is read).
        thresholds: Thresholds to try; by default ``FIXED_THRESHOLDS`` for a share signal,
            else ``WIDE_THRESHOLDS``.
        gates: Gates to try (None: no gate); ``FIXED_GATES`` by default; just None when no
            query fraction was measured.
        gate: False tries no gate at all.

    Returns:
        The candidates and which grid (``fixed share``, ``fixed wide`` or ``given``).

    Example:
        >>> from ib_middleware.lab.calibration.simulation import RungOutcome
        >>> rows = [CaseRecord("a", 100, True, (RungOutcome(0.5, True, 9, query_fraction=0.1),))]
        >>> grid, how = candidate_grid(rows, thresholds=[0.5, 0.0], gates=[None, 0.05])
        >>> [(c.threshold, c.prune_below) for c in grid][:3], how
        ([(inf, None), (0.5, None), (0.0, None)], 'given')
    """
    signals = [o.bits_per_token for r in records for o in r.rungs if o.bits_per_token is not None]
    measured = any(o.query_fraction is not None for r in records for o in r.rungs)
    how = "given"
    if thresholds is None:
        share = _is_share(signals)
        thresholds = FIXED_THRESHOLDS if share else WIDE_THRESHOLDS
        how = "fixed share" if share else "fixed wide"
    if not gate or not measured:
        gates = [None]
    elif gates is None:
        gates = FIXED_GATES
    ordered = [math.inf, *sorted({float(t) for t in thresholds}, reverse=True)]
    return [Candidate(t, g) for g in gates for t in ordered], how


def route_of(code: int) -> Route:
    """The route a code stands for (a rung index, ``pruned``, ``passthrough`` or None).

    Example:
        >>> route_of(1), route_of(FALLBACK), route_of(PRUNE), route_of(PASSED)
        (1, None, 'pruned', 'passthrough')
    """
    return {FALLBACK: None, PRUNE: PRUNED, PASSED: PASSTHROUGH}.get(code, code)


def _code(route: Route) -> int:
    if route is None:
        return FALLBACK
    if route == PRUNED:
        return PRUNE
    if route == PASSTHROUGH:
        return PASSED
    return int(route)


@dataclass(frozen=True)
class RouteTable:
    """Every case's route under every candidate, with what each route forwards and scores.

    Attributes:
        records: The measured table.
        candidates: The candidate family (columns).
        codes: Route per (case, candidate): a rung index, ``FALLBACK``, ``PRUNE`` or ``PASSED``.
        correct: The route's label: its forwarded text serves the query.
        tokens: Tokens the route forwards.
        loss: The route accepted a compression or pruned, and lost needed evidence that the
            whole item holds (what the guarantee bounds).
        needs: Per case, whether it needs evidence.
        inputs: Per case, its raw tokens.
        workloads: Per case, its workload.
    """

    records: tuple[CaseRecord, ...]
    candidates: tuple[Candidate, ...]
    codes: Ints
    correct: Bools
    tokens: Floats
    loss: Bools
    needs: Bools
    inputs: Floats
    workloads: npt.NDArray[np.str_]

    def column(self, index: Sequence[int] | Ints, candidate: int) -> list[Route]:
        """The routes of the cases ``index`` under one candidate."""
        return [route_of(int(code)) for code in self.codes[np.asarray(index), candidate]]

    def workload_names(self) -> list[str]:
        """The workloads, in order of first appearance."""
        return list(dict.fromkeys(str(w) for w in self.workloads))


def route_table(records: Sequence[CaseRecord], candidates: Sequence[Candidate]) -> RouteTable:
    """Route every case under every candidate with the run-time rule.

    Example:
        >>> from ib_middleware.lab.calibration.simulation import RungOutcome
        >>> rows = [CaseRecord("a", 100, True, (RungOutcome(0.6, False, 9),)),
        ...         CaseRecord("b", 100, True, (RungOutcome(0.4, True, 9),))]
        >>> table = route_table(rows, [Candidate(math.inf, None), Candidate(0.5, None)])
        >>> table.codes.tolist(), table.loss.tolist()
        ([[-1, 0], [-1, -1]], [[False, True], [False, False]])
    """
    n, width = len(records), len(candidates)
    codes = np.empty((n, width), dtype=np.int64)
    correct = np.empty((n, width), dtype=np.bool_)
    tokens = np.empty((n, width), dtype=np.float64)
    loss = np.zeros((n, width), dtype=np.bool_)
    for row, record in enumerate(records):
        seen: dict[Route, tuple[bool, int]] = {}
        for column, candidate in enumerate(candidates):
            thresholds = [candidate.threshold] * len(record.rungs)
            route = route_case(record, thresholds, candidate.prune_below)
            if route not in seen:
                seen[route] = (route_label(record, route), route_tokens(record, route))
            label, spent = seen[route]
            codes[row, column] = _code(route)
            correct[row, column] = label
            tokens[row, column] = spent
            decided = route == PRUNED or isinstance(route, int)
            loss[row, column] = decided and not label and record.fallback_correct
    return RouteTable(
        records=tuple(records),
        candidates=tuple(candidates),
        codes=codes,
        correct=correct,
        tokens=tokens,
        loss=loss,
        needs=np.asarray([r.needs_evidence for r in records], dtype=np.bool_),
        inputs=np.asarray([r.input_tokens for r in records], dtype=np.float64),
        workloads=np.asarray([r.workload or "all" for r in records], dtype=np.str_),
    )

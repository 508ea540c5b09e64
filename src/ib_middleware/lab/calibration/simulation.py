"""The ladder replayed on a measured table: pure functions, no model runs.

A case walks the rungs in order: a rung with no signal (failed, invalid or unsupported) passes it
on; otherwise the run-time rule, ``routing.route_action``, prunes it (relevance gate), accepts it
or escalates. No rung: the full context (fallback). Each route has a label (a pruned case is
correct when it needs no evidence; an accepted one by the judge; the fallback by whether the raw
context holds the answer) and forwards tokens (the note, the compression or the context). An
item within the stage's token budget passes through. The thresholds come from ``quantiles``
(version 2) or ``grid`` (version 3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from ib_middleware.judging.routing import Action, route_action
from ib_middleware.policy import CurvePoint

__all__ = [
    "PASSTHROUGH",
    "PRUNED",
    "CaseRecord",
    "Route",
    "RungOutcome",
    "decide_case",
    "route_case",
    "route_cases",
    "route_label",
    "route_tokens",
    "simulate",
]

PRUNED: Literal["pruned"] = "pruned"
PASSTHROUGH: Literal["passthrough"] = "passthrough"
Route: TypeAlias = int | Literal["pruned", "passthrough"] | None
"""Where a case ends: the rung that accepted it, ``"pruned"``, ``"passthrough"`` (within the
token budget, never compressed) or None (the fallback)."""


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

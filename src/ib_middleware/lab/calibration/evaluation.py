"""The routing evaluation: the policy's held-out routes against baselines at equal tokens.

Containment is the share of the cases that need evidence whose forwarded text holds it; the
forwarded fraction is forwarded tokens over raw tokens. A router is worth having when it contains
more than routers spending the same tokens without looking at the signal:

- **random**: compresses with a rung with probability p_c (its invalid compressions, and items
  within the token budget, go whole) and forwards the rest in full; p_c is solved in closed form
  so its expected forwarded tokens equal the policy's (clipped to what is feasible; the
  forwarded fraction reported is the one reached). Its containment is the expectation, with no
  sampling noise. Each rung is tried as the compression and the strongest is the baseline.
  **random forced** also prunes with the policy's pruned rate (a pruned case contains nothing).
- **length**: compresses the longest contexts first and forwards the rest in full: the
  fewest compressions that bring the forwarded tokens to at most the policy's (so the most
  contexts forwarded whole); all of them when even that does not. Strongest over the rungs.
- **always rung k** (invalid: full), each rung alone, and **never compress**.

Confidence intervals are percentile bootstraps that resample groups of cases with replacement
(connected components of ``CaseRecord.group``'s keys, ``crossval.components``); the
baselines are recomputed within each resample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from ib_middleware.lab.calibration.crossval import components
from ib_middleware.lab.calibration.simulation import (
    PRUNED,
    CaseRecord,
    Route,
    route_label,
    route_tokens,
)

__all__ = [
    "Columns",
    "RouterFigures",
    "RoutingEvaluation",
    "evaluate_routes",
    "length_routing",
    "random_routing",
]

Floats = npt.NDArray[np.float64]
Index = npt.NDArray[np.intp]


@dataclass(frozen=True)
class RouterFigures:
    """One router's figures on the evaluated routes.

    Attributes:
        containment: Share of the cases needing evidence whose forwarded text holds it
            (None when no case needs evidence).
        forwarded_fraction: Forwarded tokens over raw tokens (expected, for random routing).
        containment_ci: Bootstrap interval of the containment, when computed.
        forwarded_fraction_ci: Bootstrap interval of the forwarded fraction, when computed.
        compressed_rate: Share of cases compressed (random routing: the probability p_c).
        pruned_rate: Share of cases pruned (random routing: the probability).
    """

    containment: float | None
    forwarded_fraction: float
    containment_ci: tuple[float, float] | None = None
    forwarded_fraction_ci: tuple[float, float] | None = None
    compressed_rate: float = 0.0
    pruned_rate: float = 0.0


@dataclass(frozen=True)
class Columns:
    """Per-case arrays of what every router reads."""

    needs: npt.NDArray[np.bool_]
    inputs: Floats
    notes: Floats
    full_correct: Floats
    compress_correct: Floats
    compress_tokens: Floats

    @classmethod
    def of(cls, records: Sequence[CaseRecord], rung: int = 0) -> Columns:
        """Columns with rung ``rung`` as the compression (invalid or passthrough: full)."""
        first = [
            r.rungs[rung] if len(r.rungs) > rung and not r.passthrough else None for r in records
        ]
        valid = [o is not None and o.bits_per_token is not None for o in first]
        return cls(
            needs=np.asarray([r.needs_evidence for r in records], dtype=np.bool_),
            inputs=np.asarray([r.input_tokens for r in records], dtype=np.float64),
            notes=np.asarray([r.note_tokens for r in records], dtype=np.float64),
            full_correct=np.asarray([r.fallback_correct for r in records], dtype=np.float64),
            compress_correct=np.asarray(
                [
                    route_label(r, rung if ok else None)
                    for r, ok in zip(records, valid, strict=True)
                ],
                dtype=np.float64,
            ),
            compress_tokens=np.asarray(
                [
                    route_tokens(r, rung if ok else None)
                    for r, ok in zip(records, valid, strict=True)
                ],
                dtype=np.float64,
            ),
        )

    def take(self, index: Index) -> Columns:
        """The columns of the cases ``index`` (a resample)."""
        return Columns(*(getattr(self, column.name)[index] for column in fields(self)))

    def total(self) -> float:
        """Raw tokens of the cases (1 when there are none, to divide by)."""
        return float(self.inputs.sum()) or 1.0

    def containment(self, correct: Floats) -> float:
        """Mean of ``correct`` (a label or expected label per case) over cases needing evidence."""
        return float(correct[self.needs].mean()) if self.needs.any() else math.nan


def random_at(columns: Columns, pruned_rate: float, tokens: float) -> tuple[float, float, float]:
    """Random routing at ``tokens`` expected forwarded tokens: (p_c, containment, tokens)."""
    full, notes = columns.inputs.sum(), columns.notes.sum()
    saving = full - columns.compress_tokens.sum()
    p_c = (full - tokens - pruned_rate * (full - notes)) / saving if saving > 0 else 0.0
    p_c = float(min(max(p_c, 0.0), 1.0 - pruned_rate))
    p_full = 1.0 - pruned_rate - p_c
    # A pruned case is right only when it needs no evidence: it adds nothing to containment.
    expected = p_c * columns.compress_correct + p_full * columns.full_correct
    reached = full - pruned_rate * (full - notes) - p_c * saving
    return p_c, columns.containment(expected), float(reached)


def length_at(columns: Columns, tokens: float) -> tuple[float, float, float]:
    """Length routing at most ``tokens``: (share compressed, containment, tokens forwarded)."""
    order = np.argsort(-columns.inputs, kind="stable")
    savings = columns.inputs[order] - columns.compress_tokens[order]
    forwarded = columns.inputs.sum() - np.concatenate([[0.0], np.cumsum(savings)])
    within = np.flatnonzero(forwarded <= tokens + 1e-9 * max(columns.inputs.sum(), 1.0))
    count = int(within[0]) if within.size else len(order)
    compressed = np.zeros(len(order), dtype=np.bool_)
    compressed[order[:count]] = True
    correct = np.where(compressed, columns.compress_correct, columns.full_correct)
    share = count / len(order) if len(order) else 0.0
    return share, columns.containment(correct), float(forwarded[count])


def random_routing(
    records: Sequence[CaseRecord], *, pruned_rate: float, forwarded_tokens: float
) -> RouterFigures:
    """Random routing whose expected forwarded tokens equal ``forwarded_tokens`` (if feasible).

    Prune with probability ``pruned_rate``, compress with rung 0 with probability p_c (an
    invalid compression falls back), else forward the full context; p_c solves
    ``p N + p_c C + (1 - p - p_c) F = T`` for the note, compressed and full token totals N, C, F
    and the target T, clipped to [0, 1 - p].

    Example:
        >>> from ib_middleware.lab.calibration.simulation import RungOutcome
        >>> rows = [CaseRecord("a", 100, True, (RungOutcome(0.5, False, 20),)),
        ...         CaseRecord("b", 100, True, (RungOutcome(0.5, True, 20),))]
        >>> router = random_routing(rows, pruned_rate=0.0, forwarded_tokens=120)
        >>> router.compressed_rate, router.forwarded_fraction, router.containment
        (0.5, 0.6, 0.75)
    """
    columns = Columns.of(records)
    p_c, containment, reached = random_at(columns, pruned_rate, forwarded_tokens)
    return RouterFigures(
        containment=_finite(containment),
        forwarded_fraction=reached / columns.total(),
        compressed_rate=p_c,
        pruned_rate=pruned_rate,
    )


def length_routing(records: Sequence[CaseRecord], *, forwarded_tokens: float) -> RouterFigures:
    """Compress the longest contexts (rung 0) until at most ``forwarded_tokens`` are forwarded.

    Example:
        >>> from ib_middleware.lab.calibration.simulation import RungOutcome
        >>> rows = [CaseRecord("short", 100, True, (RungOutcome(0.5, False, 10),)),
        ...         CaseRecord("long", 300, True, (RungOutcome(0.5, False, 10),))]
        >>> router = length_routing(rows, forwarded_tokens=150)
        >>> router.compressed_rate, router.forwarded_fraction, router.containment
        (0.5, 0.275, 0.5)
    """
    columns = Columns.of(records)
    share, containment, reached = length_at(columns, forwarded_tokens)
    return RouterFigures(
        containment=_finite(containment),
        forwarded_fraction=reached / columns.total(),
        compressed_rate=share,
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _best(results: Sequence[tuple[float, float, float]]) -> tuple[float, float, float]:
    """The result of highest containment (the strongest baseline over the rungs)."""
    return max(results, key=lambda r: r[1] if math.isfinite(r[1]) else -math.inf)


def _figures(
    rungs: Sequence[Columns], correct: Floats, tokens: Floats, pruned: npt.NDArray[np.bool_]
) -> dict[str, float]:
    """Every router's containment and forwarded fraction on one (re)sample of cases.

    Random and length routing are tried with each rung as the compression; the strongest
    (highest containment) is the baseline.
    """
    columns = rungs[0]
    full = columns.total()
    spent = float(tokens.sum())
    pruned_rate = float(pruned.mean())
    p_c, random_contained, random_tokens = _best([random_at(c, 0.0, spent) for c in rungs])
    f_c, forced_contained, forced_tokens = _best([random_at(c, pruned_rate, spent) for c in rungs])
    share, length_contained, length_tokens = _best([length_at(c, spent) for c in rungs])
    policy = columns.containment(correct)
    figures = {
        "policy": policy,
        "policy_forwarded": spent / full,
        "random": random_contained,
        "random_forwarded": random_tokens / full,
        "random_compressed": p_c,
        "random_forced": forced_contained,
        "random_forced_forwarded": forced_tokens / full,
        "random_forced_compressed": f_c,
        "length": length_contained,
        "length_forwarded": length_tokens / full,
        "length_compressed": share,
        "always": columns.containment(columns.compress_correct),
        "always_forwarded": float(columns.compress_tokens.sum()) / full,
        "never": columns.containment(columns.full_correct),
        "gain_random": policy - random_contained,
        "gain_random_forced": policy - forced_contained,
        "gain_length": policy - length_contained,
    }
    for k, rung in enumerate(rungs):
        figures[f"rung{k}"] = rung.containment(rung.compress_correct)
        figures[f"rung{k}_forwarded"] = float(rung.compress_tokens.sum()) / full
    return figures


def _interval(samples: Sequence[float], confidence: float) -> tuple[float, float] | None:
    values = np.asarray([s for s in samples if math.isfinite(s)], dtype=np.float64)
    if values.size < 2:
        return None
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class RoutingEvaluation:
    """The policy's held-out routes against the baselines, with bootstrap intervals.

    Attributes:
        policy: The policy's figures (with intervals).
        random: Random routing at the policy's forwarded tokens, pruning nothing (the
            strongest over the rungs as its compression).
        length: Length routing at the policy's forwarded tokens (strongest over the rungs).
        always_compress: Rung 0 for every case (invalid: full).
        never_compress: The full context for every case.
        gain_over_random: Policy containment minus random routing's.
        gain_over_random_ci: Its bootstrap interval.
        gain_over_length: Policy containment minus length routing's.
        gain_over_length_ci: Its bootstrap interval.
        distortion: 1 - the policy's correct share of all cases.
        random_forced: Random routing forced to prune at the policy's pruned rate.
        gain_over_random_forced: Policy containment minus forced random routing's.
        gain_over_random_forced_ci: Its bootstrap interval.
        always_rung: Each rung alone, for every case (invalid or within budget: full).
        fallback_rate: Share of cases forwarded in full by the policy.
        accepted_rate: Share of cases whose compression the policy accepted.
        n_cases: Cases evaluated.
        n_groups: Groups they form (the bootstrap's resampling unit).
        n_needs_evidence: Cases that need evidence (containment's denominator).
        bootstrap: Resamples behind the intervals (0: none).
        confidence: The intervals' level.
    """

    policy: RouterFigures
    random: RouterFigures
    length: RouterFigures
    always_compress: RouterFigures
    never_compress: RouterFigures
    gain_over_random: float | None
    gain_over_random_ci: tuple[float, float] | None
    gain_over_length: float | None
    gain_over_length_ci: tuple[float, float] | None
    distortion: float
    fallback_rate: float
    accepted_rate: float
    n_cases: int
    n_groups: int
    n_needs_evidence: int
    bootstrap: int
    confidence: float
    random_forced: RouterFigures | None = None
    gain_over_random_forced: float | None = None
    gain_over_random_forced_ci: tuple[float, float] | None = None
    always_rung: tuple[RouterFigures, ...] = ()

    def routers(self) -> dict[str, RouterFigures]:
        """The five routers by name, the policy first."""
        return {
            "policy": self.policy,
            "random": self.random,
            **({"random_forced": self.random_forced} if self.random_forced else {}),
            "length": self.length,
            "always_compress": self.always_compress,
            "never_compress": self.never_compress,
        }

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (intervals as lists)."""
        listed: dict[str, Any] = _listed(asdict(self))
        return listed


def _listed(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _listed(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_listed(item) for item in value]
    return value


def evaluate_routes(
    records: Sequence[CaseRecord],
    routes: Sequence[Route],
    *,
    bootstrap: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> RoutingEvaluation:
    """Compare the policy's routes of ``records`` with the baselines, with bootstrap intervals.

    Args:
        records: The measured table.
        routes: The policy's route of each case (held-out routes, for an honest figure).
        bootstrap: Resamples of the groups of cases (0, or a single group: no intervals).
        seed: Seeds the resampling.
        confidence: The intervals' level.

    Example:
        >>> from ib_middleware.lab.calibration.simulation import RungOutcome
        >>> rows = [CaseRecord(str(i), 100, True, (RungOutcome(0.5, i % 2 == 0, 20),))
        ...         for i in range(6)]
        >>> result = evaluate_routes(rows, [0, None, 0, None, 0, None], bootstrap=200)
        >>> result.policy.containment, result.random.containment, result.gain_over_random
        (1.0, 0.75, 0.25)
    """
    if not records or len(records) != len(routes):
        msg = f"{len(routes)} routes for {len(records)} cases (at least one of each)"
        raise ValueError(msg)
    rungs = [Columns.of(records, k) for k in range(max(len(r.rungs) for r in records) or 1)]
    columns = rungs[0]
    correct = np.asarray([route_label(r, x) for r, x in zip(records, routes, strict=True)], float)
    tokens = np.asarray([route_tokens(r, x) for r, x in zip(records, routes, strict=True)], float)
    pruned = np.asarray([route == PRUNED for route in routes], dtype=np.bool_)
    point = _figures(rungs, correct, tokens, pruned)
    members: dict[int, list[int]] = {}
    for index, component in enumerate(components(records)):
        members.setdefault(component, []).append(index)
    groups = [np.asarray(indices, dtype=np.intp) for indices in members.values()]
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {key: [] for key in point}
    for _ in range(bootstrap if len(groups) > 1 else 0):  # one group: nothing to resample
        drawn = np.concatenate([groups[g] for g in rng.integers(len(groups), size=len(groups))])
        taken = [rung.take(drawn) for rung in rungs]
        figures = _figures(taken, correct[drawn], tokens[drawn], pruned[drawn])
        for key, value in figures.items():
            draws[key].append(value)
    ci = {key: _interval(values, confidence) for key, values in draws.items()}
    accepted = sum(isinstance(route, int) for route in routes) / len(routes)
    return RoutingEvaluation(
        policy=RouterFigures(
            _finite(point["policy"]),
            point["policy_forwarded"],
            ci["policy"],
            ci["policy_forwarded"],
            compressed_rate=accepted,
            pruned_rate=float(pruned.mean()),
        ),
        random=RouterFigures(
            _finite(point["random"]),
            point["random_forwarded"],
            compressed_rate=point["random_compressed"],
        ),
        random_forced=RouterFigures(
            _finite(point["random_forced"]),
            point["random_forced_forwarded"],
            compressed_rate=point["random_forced_compressed"],
            pruned_rate=float(pruned.mean()),
        ),
        gain_over_random_forced=_finite(point["gain_random_forced"]),
        gain_over_random_forced_ci=ci["gain_random_forced"],
        always_rung=tuple(
            RouterFigures(_finite(point[f"rung{k}"]), point[f"rung{k}_forwarded"], ci[f"rung{k}"])
            for k in range(len(rungs))
        ),
        length=RouterFigures(
            _finite(point["length"]),
            point["length_forwarded"],
            compressed_rate=point["length_compressed"],
        ),
        always_compress=RouterFigures(
            _finite(point["always"]), point["always_forwarded"], compressed_rate=1.0
        ),
        never_compress=RouterFigures(_finite(point["never"]), 1.0),
        gain_over_random=_finite(point["gain_random"]),
        gain_over_random_ci=ci["gain_random"],
        gain_over_length=_finite(point["gain_length"]),
        gain_over_length_ci=ci["gain_length"],
        distortion=1.0 - float(correct.mean()),
        fallback_rate=sum(route is None for route in routes) / len(routes),
        accepted_rate=accepted,
        n_cases=len(records),
        n_groups=len(groups),
        n_needs_evidence=int(columns.needs.sum()),
        bootstrap=bootstrap,
        confidence=confidence,
    )

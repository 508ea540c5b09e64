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
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ib_middleware.lab.calibration.baselines import (
    Columns,
    RouterFigures,
    finite,
    length_at,
    length_routing,
    random_at,
    random_routing,
)
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
            finite(point["policy"]),
            point["policy_forwarded"],
            ci["policy"],
            ci["policy_forwarded"],
            compressed_rate=accepted,
            pruned_rate=float(pruned.mean()),
        ),
        random=RouterFigures(
            finite(point["random"]),
            point["random_forwarded"],
            compressed_rate=point["random_compressed"],
        ),
        random_forced=RouterFigures(
            finite(point["random_forced"]),
            point["random_forced_forwarded"],
            compressed_rate=point["random_forced_compressed"],
            pruned_rate=float(pruned.mean()),
        ),
        gain_over_random_forced=finite(point["gain_random_forced"]),
        gain_over_random_forced_ci=ci["gain_random_forced"],
        always_rung=tuple(
            RouterFigures(
                finite(point[f"rung{k}"]),
                point[f"rung{k}_forwarded"],
                ci[f"rung{k}"],
                compressed_rate=1.0,
            )
            for k in range(len(rungs))
        ),
        length=RouterFigures(
            finite(point["length"]),
            point["length_forwarded"],
            compressed_rate=point["length_compressed"],
        ),
        always_compress=RouterFigures(
            finite(point["always"]), point["always_forwarded"], compressed_rate=1.0
        ),
        never_compress=RouterFigures(finite(point["never"]), 1.0),
        gain_over_random=finite(point["gain_random"]),
        gain_over_random_ci=ci["gain_random"],
        gain_over_length=finite(point["gain_length"]),
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

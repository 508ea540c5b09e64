"""The calibrate command's report: the rung table, the routing evaluation, the chosen point.

``headline``, ``evaluation_rows`` and ``with_interval`` give plain text (a notebook prints the
same); ``print_report`` lays it out on the console.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from ib_middleware.lab._cli_support import err as err_console
from ib_middleware.lab._cli_support import fmt
from ib_middleware.lab._cli_support import out as console
from ib_middleware.lab.calibration.fitting import RungSummary
from ib_middleware.lab.calibration.quantiles import Selection
from ib_middleware.policy import Policy

__all__ = [
    "EVALUATION_HEADERS",
    "ROUTER_LABELS",
    "evaluation_rows",
    "headline",
    "print_certified",
    "print_report",
    "with_interval",
    "workload_rows",
]

_NEVER = 1e300
"""Thresholds above this accept nothing (a policy stores +inf as the largest float)."""

EVALUATION_HEADERS = ("router", "containment", "95% CI", "forwarded", "compressed", "pruned")
ROUTER_LABELS = {
    "policy": "policy",
    "random": "random, equal tokens",
    "random_forced": "random pruning at the policy's rate",
    "length": "longest first, equal tokens",
    "always_compress": "always compress",
    "never_compress": "never compress",
}


def _number(value: float | None, digits: int = 3, *, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _interval(interval: Sequence[float] | None, digits: int = 3, *, signed: bool = False) -> str:
    if not interval:
        return "-"
    low, high = interval
    return f"[{_number(low, digits, signed=signed)}, {_number(high, digits, signed=signed)}]"


def with_interval(
    value: float | None, interval: Sequence[float] | None, *, signed: bool = False
) -> str:
    """A figure and its interval, as ``0.812 [0.750, 0.870]`` (``-`` for what is missing).

    Example:
        >>> with_interval(0.8125, [0.75, 0.875]), with_interval(0.1, None, signed=True)
        ('0.812 [0.750, 0.875]', '+0.100')
    """
    text = _number(value, signed=signed)
    return f"{text} {_interval(interval, signed=signed)}" if interval else text


def evaluation_rows(evaluation: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """One row per router (``EVALUATION_HEADERS``) from a policy's ``evaluation``.

    Example:
        >>> rows = evaluation_rows({"policy": {"containment": 0.9, "forwarded_fraction": 0.4,
        ...     "containment_ci": [0.8, 1.0], "compressed_rate": 0.5, "pruned_rate": 0.1}})
        >>> rows[0]
        ('policy', '0.900', '[0.800, 1.000]', '0.400', '0.500', '0.100')
    """
    rows: list[tuple[str, ...]] = []
    routers = [(evaluation.get(key), label) for key, label in ROUTER_LABELS.items()]
    routers += [(r, f"always rung {k}") for k, r in enumerate(evaluation.get("always_rung") or [])]
    for router, label in routers:
        if not router:
            continue
        rows.append(
            (
                label,
                _number(router.get("containment")),
                _interval(router.get("containment_ci")),
                _number(router.get("forwarded_fraction")),
                _number(router.get("compressed_rate")),
                _number(router.get("pruned_rate")),
            )
        )
    return rows


def headline(policy: Policy) -> str:
    """The policy's chosen point and its cross-validated figures, a few lines of text.

    Example:
        >>> from ib_middleware.policy import PolicyRung
        >>> policy = Policy(estimator="cxmi", scorer="m", rungs=[PolicyRung(name="r0",
        ...     threshold_bits_per_token=0.25)], target_kind="distortion", target_value=0.1,
        ...     fallback_rate=0.5, distortion=0.0, judge="facts", n_cases=4)
        >>> print(headline(policy).splitlines()[0])
        thresholds r0 0.2500; no relevance gate
    """
    evaluation = policy.evaluation
    gate = (
        f"relevance gate: prune below {policy.prune_below:.4f} of the query explained"
        if policy.prune_below is not None
        else "no relevance gate"
    )
    thresholds = ", ".join(
        f"{name} {'accept none' if value > _NEVER else f'{value:.4f}'}"
        for name, value in policy.thresholds().items()
    )
    in_sample = evaluation.get("in_sample", {})
    lines = [f"thresholds {thresholds}; {gate}"]
    if in_sample:
        lines.append(
            f"fitted on all {policy.n_cases} cases at quantile {in_sample['quantile']:g}: "
            f"distortion {_number(in_sample['distortion'])}, containment "
            f"{_number(in_sample['containment'])}, forwarded "
            f"{_number(in_sample['forwarded_fraction'])} (in-sample)"
        )
    scope = f"{policy.folds}-fold cross-validated" if policy.folds else "in-sample"
    lines.append(
        f"{scope}: containment {with_interval(policy.containment, policy.containment_ci)}, "
        f"distortion {_number(policy.distortion)}, forwarded "
        f"{with_interval(policy.forwarded_fraction, policy.forwarded_fraction_ci)}; fallback "
        f"{_number(policy.fallback_rate)}, pruned {_number(policy.pruned_rate)}, accepted "
        f"{_number(policy.accepted_rate)}"
    )
    if "gain_over_random" in evaluation:
        random = with_interval(policy.gain_over_random, policy.gain_over_random_ci, signed=True)
        length = with_interval(
            evaluation.get("gain_over_length"), evaluation.get("gain_over_length_ci"), signed=True
        )
        lines.append(
            f"containment gain at equal tokens: over random routing {random}, over "
            f"longest-first {length}"
        )
    if evaluation.get("note"):
        lines.append(str(evaluation["note"]))
    return "\n".join(lines)


def print_report(
    policy: Policy,
    selection: Selection,
    summaries: list[RungSummary],
    loaded: int,
    fallback_accuracy: float,
) -> None:
    """Print the calibrate command's report: rung table, evaluation table, chosen point."""
    rungs = Table(
        "rung", "threshold", "valid", "failed", "accuracy", "accepted", "pruned", "acc. accepted"
    )
    for s in summaries:
        counts = (str(s.valid), str(s.failed), fmt(s.accuracy, 2), str(s.accepted), str(s.pruned))
        rungs.add_row(s.name, fmt(s.threshold, 4), *counts, fmt(s.accepted_accuracy, 2))
    console.print(rungs)
    evaluation = Table(*EVALUATION_HEADERS, title="routing evaluation (held-out routes)")
    for row in evaluation_rows(policy.evaluation):
        evaluation.add_row(*row)
    console.print(evaluation)
    console.print(
        f"{policy.n_cases} cases ({loaded} loaded), {policy.judge} judge, {policy.estimator} "
        f"scored by {policy.scorer} (full context alone: distortion {1 - fallback_accuracy:.3f})"
        f"\n{headline(policy)}\n{selection.note}",
        highlight=False,
    )
    if not selection.target_met and policy.target_kind == "distortion":
        err_console.print("[yellow]warning:[/] the distortion target was not met", highlight=False)
    elif policy.target_kind == "distortion" and policy.distortion > policy.target_value + 1e-12:
        err_console.print(
            f"[yellow]warning:[/] cross-validated distortion {policy.distortion:.3f} is above "
            f"the target {policy.target_value:.3f}",
            highlight=False,
        )


WORKLOAD_HEADERS = (
    "workload",
    "containment [95% CI]",
    "seeds: median [p5, p95]",
    "forwarded [95% CI]",
    "seeds: median [p5, p95]",
    "gain vs random",
    "loss",
    "loss <= alpha",
)


def _spread(figures: Mapping[str, Any], name: str) -> str:
    spread = figures.get("spread", {}).get(name)
    if not spread:
        return "-"
    return f"{_number(spread['median'])} {_interval([spread['p5'], spread['p95']])}"


def workload_rows(workloads: Mapping[str, Any], key: str = "shared") -> list[tuple[str, ...]]:
    """One row per workload (``WORKLOAD_HEADERS``) of a version-3 policy's ``workloads``.

    ``key`` picks the shared policy's held-out figures (``shared``) or, with ``own``, those of
    the policy fitted on that workload alone.

    Example:
        >>> figures = {"containment": 0.97, "policy": {"containment_ci": [0.9, 1.0]},
        ...     "forwarded_fraction": 0.4, "gain_over_random": 0.1, "loss": 0.01,
        ...     "spread": {"seeds": 20, "guarantee_held_share": 1.0}}
        >>> workload_rows({"search_results": {"shared": figures}})[0][:2]
        ('search_results', '0.970 [0.900, 1.000]')
    """
    rows: list[tuple[str, ...]] = []
    for name, entry in workloads.items():
        figures = entry.get(key)
        if figures and key == "own":
            figures = figures.get("heldout")
        if not figures:
            continue
        policy = figures.get("policy", {})
        spread = figures.get("spread", {})
        held = spread.get("guarantee_held_share")
        rows.append(
            (
                name,
                with_interval(figures.get("containment"), policy.get("containment_ci")),
                _spread(figures, "containment"),
                with_interval(
                    figures.get("forwarded_fraction"), policy.get("forwarded_fraction_ci")
                ),
                _spread(figures, "forwarded_fraction"),
                with_interval(
                    figures.get("gain_over_random"),
                    figures.get("gain_over_random_ci"),
                    signed=True,
                ),
                _number(figures.get("loss")),
                f"{held:.0%} of {spread.get('seeds')} seeds" if held is not None else "-",
            )
        )
    return rows


def print_certified(
    policy: Policy, summaries: list[RungSummary], note: str, target_met: bool
) -> None:
    """Print a version-3 calibration: rungs, routers, workloads, guarantees, the choice."""
    rungs = Table("rung", "threshold", "valid", "failed", "accuracy", "accepted", "pruned")
    for s in summaries:
        counts = (str(s.valid), str(s.failed), fmt(s.accuracy, 2), str(s.accepted), str(s.pruned))
        threshold = "accept none" if s.threshold > _NEVER else fmt(s.threshold, 4)
        rungs.add_row(s.name, threshold, *counts)
    console.print(rungs)
    routers = Table(*EVALUATION_HEADERS, title="routing evaluation at equal tokens (held out)")
    for row in evaluation_rows(policy.evaluation):
        routers.add_row(*row)
    console.print(routers)
    for key, title in (("shared", "the shipped policy"), ("own", "each workload's own policy")):
        table = Table(*WORKLOAD_HEADERS, title=f"held out per workload: {title}")
        rows = workload_rows(policy.workloads, key)
        for row in rows:
            table.add_row(*row)
        if rows:
            console.print(table)
    for name, entry in policy.workloads.items():
        for other, figures in entry.get("own", {}).get("transfer", {}).items():
            console.print(
                f"fitted on {name} only, on {other}: containment "
                f"{_number(figures.get('containment'))}, forwarded "
                f"{_number(figures.get('forwarded_fraction'))}, "
                f"loss {_number(figures.get('loss'))}",
                highlight=False,
            )
    for guarantee in policy.guarantee.values():
        console.print(
            f"{guarantee.statement}: observed loss {guarantee.observed_loss:.3f}, upper bound "
            f"{guarantee.bound:.3f}, p = {guarantee.p_value:.3g}",
            highlight=False,
        )
    console.print(f"{headline(policy)}\n{note}", highlight=False)
    if not target_met:
        err_console.print("[yellow]warning:[/] the distortion target was not met", highlight=False)

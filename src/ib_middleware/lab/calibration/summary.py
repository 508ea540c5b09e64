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
from ib_middleware.lab.calibration.simulation import Selection
from ib_middleware.policy import Policy

__all__ = [
    "EVALUATION_HEADERS",
    "ROUTER_LABELS",
    "evaluation_rows",
    "headline",
    "print_report",
    "with_interval",
]

EVALUATION_HEADERS = ("router", "containment", "95% CI", "forwarded", "compressed", "pruned")
ROUTER_LABELS = {
    "policy": "policy",
    "random": "random, equal tokens",
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
    for key, label in ROUTER_LABELS.items():
        router = evaluation.get(key)
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
    thresholds = ", ".join(f"{name} {value:.4f}" for name, value in policy.thresholds().items())
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

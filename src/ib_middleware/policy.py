"""Calibrated routing policies: the thresholds tau_k and the curve they were chosen from.

``ib-middleware calibrate`` writes a policy file (JSON); ``StageConfig.policy`` (or
``IB_MIDDLEWARE_POLICY``) makes the stage load it, replacing each rung's threshold by name.

A version-3 policy also records what it was fitted for (``FittedFor``: the estimator, the
scoring model, the witness and the ladder, each rung's name and compressor settings) and the
stage refuses to run it on anything else (``PolicyMismatchError``, naming both): thresholds
are shares of one scorer's surprisal for one ladder's compressions and mean nothing for
another. Version 1 and 2 files carry no such record and apply by rung name, as before.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ib_middleware.errors import PolicyMismatchError

__all__ = [
    "CurvePoint",
    "FittedFor",
    "LadderRung",
    "Policy",
    "PolicyRung",
    "WorkloadGuarantee",
    "default_policy_path",
]


class PolicyRung(BaseModel):
    """A rung's calibrated threshold."""

    model_config = ConfigDict(extra="forbid")

    name: str
    threshold_bits_per_token: float


class CurvePoint(BaseModel):
    """One operating point measured on the calibration data."""

    model_config = ConfigDict(extra="forbid")

    quantile: float
    thresholds: list[float]
    fallback_rate: float
    distortion: float
    forwarded_token_fraction: float
    prune_below: float | None = None
    pruned_rate: float = 0.0
    containment: float | None = None


class LadderRung(BaseModel):
    """A rung as calibrated: its name and its compressor's settings."""

    model_config = ConfigDict(extra="forbid")

    name: str
    compressor: dict[str, Any]


class FittedFor(BaseModel):
    """What a policy's thresholds were fitted for; the stage refuses anything else.

    Attributes:
        estimator: The online estimator (``relevant_pmi``, ``cxmi``, ``contrastive_pmi``).
        scorer: The scoring model's id.
        witness: What stands for what the query needs (relevant_pmi's ``witness``), if any.
        ladder: The rungs, cheapest first, with their compressor settings.
        token_budget: The run-time token budget items were calibrated under (items within it
            pass through); informative only, not checked.
    """

    model_config = ConfigDict(extra="forbid")

    estimator: str
    scorer: str
    witness: str | None = None
    ladder: list[LadderRung]
    token_budget: int | None = None

    def differences(self, other: FittedFor) -> list[str]:
        """What differs between this (the policy's) and ``other`` (the stage's), in words.

        Example:
            >>> a = FittedFor(estimator="relevant_pmi", scorer="m1", ladder=[])
            >>> a.differences(a.model_copy(update={"scorer": "m2"}))
            ["scorer: the policy's 'm1', the stage's 'm2'"]
        """
        out = [
            f"{name}: the policy's {getattr(self, name)!r}, the stage's {getattr(other, name)!r}"
            for name in ("estimator", "scorer", "witness")
            if getattr(self, name) != getattr(other, name)
        ]
        mine = [rung.name for rung in self.ladder]
        theirs = [rung.name for rung in other.ladder]
        if mine != theirs:
            out.append(f"ladder: the policy's rungs {mine}, the stage's {theirs}")
        else:
            for fitted, used in zip(self.ladder, other.ladder, strict=True):
                changed = sorted(
                    key
                    for key in set(fitted.compressor) | set(used.compressor)
                    if fitted.compressor.get(key) != used.compressor.get(key)
                )
                if changed:
                    settings = ", ".join(
                        f"{key} {fitted.compressor.get(key)!r} -> {used.compressor.get(key)!r}"
                        for key in changed
                    )
                    out.append(f"rung {fitted.name!r} compressor: {settings}")
        return out


class WorkloadGuarantee(BaseModel):
    """The finite-sample guarantee of a policy on one workload (Learn then Test).

    "Accepted or pruned items lose needed evidence in at most ``alpha`` of cases, with
    probability at least 1 - ``delta``", certified by a binomial tail test on ``n`` cases.

    Attributes:
        alpha: The risk level.
        delta: The error probability.
        n: Calibration cases of the workload.
        thresholds: The certified thresholds by rung name.
        prune_below: The certified gate (None: no gate).
        observed_loss: The loss share measured at them on the calibration cases.
        bound: The upper confidence limit of the risk at them (at the tested level).
        p_value: The binomial tail p-value of "risk > alpha" at them.
        level: The level each testing path used (delta over the number of paths).
        certified: Whether the shipped thresholds are certified (False: no candidate was,
            and the policy forwards every item whole, which loses nothing).
        statement: The guarantee in words.
    """

    model_config = ConfigDict(extra="forbid")

    alpha: float
    delta: float
    n: int
    thresholds: dict[str, float]
    prune_below: float | None
    observed_loss: float
    bound: float
    p_value: float
    level: float
    certified: bool
    statement: str


class Policy(BaseModel):
    """A calibrated policy.

    Attributes:
        estimator: Online estimator the thresholds apply to (``cxmi`` or ``contrastive_pmi``).
        scorer: Scoring model the estimates came from (thresholds do not transfer across).
        rungs: Threshold per rung name.
        target_kind: ``distortion`` or ``fallback``: what calibration aimed for.
        target_value: The target.
        fallback_rate: Fallback rate measured at the chosen thresholds.
        distortion: 1 - accuracy measured at the chosen thresholds (judge below).
        judge: How correctness was labelled.
        n_cases: Calibration cases.
        curve: Every operating point tried.
        reproduce: The command that reproduces this file.
        prune_below: The relevance gate's threshold (share of the query a compression must
            explain, else the item is pruned); None when calibration did not support a gate.
        pruned_rate: Share of cases pruned at the chosen thresholds.
        accepted_rate: Share of cases whose compression was accepted.
        folds: Folds of the cross-validation behind the figures below (None: in-sample).
        containment: Cross-validated share of the cases needing evidence whose forwarded text
            holds it (each fold's cases routed by thresholds fitted on the other folds).
        containment_ci: Its 95% bootstrap interval (cases resampled by group).
        forwarded_fraction: Cross-validated forwarded tokens over raw tokens.
        forwarded_fraction_ci: Its 95% bootstrap interval.
        gain_over_random: Containment over that of random routing at equal forwarded tokens.
        gain_over_random_ci: Its 95% bootstrap interval.
        evaluation: The routing evaluation: each baseline's containment and forwarded
            fraction (random, length, always compress, never compress), cross-validated.
        fitted_for: What the thresholds were fitted for (version 3); the stage refuses a
            mismatch (``check``).
        guarantee: Per workload, the finite-sample guarantee of the shipped thresholds.
        workloads: Per workload, held-out figures (nested cross-validation), their spread
            over fold seeds, and the per-workload and transfer policies' figures.
        records: The measured table's file name, beside the policy (for replays).
    """

    model_config = ConfigDict(extra="forbid")

    version: Literal[1, 2, 3] = 2
    estimator: str
    scorer: str
    rungs: list[PolicyRung]
    target_kind: Literal["distortion", "fallback"]
    target_value: float
    fallback_rate: float
    distortion: float
    judge: str
    n_cases: int
    curve: list[CurvePoint] = Field(default_factory=list)
    reproduce: str = ""
    prune_below: float | None = None
    pruned_rate: float = 0.0
    accepted_rate: float | None = None
    folds: int | None = None
    containment: float | None = None
    containment_ci: list[float] | None = None
    forwarded_fraction: float | None = None
    forwarded_fraction_ci: list[float] | None = None
    gain_over_random: float | None = None
    gain_over_random_ci: list[float] | None = None
    evaluation: dict[str, Any] = Field(default_factory=dict)
    fitted_for: FittedFor | None = None
    guarantee: dict[str, WorkloadGuarantee] = Field(default_factory=dict)
    workloads: dict[str, Any] = Field(default_factory=dict)
    records: str | None = None

    def check(self, stage: FittedFor, *, source: str = "the policy") -> None:
        """Raise ``PolicyMismatchError`` when the stage is not what the policy was fitted for.

        A policy without ``fitted_for`` (version 1 or 2) is not checked.

        Example:
            >>> fitted = FittedFor(estimator="relevant_pmi", scorer="m1", ladder=[])
            >>> policy = Policy(estimator="relevant_pmi", scorer="m1", rungs=[],
            ...     target_kind="distortion", target_value=0.05, fallback_rate=1.0,
            ...     distortion=0.0, judge="facts", n_cases=1, fitted_for=fitted)
            >>> policy.check(fitted)
            >>> policy.check(fitted.model_copy(update={"scorer": "m2"}))
            Traceback (most recent call last):
            ...
            ib_middleware.errors.PolicyMismatchError: the policy was calibrated for another ...
        """
        if self.fitted_for is None:
            return
        differences = self.fitted_for.differences(stage)
        if differences:
            raise PolicyMismatchError(source, differences)

    def thresholds(self) -> dict[str, float]:
        """Threshold by rung name."""
        return {rung.name: rung.threshold_bits_per_token for rung in self.rungs}

    def save(self, path: str | Path) -> Path:
        """Write the policy as indented JSON."""
        target = Path(path)
        target.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Read a policy file.

        Example:
            >>> Policy.load(default_policy_path()).estimator
            'relevant_pmi'
        """
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))


def default_policy_path() -> Path:
    """The policy shipped with the package, calibrated on the bundled FinanceBench sample."""
    return Path(str(files("ib_middleware").joinpath("policies", "default.json")))

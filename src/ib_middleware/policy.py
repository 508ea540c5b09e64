"""Calibrated routing policies: the thresholds tau_k and the curve they were chosen from.

``ib-middleware calibrate`` writes a policy file (JSON); ``StageConfig.policy`` (or
``IB_MIDDLEWARE_POLICY``) makes the stage load it, replacing each rung's threshold by name.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CurvePoint", "Policy", "PolicyRung", "default_policy_path"]


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
    """

    model_config = ConfigDict(extra="forbid")

    version: Literal[1, 2] = 2
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

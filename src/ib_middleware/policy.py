"""Calibrated routing policies: the thresholds tau_k and the curve they were chosen from.

``ib-middleware calibrate`` writes a policy file (JSON); ``StageConfig.policy`` (or
``IB_MIDDLEWARE_POLICY``) makes the stage load it, replacing each rung's threshold by name.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Literal

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
    """

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
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

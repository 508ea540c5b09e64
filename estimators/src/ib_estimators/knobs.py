"""Which knobs matter: logistic regression of correctness on configuration features (paper D.4).

Fitted with statsmodels, which brings pandas and patsy: it is the ``analysis`` extra
(``pip install "ib-estimators[analysis]"``, pulled in by ``ib-middleware[lab]``), imported only
when ``knob_analysis`` runs, so the runtime never loads it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ib_estimators._validation import as_float_array

ANALYSIS_EXTRA = 'pip install "ib-estimators[analysis]"'
"""What installs statsmodels, named in the error when it is missing."""


def _statsmodels() -> tuple[ModuleType, Any, Any]:
    """``statsmodels.api`` and its two warnings, or an error naming the extra."""
    try:
        import statsmodels.api as sm  # noqa: PLC0415  # the analysis extra, loaded on use
        from statsmodels.tools.sm_exceptions import (  # noqa: PLC0415
            ConvergenceWarning,
            PerfectSeparationWarning,
        )
    except ModuleNotFoundError as error:
        msg = f"knob_analysis needs statsmodels: {ANALYSIS_EXTRA}"
        raise ModuleNotFoundError(msg, name=error.name) from error
    return sm, ConvergenceWarning, PerfectSeparationWarning


@dataclass(frozen=True)
class Coefficient:
    """One regression coefficient on the log-odds scale.

    Attributes:
        name: Feature name (z-scored numeric feature, or ``family[<label>]`` indicator).
        coef: Estimated coefficient.
        ci_low: Lower end of its 95% confidence interval.
        ci_high: Upper end.
        p_value: Two-sided Wald p-value.
    """

    name: str
    coef: float
    ci_low: float
    ci_high: float
    p_value: float


@dataclass(frozen=True)
class KnobAnalysis:
    """Result of ``knob_analysis``.

    Attributes:
        coefficients: The intercept first, then one entry per feature.
        pseudo_r_squared: McFadden's pseudo R².
        n_observations: Rows fitted.
        reference_family: The family absorbed into the intercept, if families were given.
    """

    coefficients: tuple[Coefficient, ...]
    pseudo_r_squared: float
    n_observations: int
    reference_family: str | None

    def coefficient(self, name: str) -> Coefficient:
        """Look up a coefficient by name."""
        for entry in self.coefficients:
            if entry.name == name:
                return entry
        msg = f"no coefficient {name!r}; have {[entry.name for entry in self.coefficients]}"
        raise KeyError(msg)


def knob_analysis(
    correct: ArrayLike | Sequence[bool],
    features: Mapping[str, ArrayLike | Sequence[float]],
    *,
    families: Sequence[str] | None = None,
) -> KnobAnalysis:
    """Logistic regression of binary correctness on z-scored knobs and family indicators.

    Numeric features (for example log compressor size, log predictor size) are z-scored so the
    coefficients compare across knobs; families become indicator columns with the first family
    in sorted order as reference. Fitted with statsmodels' Logit.

    Args:
        correct: One 0/1 outcome per evaluated answer.
        features: Numeric features by name, each as long as ``correct``.
        families: Optional categorical label (for example compressor family) per row.

    Returns:
        Coefficients with 95% CIs and p-values, pseudo R² and the reference family.

    Raises:
        ValueError: On mismatched lengths, non-binary outcomes, a constant feature, or a
            perfectly separated design that logistic regression cannot fit.
        ModuleNotFoundError: Without statsmodels (the ``analysis`` extra).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> size = rng.normal(size=400)
        >>> correct = rng.random(400) < 1 / (1 + np.exp(-2 * size))
        >>> result = knob_analysis(correct, {"size": size})
        >>> result.coefficient("size").coef > 1.0
        True
    """
    outcome = as_float_array(correct, name="correct").reshape(-1)
    if not np.isin(outcome, (0.0, 1.0)).all():
        msg = "correct must hold only 0/1 (or booleans)"
        raise ValueError(msg)
    n_rows = outcome.size
    columns: list[np.ndarray] = []
    names: list[str] = []
    for name, values in features.items():
        column = as_float_array(values, name=f"features[{name!r}]").reshape(-1)
        if column.size != n_rows:
            msg = f"feature {name!r} has {column.size} values, correct has {n_rows}"
            raise ValueError(msg)
        spread = float(column.std())
        if spread == 0.0:
            msg = f"feature {name!r} is constant; drop it or vary it across runs"
            raise ValueError(msg)
        columns.append((column - column.mean()) / spread)
        names.append(name)
    reference: str | None = None
    if families is not None:
        if len(families) != n_rows:
            msg = f"families has {len(families)} labels, correct has {n_rows}"
            raise ValueError(msg)
        labels = sorted(set(families))
        reference = labels[0]
        for label in labels[1:]:
            columns.append(np.array([family == label for family in families], dtype=np.float64))
            names.append(f"family[{label}]")
    sm, ConvergenceWarning, PerfectSeparationWarning = _statsmodels()  # noqa: N806
    design = sm.add_constant(np.column_stack(columns) if columns else np.empty((n_rows, 0)))
    try:
        with warnings.catch_warnings():
            # A separated or non-converged fit gives meaningless coefficients: fail loudly.
            warnings.simplefilter("error", PerfectSeparationWarning)
            warnings.simplefilter("error", ConvergenceWarning)
            result = sm.Logit(outcome, design).fit(disp=0)
    except Exception as exc:  # statsmodels raises several types for separation and singularity
        msg = f"logistic regression failed ({exc}); the outcome may be perfectly separated"
        raise ValueError(msg) from exc
    intervals = np.asarray(result.conf_int(alpha=0.05))
    coefficients = tuple(
        Coefficient(
            name=name,
            coef=float(result.params[index]),
            ci_low=float(intervals[index, 0]),
            ci_high=float(intervals[index, 1]),
            p_value=float(result.pvalues[index]),
        )
        for index, name in enumerate(["intercept", *names])
    )
    return KnobAnalysis(
        coefficients=coefficients,
        pseudo_r_squared=float(result.prsquared),
        n_observations=n_rows,
        reference_family=reference,
    )

"""Rate-distortion fits and correlations between information and accuracy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats

from ib_estimators._validation import as_float_array


@dataclass(frozen=True)
class RateDistortionFit:
    """Least-squares fit of D(R) = C * exp(-b * R) + D0.

    Attributes:
        c: Amplitude C.
        b: Decay rate b (per bit per token).
        d0: Asymptotic distortion D0, what no amount of rate removes.
        c_se: Standard error of C.
        b_se: Standard error of b.
        d0_se: Standard error of D0.
        r_squared: Coefficient of determination of the fit.
        n_points: Number of (rate, distortion) points fitted.
    """

    c: float
    b: float
    d0: float
    c_se: float
    b_se: float
    d0_se: float
    r_squared: float
    n_points: int

    def predict(self, rates: ArrayLike | float) -> NDArray[np.float64]:
        """Distortion the fit predicts at the given rates.

        Example:
            >>> fit = RateDistortionFit(0.5, 2.0, 0.1, 0, 0, 0, 1.0, 4)
            >>> fit.predict([0.0]).round(3).tolist()
            [0.6]
        """
        rate_array = np.asarray(rates, dtype=np.float64)
        predicted: NDArray[np.float64] = self.c * np.exp(-self.b * rate_array) + self.d0
        return predicted


def _model(rate: NDArray[np.float64], c: float, b: float, d0: float) -> NDArray[np.float64]:
    result: NDArray[np.float64] = c * np.exp(-b * rate) + d0
    return result


def fit_rate_distortion(
    rates: ArrayLike | Sequence[float], distortions: ArrayLike | Sequence[float]
) -> RateDistortionFit:
    """Fit D(R) = C * exp(-b * R) + D0 by bounded least squares (scipy.optimize.curve_fit).

    Args:
        rates: Bit efficiencies R (bits of MI per output token), one per configuration.
        distortions: Distortions D = 1 - accuracy, same length.

    Returns:
        The fitted parameters with standard errors and R².

    Raises:
        ValueError: With fewer than 4 points, mismatched lengths, non-finite values, or when
            the fit does not converge.

    Example:
        >>> import numpy as np
        >>> r = np.linspace(0.0, 3.0, 8)
        >>> fit = fit_rate_distortion(r, 0.6 * np.exp(-1.5 * r) + 0.2)
        >>> round(fit.b, 2), round(fit.d0, 2), round(fit.r_squared, 3)
        (1.5, 0.2, 1.0)
    """
    rate_array = as_float_array(rates, name="rates").reshape(-1)
    distortion_array = as_float_array(distortions, name="distortions").reshape(-1)
    if rate_array.shape != distortion_array.shape:
        msg = (
            f"rates and distortions differ in length: {rate_array.size} vs {distortion_array.size}"
        )
        raise ValueError(msg)
    if rate_array.size < 4:
        msg = (
            "fitting 3 parameters with standard errors needs at least 4 points, "
            f"got {rate_array.size}"
        )
        raise ValueError(msg)
    spread = float(np.ptp(rate_array)) or 1.0
    initial = (
        max(float(np.ptp(distortion_array)), 1e-3),
        1.0 / spread,
        float(distortion_array.min()),
    )
    try:
        params, covariance = optimize.curve_fit(
            _model,
            rate_array,
            distortion_array,
            p0=initial,
            bounds=([0.0, 0.0, -np.inf], [np.inf, np.inf, np.inf]),
            maxfev=20_000,
        )
    except (RuntimeError, optimize.OptimizeWarning) as exc:
        msg = f"rate-distortion fit did not converge ({exc}); check that distortion falls with rate"
        raise ValueError(msg) from exc
    errors = np.sqrt(np.clip(np.diag(covariance), 0.0, np.inf))
    residuals = distortion_array - _model(rate_array, *params)
    total = float(((distortion_array - distortion_array.mean()) ** 2).sum())
    r_squared = 1.0 - float((residuals**2).sum()) / total if total > 0.0 else 1.0
    return RateDistortionFit(
        c=float(params[0]),
        b=float(params[1]),
        d0=float(params[2]),
        c_se=float(errors[0]),
        b_se=float(errors[1]),
        d0_se=float(errors[2]),
        r_squared=r_squared,
        n_points=int(rate_array.size),
    )


@dataclass(frozen=True)
class Correlation:
    """Pearson and Spearman correlation between two samples.

    Attributes:
        pearson_r: Pearson's r.
        pearson_p: Its two-sided p-value.
        pearson_ci: 95% confidence interval of r (Fisher z), or NaNs with fewer than 4 points.
        r_squared: r², the variance a linear fit explains.
        spearman_rho: Spearman's rank correlation.
        spearman_p: Its two-sided p-value.
        n: Number of pairs.
    """

    pearson_r: float
    pearson_p: float
    pearson_ci: tuple[float, float]
    r_squared: float
    spearman_rho: float
    spearman_p: float
    n: int


def correlate(x: ArrayLike | Sequence[float], y: ArrayLike | Sequence[float]) -> Correlation:
    """Correlate two samples (for example MI or bits per token against distortion).

    Args:
        x: First sample.
        y: Second sample, same length.

    Returns:
        Pearson r with p-value and 95% CI, R², Spearman rho with p-value.

    Raises:
        ValueError: With fewer than 3 pairs, mismatched lengths, non-finite or constant input.

    Example:
        >>> result = correlate([1, 2, 3, 4, 5], [2.0, 4.1, 5.9, 8.2, 9.9])
        >>> round(result.pearson_r, 3), round(result.spearman_rho, 3)
        (0.999, 1.0)
    """
    x_array = as_float_array(x, name="x").reshape(-1)
    y_array = as_float_array(y, name="y").reshape(-1)
    if x_array.shape != y_array.shape:
        msg = f"x and y differ in length: {x_array.size} vs {y_array.size}"
        raise ValueError(msg)
    if x_array.size < 3:
        msg = f"correlation needs at least 3 pairs, got {x_array.size}"
        raise ValueError(msg)
    if np.ptp(x_array) == 0.0 or np.ptp(y_array) == 0.0:
        msg = "correlation is undefined for a constant sample; vary the configurations"
        raise ValueError(msg)
    pearson = stats.pearsonr(x_array, y_array)
    if x_array.size >= 4:
        interval = pearson.confidence_interval(confidence_level=0.95)
        ci = (float(interval.low), float(interval.high))
    else:
        ci = (math.nan, math.nan)
    spearman = stats.spearmanr(x_array, y_array)
    r = float(pearson.statistic)
    return Correlation(
        pearson_r=r,
        pearson_p=float(pearson.pvalue),
        pearson_ci=ci,
        r_squared=r * r,
        spearman_rho=float(spearman.statistic),
        spearman_p=float(spearman.pvalue),
        n=int(x_array.size),
    )

"""A finite-sample guarantee on the loss, in the Learn-then-Test manner (Angelopoulos et al.).

The loss of a case under a candidate is 1 when the stage accepts a compression of it or prunes
it and the forwarded text loses needed evidence that the whole item holds (``grid.RouteTable``:
``loss``); passthrough and fallback lose nothing. For each candidate λ the null hypothesis
"the risk R(λ) (the expected loss of an item of this workload) exceeds alpha" is tested with the
binomial tail: with k losses among n cases, p(λ) = P(Binomial(n, alpha) <= k). The candidates are
tested in a fixed sequence per path (one path per gate, from the threshold that accepts nothing
toward looser ones), each path at level delta / (number of paths), stopping at its first
non-rejection. Every rejected candidate is certified: with probability at least 1 - delta, all of
them have risk at most alpha at once, so any choice among them keeps the statement:

    "accepted or pruned items lose needed evidence in at most alpha of cases, with probability at
    least 1 - delta"

It assumes the calibration cases are exchangeable with the items the stage will see (items of
one question are not independent draws: the held-out check over fold seeds is the empirical
test of it). The reported ``bound`` is the one-sided Clopper-Pearson upper limit of the chosen
candidate's risk at the same level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import beta, binom

__all__ = ["Certified", "binomial_p_values", "fixed_sequence", "learn_then_test", "upper_bound"]


def binomial_p_values(
    losses: Sequence[int] | npt.NDArray[np.int64], n: int, alpha: float
) -> npt.NDArray[np.float64]:
    """p-values of "risk > alpha" for ``losses`` out of ``n``: P(Binomial(n, alpha) <= k).

    Example:
        >>> [round(float(p), 4) for p in binomial_p_values([0, 5], 100, 0.05)]
        [0.0059, 0.616]
    """
    return np.asarray(binom.cdf(np.asarray(losses), n, alpha), dtype=np.float64)


def fixed_sequence(p_values: Sequence[float] | npt.NDArray[np.float64], level: float) -> int:
    """How many hypotheses, in the given order, are rejected before the first that is not.

    Example:
        >>> fixed_sequence([0.01, 0.02, 0.5, 0.01], 0.05)
        2
    """
    for count, value in enumerate(p_values):
        if value > level:
            return count
    return len(p_values)


def upper_bound(losses: int, n: int, level: float) -> float:
    """The one-sided Clopper-Pearson upper limit of a rate, at confidence 1 - ``level``.

    Example:
        >>> round(upper_bound(0, 45, 0.1), 4)
        0.0499
    """
    if n <= 0:
        return 1.0
    if losses >= n:
        return 1.0
    return float(beta.ppf(1.0 - level, losses + 1, n - losses))


@dataclass(frozen=True)
class Certified:
    """The candidates the test certifies on one set of cases.

    Attributes:
        valid: Per candidate, whether it is certified (risk <= alpha with the stated confidence).
        p_values: Per candidate, the binomial tail p-value.
        losses: Per candidate, the losses counted.
        n: Cases tested.
        alpha: The risk level.
        delta: The error probability of the whole statement.
        level: The level each path was tested at (delta over the number of paths).
    """

    valid: npt.NDArray[np.bool_]
    p_values: npt.NDArray[np.float64]
    losses: npt.NDArray[np.int64]
    n: int
    alpha: float
    delta: float
    level: float

    def bound(self, candidate: int) -> float:
        """The upper confidence limit of one candidate's risk at the tested level."""
        return upper_bound(int(self.losses[candidate]), self.n, self.level)


def learn_then_test(
    loss: npt.NDArray[np.bool_],
    paths: Sequence[Sequence[int]],
    *,
    alpha: float = 0.05,
    delta: float = 0.1,
) -> Certified:
    """Certify candidates from a (case, candidate) loss matrix by fixed-sequence testing.

    Args:
        loss: One row per case, one column per candidate: the case's 0/1 loss.
        paths: Each path is candidate indices in testing order (most conservative first);
            each is tested at ``delta / len(paths)`` (Bonferroni across paths).
        alpha: The risk level alpha.
        delta: The error probability delta.

    Example:
        >>> loss = np.zeros((200, 3), dtype=bool)
        >>> loss[:2, 1] = True; loss[:20, 2] = True
        >>> learn_then_test(loss, [[0, 1, 2]]).valid.tolist()
        [True, True, False]
    """
    if not 0.0 < alpha < 1.0 or not 0.0 < delta < 1.0:
        msg = f"alpha and delta must be in (0, 1), got {alpha} and {delta}"
        raise ValueError(msg)
    n = int(loss.shape[0])
    losses = loss.sum(axis=0).astype(np.int64)
    p_values = binomial_p_values(losses, n, alpha) if n else np.ones(loss.shape[1])
    level = delta / max(len(paths), 1)
    valid = np.zeros(loss.shape[1], dtype=np.bool_)
    for path in paths:
        order = list(path)
        rejected = fixed_sequence(p_values[order], level) if n else 0
        valid[order[:rejected]] = True
    return Certified(valid, p_values, losses, n, alpha, delta, level)

"""The Learn-then-Test guarantee on synthetic losses whose true risks are known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from ib_middleware.lab.calibration.guarantee import (
    binomial_p_values,
    fixed_sequence,
    learn_then_test,
    upper_bound,
)

ALPHA, DELTA = 0.05, 0.1
# One path of candidates, most conservative first; their true risks grow along it.
RISKS = np.array([0.0, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.15])


def draw(rng, n, risks):
    return rng.random((n, len(risks))) < risks


def test_the_p_value_is_the_binomial_tail():
    assert binomial_p_values([3], 200, ALPHA)[0] == pytest.approx(binom.cdf(3, 200, ALPHA))
    # No loss in n cases: (1 - alpha)^n.
    assert binomial_p_values([0], 45, ALPHA)[0] == pytest.approx(0.95**45)


def test_fixed_sequence_stops_at_the_first_non_rejection():
    assert fixed_sequence([0.01, 0.2, 0.01], 0.1) == 1, "a later small p-value is not tested"
    assert fixed_sequence([0.01, 0.02], 0.1) == 2
    assert fixed_sequence([0.5], 0.1) == 0
    assert fixed_sequence([], 0.1) == 0


def test_too_few_cases_certify_nothing():
    # (1 - 0.05)^n <= 0.1 needs n >= 45: with 40 cases not even "accept nothing" is certified.
    assert not learn_then_test(np.zeros((40, 3), dtype=bool), [[0, 1, 2]]).valid.any()
    assert learn_then_test(np.zeros((45, 3), dtype=bool), [[0, 1, 2]]).valid.all()


@pytest.mark.parametrize("n", [100, 300, 1000])
def test_the_guarantee_holds_at_the_stated_rate_over_many_draws(n):
    """P(some certified candidate has true risk > alpha) <= delta, over 2,000 calibration draws."""
    rng = np.random.default_rng(n)
    draws, failures, powered = 2000, 0, 0
    for _ in range(draws):
        certified = learn_then_test(draw(rng, n, RISKS), [list(range(len(RISKS)))]).valid
        failures += bool((RISKS[certified] > ALPHA).any())
        powered += bool(certified[2])
    # delta plus three binomial standard errors of the Monte Carlo estimate.
    assert failures / draws <= DELTA + 3 * np.sqrt(DELTA * (1 - DELTA) / draws)
    if n >= 300:
        assert powered / draws > 0.5, "a risk of 0.01 is certified most of the time"


def test_the_worst_case_risk_exactly_at_alpha_is_certified_at_most_delta_of_the_time():
    rng = np.random.default_rng(7)
    risks = np.array([0.0, ALPHA + 1e-9])
    draws = 4000
    hits = sum(learn_then_test(draw(rng, 200, risks), [[0, 1]]).valid[1] for _ in range(draws))
    assert hits / draws <= DELTA + 3 * np.sqrt(DELTA * (1 - DELTA) / draws)


def test_several_paths_share_delta_bonferroni():
    rng = np.random.default_rng(3)
    paths = [list(range(len(RISKS))), [len(RISKS) + i for i in range(len(RISKS))]]
    risks = np.concatenate([RISKS, RISKS[::-1].copy()])
    risks[len(RISKS)] = 0.0  # the second path starts safe, then jumps above alpha
    draws, failures = 1500, 0
    for _ in range(draws):
        result = learn_then_test(draw(rng, 300, risks), paths)
        assert result.level == pytest.approx(DELTA / 2)
        failures += bool((risks[result.valid] > ALPHA).any())
    assert failures / draws <= DELTA + 3 * np.sqrt(DELTA * (1 - DELTA) / draws)


def test_the_bound_is_a_clopper_pearson_upper_limit():
    assert upper_bound(0, 45, 0.1) == pytest.approx(1 - 0.1 ** (1 / 45), rel=1e-6)
    assert upper_bound(10, 10, 0.1) == 1.0
    assert upper_bound(2, 100, 0.1) > 0.02


def test_bad_levels_are_refused():
    with pytest.raises(ValueError, match="alpha and delta"):
        learn_then_test(np.zeros((5, 1), dtype=bool), [[0]], alpha=0.0)

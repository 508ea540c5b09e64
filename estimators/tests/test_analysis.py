import math

import numpy as np
import pytest
from ib_estimators import (
    DEFAULT_PRICES,
    ModelSpec,
    Price,
    api_cost,
    correlate,
    fit_rate_distortion,
    flops_per_generation,
    knob_analysis,
)


def test_rate_distortion_recovers_parameters_with_noise():
    rng = np.random.default_rng(0)
    rates = np.linspace(0.05, 2.5, 40)
    distortions = 0.55 * np.exp(-1.8 * rates) + 0.15 + rng.normal(0, 0.01, rates.size)
    fit = fit_rate_distortion(rates, distortions)
    assert fit.c == pytest.approx(0.55, abs=3 * fit.c_se + 0.02)
    assert fit.b == pytest.approx(1.8, abs=3 * fit.b_se + 0.05)
    assert fit.d0 == pytest.approx(0.15, abs=3 * fit.d0_se + 0.02)
    assert fit.r_squared > 0.95
    assert fit.n_points == 40
    np.testing.assert_allclose(fit.predict(rates), 0.55 * np.exp(-1.8 * rates) + 0.15, atol=0.03)


def test_rate_distortion_rejects_too_few_points():
    with pytest.raises(ValueError, match="at least 4"):
        fit_rate_distortion([0.1, 0.2, 0.3], [0.5, 0.4, 0.3])
    with pytest.raises(ValueError, match="differ in length"):
        fit_rate_distortion([0.1, 0.2, 0.3, 0.4], [0.5, 0.4, 0.3])


def test_correlate_matches_known_relationship():
    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    y = -0.8 * x + rng.normal(scale=0.6, size=200)
    result = correlate(x, y)
    assert result.pearson_r < -0.7
    assert result.pearson_ci[0] <= result.pearson_r <= result.pearson_ci[1]
    assert result.r_squared == pytest.approx(result.pearson_r**2)
    assert result.spearman_rho < -0.6
    assert result.pearson_p < 1e-10
    assert result.n == 200


def test_correlate_rejects_constant():
    with pytest.raises(ValueError, match="constant"):
        correlate([1, 1, 1, 1], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="at least 3"):
        correlate([1, 2], [1, 2])


def test_flops_formula_sums_positions():
    spec = ModelSpec(n_params=135e6, n_layers=30, d_attn=576, name="smollm2-135m")
    prompt, output = 600, 50
    expected = sum(2 * 135e6 + 2 * 30 * t * 576 for t in range(1, prompt + output + 1))
    assert flops_per_generation(spec, prompt, output) == pytest.approx(expected)
    with pytest.raises(ValueError, match="non-negative"):
        flops_per_generation(spec, -1, 0)
    with pytest.raises(ValueError, match="positive"):
        ModelSpec(n_params=0, n_layers=1, d_attn=1)


def test_api_cost_from_table():
    assert api_cost("gpt-4o", 1000, 1000) == pytest.approx((2.5 + 10.0) / 1000)
    table = {"mine": Price(1.0, 2.0)}
    assert api_cost("mine", 500_000, 250_000, prices=table) == pytest.approx(1.0)
    assert api_cost("local", 10**9, 10**9) == 0.0
    assert "gpt-4o-mini" in DEFAULT_PRICES
    with pytest.raises(ValueError, match="add it to the price table"):
        api_cost("unknown-model", 1, 1)


def test_knob_analysis_ranks_family_over_size():
    rng = np.random.default_rng(0)
    n = 2000
    size = rng.normal(size=n)
    families = rng.choice(["llama", "qwen"], size=n).tolist()
    logit = -0.2 + 0.4 * size + 1.5 * (np.array(families) == "qwen")
    correct = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    result = knob_analysis(correct, {"log_size": size}, families=families)
    names = [c.name for c in result.coefficients]
    assert names == ["intercept", "log_size", "family[qwen]"]
    family = result.coefficient("family[qwen]")
    size_coef = result.coefficient("log_size")
    assert family.ci_low <= 1.5 <= family.ci_high
    assert family.coef > size_coef.coef > 0
    assert family.p_value < 1e-6
    assert result.reference_family == "llama"
    assert 0 < result.pseudo_r_squared < 1
    with pytest.raises(KeyError):
        result.coefficient("missing")


def test_knob_analysis_bad_input():
    with pytest.raises(ValueError, match="0/1"):
        knob_analysis([0, 2, 1], {"a": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="constant"):
        knob_analysis([0, 1, 1], {"a": [1.0, 1.0, 1.0]})
    with pytest.raises(ValueError, match="values"):
        knob_analysis([0, 1, 1], {"a": [1.0, 2.0]})


def test_units_consistent():
    from ib_estimators import nats_to_bits

    assert nats_to_bits(math.log(8)) == pytest.approx(3.0)

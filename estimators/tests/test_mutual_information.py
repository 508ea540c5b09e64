import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from ib_estimators import (
    SATURATION_MARGIN_NATS,
    bit_efficiency,
    mc_mutual_information,
    pointwise_terms,
)
from synthetic_channels import gaussian_channel_scores, symmetric_channel_scores


def test_deterministic_channel_reaches_log_n_and_saturates():
    n = 16
    scores = np.where(np.eye(n, dtype=bool), -1.5, -np.inf)[:, None, :].repeat(3, axis=1)
    estimate = mc_mutual_information(scores)
    assert estimate.nats == pytest.approx(math.log(n))
    assert estimate.bits == pytest.approx(4.0)
    assert estimate.saturated
    assert not estimate.clipped
    assert estimate.upper_bound_nats == pytest.approx(math.log(n))
    assert estimate.n_contexts == n
    assert estimate.n_samples == 3


def test_independent_channel_is_zero_after_clipping():
    rng = np.random.default_rng(1)
    n, m = 64, 4
    # Z independent of X: the score of z does not depend on the context l.
    per_compression = rng.normal(-20.0, 3.0, size=(n, m, 1))
    noise = rng.normal(0.0, 1e-3, size=(n, m, n))
    estimate = mc_mutual_information(per_compression + noise)
    assert estimate.nats >= 0.0
    assert estimate.nats < 1e-3
    assert not estimate.saturated


def test_negative_raw_estimate_is_clipped_and_flagged():
    scores = np.log(np.array([[0.4, 0.6], [0.6, 0.4]]))
    estimate = mc_mutual_information(scores)
    assert estimate.raw_nats < 0.0
    assert estimate.clipped
    assert estimate.nats == 0.0
    assert estimate.bits == 0.0


@pytest.mark.parametrize(("symbols", "error"), [(4, 0.3), (8, 0.5), (2, 0.1)])
def test_symmetric_channel_within_ci_of_truth(symbols, error):
    scores, truth = symmetric_channel_scores(512, 4, symbols=symbols, error=error, seed=7)
    estimate = mc_mutual_information(scores, seed=3)
    assert truth < 0.5 * math.log(512)
    low, high = estimate.ci_nats
    assert low <= truth <= high, (estimate.nats, truth, estimate.ci_nats)
    assert not estimate.saturated


@pytest.mark.parametrize("snr", [0.5, 2.0, 8.0])
def test_gaussian_channel_within_ci_of_truth(snr):
    scores, truth = gaussian_channel_scores(512, 4, snr=snr, seed=11)
    estimate = mc_mutual_information(scores, seed=5)
    low, high = estimate.ci_nats
    assert low <= truth <= high, (estimate.nats, truth, estimate.ci_nats)


def test_downward_bias_near_log_n():
    # True MI of a high-SNR Gaussian channel far exceeds log 8: the estimate is capped there.
    scores, truth = gaussian_channel_scores(8, 4, snr=1e4, seed=2)
    estimate = mc_mutual_information(scores)
    assert truth > math.log(8)
    assert estimate.nats <= math.log(8) + 1e-12
    assert estimate.saturated


def test_invariant_to_permuting_contexts():
    scores, _ = gaussian_channel_scores(32, 3, snr=2.0, seed=4)
    perm = np.random.default_rng(0).permutation(32)
    permuted = scores[perm][:, :, perm]
    a = mc_mutual_information(scores)
    b = mc_mutual_information(permuted)
    assert a.nats == pytest.approx(b.nats, abs=1e-12)
    np.testing.assert_allclose(a.per_sample[perm], b.per_sample, atol=1e-12)


def test_invariant_to_constant_shift_of_one_compression():
    scores, _ = gaussian_channel_scores(32, 3, snr=2.0, seed=4)
    shifted = scores.copy()
    shifted[5, 1, :] += 123.0
    shifted[9, 0, :] -= 40.0
    np.testing.assert_allclose(pointwise_terms(scores), pointwise_terms(shifted), atol=1e-9)


def test_two_dimensional_input_means_one_sample():
    scores, _ = gaussian_channel_scores(16, 1, snr=1.0, seed=0)
    a = mc_mutual_information(scores[:, 0, :])
    b = mc_mutual_information(scores)
    assert a.n_samples == 1
    assert a.nats == pytest.approx(b.nats)


def test_neg_inf_off_diagonal_is_exact():
    with np.errstate(divide="ignore"):
        scores = np.log(np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.5, 0.5]]))
    terms = pointwise_terms(scores)
    expected = [math.log(3.0), math.log(1.5), math.log(1.5)]
    np.testing.assert_allclose(terms[:, 0], expected)


def test_ci_is_reproducible_and_ordered():
    scores, _ = symmetric_channel_scores(64, 2, symbols=4, error=0.3, seed=1)
    a = mc_mutual_information(scores, seed=9)
    b = mc_mutual_information(scores, seed=9)
    assert a.ci_nats == b.ci_nats
    assert a.ci_nats[0] <= a.nats <= a.ci_nats[1]
    assert a.ci_bits[1] == pytest.approx(a.ci_nats[1] / math.log(2))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((3, 2, 4)), "shape"),
        (np.zeros((1, 1, 1)), "at least 2 contexts"),
        (np.array([[0.0, np.nan], [0.0, 0.0]]), "NaN"),
        (np.array([[0.0, np.inf], [0.0, 0.0]]), r"\+inf"),
        (np.array([[-np.inf, 0.0], [0.0, 0.0]]), "cannot have zero probability"),
        (np.zeros((0, 0)), "empty"),
        ([["a", "b"], ["c", "d"]], "numeric"),
    ],
)
def test_bad_input_says_what_to_fix(bad, message):
    with pytest.raises(ValueError, match=message):
        mc_mutual_information(bad)


def test_bad_confidence():
    with pytest.raises(ValueError, match="confidence"):
        mc_mutual_information(np.zeros((2, 2)), confidence=1.0)


def test_bit_efficiency_uses_mean_length():
    scores = np.where(np.eye(4, dtype=bool), 0.0, -np.inf)
    estimate = mc_mutual_information(scores)
    assert bit_efficiency(estimate, [2, 6]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="positive"):
        bit_efficiency(estimate, [0, 0])
    with pytest.raises(ValueError, match="NaN"):
        bit_efficiency(estimate, [np.nan])


finite_scores = st.integers(min_value=2, max_value=7).flatmap(
    lambda n: st.integers(min_value=1, max_value=3).flatmap(
        lambda m: arrays(
            np.float64,
            (n, m, n),
            elements=st.floats(min_value=-200.0, max_value=0.0, allow_nan=False),
        )
    )
)


@settings(max_examples=200, deadline=None)
@given(finite_scores)
def test_estimate_bounded_by_zero_and_log_n(scores):
    estimate = mc_mutual_information(scores, n_bootstrap=50)
    n = scores.shape[0]
    assert 0.0 <= estimate.nats <= math.log(n) + 1e-12
    assert estimate.raw_nats <= math.log(n) + 1e-12
    assert (estimate.per_sample <= math.log(n) + 1e-9).all()
    assert estimate.nats == pytest.approx(max(estimate.per_sample.mean(), 0.0))
    assert 0.0 <= estimate.ci_nats[0] <= estimate.ci_nats[1] <= math.log(n) + 1e-12
    assert estimate.saturated == (estimate.nats >= math.log(n) - SATURATION_MARGIN_NATS)


@settings(max_examples=100, deadline=None)
@given(finite_scores, st.floats(min_value=-50.0, max_value=50.0))
def test_pointwise_terms_ignore_per_compression_constants(scores, shift):
    shifted = scores + shift
    np.testing.assert_allclose(pointwise_terms(scores), pointwise_terms(shifted), atol=1e-8)

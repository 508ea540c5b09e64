"""ROC AUC with its clustered bootstrap interval, and relevant-information PMI."""

import math

import numpy as np
import pytest
from ib_estimators import relevant_pmi, roc_auc

# --- roc_auc ---------------------------------------------------------------------------------


def test_perfect_separation_is_one():
    estimate = roc_auc([0.9, 0.8, 0.3, 0.1], [True, True, False, False])
    assert estimate.auc == 1.0
    assert (estimate.n_positive, estimate.n_negative) == (2, 2)


def test_inverse_separation_is_zero():
    assert roc_auc([0.1, 0.3, 0.8, 0.9], [True, True, False, False]).auc == 0.0


def test_ties_count_one_half():
    assert roc_auc([0.5, 0.5, 0.5, 0.5], [True, False, True, False]).auc == 0.5
    # Of the four positive-negative pairs, one is tied: (1 + 1 + 0.5 + 1) / 4.
    assert roc_auc([0.9, 0.2, 0.2, 0.1], [True, True, False, False]).auc == pytest.approx(0.875)


def test_minus_infinity_ranks_below_everything():
    estimate = roc_auc([-np.inf, 0.5, 0.9, -np.inf], [False, True, True, False])
    assert estimate.auc == 1.0
    assert roc_auc([-np.inf, -3.0], [True, False]).auc == 0.0
    assert roc_auc([-np.inf, -np.inf], [True, False]).auc == 0.5
    assert roc_auc([np.inf, -np.inf], [True, False]).auc == 1.0
    assert not math.isnan(estimate.ci_low)


def test_nan_scores_are_rejected():
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([0.1, float("nan")], [True, False])


@pytest.mark.parametrize(
    ("scores", "labels", "options", "message"),
    [
        ([0.1, 0.2], [True], {}, "same length"),
        ([[0.1, 0.2]], [[True, False]], {}, "1-D"),
        ([0.1, 0.2], [True, False], {"confidence": 1.0}, "confidence"),
        ([0.1, 0.2], [True, False], {"groups": ["a"]}, "one entry per score"),
    ],
)
def test_bad_arguments_are_rejected(scores, labels, options, message):
    with pytest.raises(ValueError, match=message):
        roc_auc(scores, labels, **options)


def test_one_class_only_has_no_auc():
    estimate = roc_auc([0.1, 0.2, 0.3], [True, True, True])
    assert math.isnan(estimate.auc)
    assert math.isnan(estimate.ci_low)
    assert math.isnan(estimate.ci_high)
    assert estimate.n_negative == 0


def test_interval_contains_the_point_and_is_reproducible():
    rng = np.random.default_rng(1)
    labels = rng.random(80) < 0.5
    scores = labels * 0.8 + rng.normal(size=80)
    estimate = roc_auc(scores, labels, n_bootstrap=300, seed=3)
    assert 0.5 < estimate.auc < 1.0
    assert estimate.ci_low <= estimate.auc <= estimate.ci_high
    assert estimate.ci_low < estimate.ci_high
    assert roc_auc(scores, labels, n_bootstrap=300, seed=3) == estimate
    narrow = roc_auc(scores, labels, n_bootstrap=300, seed=3, confidence=0.5)
    assert estimate.ci_low <= narrow.ci_low <= narrow.ci_high <= estimate.ci_high


def test_bootstrap_resamples_groups_not_items():
    scores = [0.9, 0.4, 0.7, 0.2, 0.6, 0.5, 0.3, 0.8]
    labels = [True, False, True, False, False, True, False, True]
    by_item = roc_auc(scores, labels, n_bootstrap=200)
    assert by_item.ci_low < by_item.ci_high
    # One group: every draw takes all of it, so the interval is the point.
    single = roc_auc(scores, labels, groups=["page"] * 8, n_bootstrap=200)
    assert single.auc == by_item.auc
    assert single.ci_low == single.ci_high == single.auc
    # Two groups that each separate perfectly: every draw separates perfectly too.
    scores = [0.9, 0.1, 0.8, 0.2]
    grouped = roc_auc(scores, [True, False, True, False], groups=["a", "a", "b", "b"])
    assert (grouped.auc, grouped.ci_low, grouped.ci_high) == (1.0, 1.0, 1.0)


# --- relevant_pmi ----------------------------------------------------------------------------


def test_relevant_pmi_sums_the_token_gains():
    estimate = relevant_pmi([-0.5, -0.5, -1.0], [-3.0, -2.0, -1.0])
    assert estimate.nats == pytest.approx(4.0)
    assert estimate.bits == pytest.approx(4.0 / math.log(2))
    assert estimate.n_tokens == 3
    assert estimate.surprisal_nats == pytest.approx(6.0)
    assert estimate.upper_bound_nats == pytest.approx(6.0)
    np.testing.assert_allclose(estimate.per_token_nats, [2.5, 1.5, 0.0])


def test_relevant_pmi_fraction_of_the_surprisal_explained():
    assert relevant_pmi([-0.5, -0.5], [-3.0, -2.0]).fraction == pytest.approx(0.8)
    assert relevant_pmi([-3.0, -2.0], [-3.0, -2.0]).fraction == 0.0
    assert relevant_pmi([-4.0], [-2.0]).fraction == pytest.approx(-1.0)  # z misleads
    assert relevant_pmi([0.0], [0.0]).fraction == 0.0  # nothing to explain


@pytest.mark.parametrize(
    ("with_compression", "without_compression", "message"),
    [
        ([-1.0, -2.0], [-1.0], "same tokens"),
        ([], [], "empty"),
        ([float("nan")], [-1.0], "NaN"),
        ([-1.0], [-np.inf], "-inf"),
    ],
)
def test_relevant_pmi_rejects_bad_log_probabilities(with_compression, without_compression, message):
    with pytest.raises(ValueError, match=message):
        relevant_pmi(with_compression, without_compression)

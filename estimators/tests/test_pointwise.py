import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ib_estimators import contrastive_pmi, cxmi


def test_contrastive_pmi_caps_at_log_k_plus_one():
    estimate = contrastive_pmi(-1.0, [-np.inf, -np.inf, -np.inf], n_tokens=8)
    assert estimate.nats == pytest.approx(math.log(4))
    assert estimate.upper_bound_nats == pytest.approx(math.log(4))
    assert estimate.bits_per_token == pytest.approx(2.0 / 8)
    assert estimate.saturated


def test_contrastive_pmi_zero_when_references_agree():
    estimate = contrastive_pmi(-5.0, [-5.0, -5.0], n_tokens=3)
    assert estimate.nats == pytest.approx(0.0)
    assert not estimate.saturated


def test_contrastive_pmi_clips_negative():
    estimate = contrastive_pmi(-10.0, [-1.0, -2.0], n_tokens=3)
    assert estimate.nats == 0.0


@pytest.mark.parametrize(
    ("own", "refs", "tokens", "message"),
    [
        (float("nan"), [-1.0], 1, "NaN"),
        (-np.inf, [-1.0], 1, "-inf"),
        (-1.0, [], 1, "empty"),
        (-1.0, [np.inf], 1, r"\+inf"),
        (-1.0, [-1.0], 0, "n_tokens"),
    ],
)
def test_contrastive_pmi_bad_input(own, refs, tokens, message):
    with pytest.raises(ValueError, match=message):
        contrastive_pmi(own, refs, n_tokens=tokens)


def test_cxmi_per_token_and_spans():
    with_context = [-0.5, -0.1, -4.0, -3.0, -0.2, -6.0]
    without_context = [-3.0, -2.0, -1.0, -1.0, -2.0, -1.0]
    estimate = cxmi(with_context, without_context)
    np.testing.assert_allclose(estimate.per_token_nats, [2.5, 1.9, -3.0, -2.0, 1.8, -5.0])
    assert estimate.nats == pytest.approx(-3.8)
    assert estimate.bits == pytest.approx(-3.8 / math.log(2))
    assert estimate.bits_per_token == pytest.approx(estimate.bits / 6)
    assert estimate.unsupported_spans == ((2, 4), (5, 6))
    assert estimate.unsupported_fraction == pytest.approx(0.5)
    assert estimate.upper_bound_nats is None
    assert not estimate.saturated


def test_cxmi_rejects_mismatch_and_nan():
    with pytest.raises(ValueError, match="same tokens"):
        cxmi([-1.0, -2.0], [-1.0])
    with pytest.raises(ValueError, match="NaN"):
        cxmi([-1.0, float("nan")], [-1.0, -1.0])
    with pytest.raises(ValueError, match="empty"):
        cxmi([], [])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=-30.0, max_value=0.0), min_size=1, max_size=40).flatmap(
        lambda a: st.tuples(
            st.just(a),
            st.lists(st.floats(min_value=-30.0, max_value=0.0), min_size=len(a), max_size=len(a)),
        )
    )
)
def test_cxmi_contributions_sum_and_spans_cover_negatives(pair):
    with_context, without_context = pair
    estimate = cxmi(with_context, without_context)
    assert estimate.nats == pytest.approx(float(np.sum(estimate.per_token_nats)))
    covered = np.zeros(len(with_context), dtype=bool)
    for start, end in estimate.unsupported_spans:
        assert start < end
        covered[start:end] = True
    np.testing.assert_array_equal(covered, estimate.per_token_nats < 0)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(min_value=-100.0, max_value=0.0),
    st.lists(st.floats(min_value=-100.0, max_value=0.0), min_size=1, max_size=30),
)
def test_contrastive_pmi_bounds(own, refs):
    estimate = contrastive_pmi(own, refs, n_tokens=5)
    assert 0.0 <= estimate.nats <= math.log(len(refs) + 1) + 1e-12

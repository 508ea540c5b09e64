"""Calibration with the relevance gate, cross-validation and the routing evaluation (pure)."""

from __future__ import annotations

import json

import pytest

from ib_middleware.judging import routing
from ib_middleware.lab.calibration import (
    CaseRecord,
    RungOutcome,
    assign_folds,
    build_policy,
    cross_validate,
    evaluate_routes,
    fit_point,
    gate_grid,
    length_routing,
    load_records,
    quantile_grid,
    quantile_thresholds,
    random_routing,
    route_case,
    route_cases,
    save_records,
    select_point,
    simulate,
    summarise_rungs,
    sweep,
)
from ib_middleware.lab.calibration import crossval as crossval_module
from ib_middleware.lab.calibration import simulation as simulation_module
from ib_middleware.policy import CurvePoint, Policy


def case(
    case_id,
    *rungs,
    fallback=True,
    needs=True,
    group="",
    tokens=100,
    note=5,
):
    """rungs: (bits, correct, output_tokens, query_fraction) tuples; None bits: failed."""
    outcomes = tuple(
        RungOutcome(bits, correct, out if bits is not None else None, None, fraction)
        for bits, correct, out, fraction in rungs
    )
    return CaseRecord(case_id, tokens, fallback, outcomes, needs, group, note)


# The gate ------------------------------------------------------------------------------------

# Rung 0 (query fraction after the signal):
#   ev_good: evidence kept, explains much of the query         -> accepted, correct
#   ev_lost: evidence case, explains little of the query       -> pruned with a gate: a loss
#   distractor: nothing the query needs, explains little       -> pruned with a gate: correct
#               (the measuring code labels every route of a distractor correct)
#   ev_weak: evidence case, low signal                          -> escalates, falls back
GATED = [
    case("ev_good", (0.9, True, 10, 0.6)),
    case("ev_lost", (0.8, True, 10, 0.05)),
    case("distractor", (0.7, True, 10, 0.02), needs=False, note=8),
    case("ev_weak", (0.1, False, 10, 0.5)),
]


def test_the_gate_prunes_a_distractor_rightly_and_an_evidence_case_wrongly():
    assert route_cases(GATED, [0.5], prune_below=0.1) == [0, "pruned", "pruned", None]
    point = simulate(GATED, [0.5], prune_below=0.1)
    assert point.pruned_rate == 0.5
    assert point.fallback_rate == 0.25
    # ev_lost is the only wrong route: the distractor's pruning is right.
    assert point.distortion == pytest.approx(0.25)
    # Three cases need evidence; ev_lost lost it.
    assert point.containment == pytest.approx(2 / 3)
    # Tokens: 10 (accepted) + 5 and 8 (notes) + 100 (fallback) over 400.
    assert point.forwarded_token_fraction == pytest.approx(123 / 400)
    assert point.prune_below == 0.1


def test_without_a_gate_nothing_is_pruned():
    point = simulate(GATED, [0.5])
    assert route_cases(GATED, [0.5]) == [0, 0, 0, None]
    assert point.pruned_rate == 0.0
    assert point.containment == 1.0
    assert point.distortion == 0.0
    assert point.forwarded_token_fraction == pytest.approx(130 / 400)


def test_the_replay_calls_the_run_time_rule(monkeypatch):
    calls = []

    def spy(value, fraction, threshold, prune_below):
        calls.append((value, fraction, threshold, prune_below))
        return routing.route_action(value, fraction, threshold, prune_below)

    monkeypatch.setattr(simulation_module, "route_action", spy)
    route_cases(GATED, [0.5], prune_below=0.1)
    assert calls[0] == (0.9, 0.6, 0.5, 0.1)
    assert len(calls) == 4


def test_a_failed_rung_is_skipped_not_pruned_and_the_next_rung_decides():
    row = case("a", (None, False, 0, 0.0), (0.9, True, 20, 0.01), needs=False)
    assert route_case(row, [0.5, 0.5], 0.1) == "pruned"
    assert route_case(row, [0.5, 0.5]) == 1
    failed_only = case("b", (None, False, 0, 0.0))
    assert route_case(failed_only, [0.0], 0.5) is None


def test_summarise_rungs_counts_pruned_cases():
    [summary] = summarise_rungs(GATED, ["r0"], [0.5], prune_below=0.1)
    assert (summary.accepted, summary.pruned) == (1, 2)


# Thresholds on the cases that reach a rung -----------------------------------------------------

REACH = [
    case("a", (0.9, True, 10, None), (10.0, True, 20, None)),
    case("b", (0.9, True, 10, None), (10.0, True, 20, None)),
    case("c", (0.1, False, 10, None), (0.2, True, 20, None)),
    case("d", (0.1, False, 10, None), (0.4, True, 20, None)),
]


def test_rung_thresholds_are_fitted_on_the_cases_that_reach_the_rung():
    # Rung 0's median is 0.5: a and b are accepted there. Rung 1's median is over c and d
    # only (0.3), not over all four (5.2).
    assert quantile_thresholds(REACH, 0.5) == pytest.approx([0.5, 0.3])


def test_cases_pruned_at_an_earlier_rung_do_not_reach_the_next():
    rows = [
        case("a", (0.1, True, 10, 0.01), (10.0, True, 20, None), needs=False),
        case("b", (0.2, False, 10, 0.5), (0.2, True, 20, None)),
        case("c", (0.3, False, 10, 0.5), (0.4, True, 20, None)),
        case("d", (0.9, True, 10, 0.5), (50.0, True, 20, None)),
        case("e", (0.95, True, 10, 0.5), (50.0, True, 20, None)),
    ]
    # q = 0.75: rung 0's threshold is 0.9 (d and e accepted); a, b, c reach rung 1.
    assert quantile_thresholds(rows, 0.75) == pytest.approx([0.9, 5.2])
    # With the gate a is pruned at rung 0: rung 1's quantile is over b and c.
    assert quantile_thresholds(rows, 0.75, prune_below=0.1) == pytest.approx([0.9, 0.35])


def test_the_gate_grid_comes_from_rung_zero_query_fractions():
    assert gate_grid(GATED, [0.0, 0.5, 1.0]) == [None, 0.02, pytest.approx(0.275), 0.6]
    assert gate_grid(REACH) == [None]  # no query fraction measured: no gate to calibrate


def test_the_sweep_is_the_cross_product_of_gates_and_quantiles():
    grid = gate_grid(GATED, [0.0, 0.5])
    curve = sweep(GATED, quantile_grid(3), grid)
    assert len(curve) == 3 * 3
    assert [p.prune_below for p in curve[:3]] == [None, None, None]
    assert {p.prune_below for p in curve[3:]} == set(grid[1:])


def test_a_distortion_target_picks_the_fewest_forwarded_tokens():
    def at(q, fallback, pruned, distortion, forwarded):
        return CurvePoint(
            quantile=q,
            thresholds=[q],
            fallback_rate=fallback,
            distortion=distortion,
            forwarded_token_fraction=forwarded,
            pruned_rate=pruned,
        )

    curve = [
        at(0.1, 0.1, 0.0, 0.05, 0.5),
        at(0.2, 0.3, 0.5, 0.05, 0.2),
        at(0.3, 0.0, 0.0, 0.3, 0.1),
    ]
    selection = select_point(curve, "distortion", 0.1)
    assert selection.point.quantile == 0.2  # not the lowest fallback rate: the fewest tokens
    assert selection.target_met
    assert "fewest forwarded tokens" in selection.note


def test_fit_point_finds_the_gate_when_it_saves_tokens():
    _, chosen = fit_point(
        GATED * 2, target_kind="distortion", target_value=0.3, quantiles=quantile_grid(5)
    )
    assert chosen.point.prune_below is not None
    assert chosen.point.pruned_rate > 0


# Cross-validation ------------------------------------------------------------------------------


def signal_case(case_id, bits, correct, group=""):
    return case(case_id, (bits, correct, 10, None), group=group)


# In-sample, a threshold between 0.85 and 0.9 keeps the odd case x (high signal, wrong) out.
# Held out, x is routed by thresholds fitted without it, which accept everything above 0.2.
ODD = [
    signal_case("lo1", 0.1, False),
    signal_case("lo2", 0.2, False),
    signal_case("hi1", 0.8, True),
    signal_case("hi2", 0.9, True),
    signal_case("x", 0.85, False),
]


def test_cross_validation_differs_from_in_sample_when_a_case_is_odd():
    target = {"target_kind": "distortion", "target_value": 0.0, "quantiles": quantile_grid(21)}
    _, in_sample = fit_point(ODD, **target)
    assert in_sample.point.distortion == 0.0
    cv = cross_validate(ODD, **target, folds=5)
    assert cv.folds == 5
    assert cv.routes[4] == 0  # x accepted by the fit that never saw it: wrong
    assert simulate(ODD, in_sample.point.thresholds).distortion == 0.0
    assert evaluate_routes(ODD, cv.routes, bootstrap=0).distortion > 0.0


def test_a_held_out_case_never_fits_its_own_thresholds(monkeypatch):
    seen = []
    original = crossval_module.fit_point

    def spy(records, **kwargs):
        seen.append({record.case_id for record in records})
        return original(records, **kwargs)

    monkeypatch.setattr(crossval_module, "fit_point", spy)
    rows = [signal_case(f"c{i}", i / 10, i % 3 != 0, group=f"g{i // 2}") for i in range(10)]
    cv = cross_validate(
        rows, target_kind="fallback", target_value=0.5, quantiles=quantile_grid(5), folds=3
    )
    assert len(seen) == 3
    for fold, trained_on in enumerate(seen):
        held_out = {r.case_id for r, f in zip(rows, cv.fold_of, strict=True) if f == fold}
        assert held_out
        assert not trained_on & held_out
        assert trained_on | held_out == {r.case_id for r in rows}


def test_folds_keep_groups_together_and_are_seeded():
    rows = [signal_case(f"c{i}", 0.5, True, group=f"g{i % 4}") for i in range(12)]
    folds = assign_folds(rows, 3, seed=1)
    for group in {r.group for r in rows}:
        assert len({f for r, f in zip(rows, folds, strict=True) if r.group == group}) == 1
    assert set(folds) == {0, 1, 2}
    assert assign_folds(rows, 3, seed=1) == folds
    ungrouped = [signal_case(f"c{i}", 0.5, True) for i in range(30)]
    assert assign_folds(ungrouped, 3, seed=1) != assign_folds(ungrouped, 3, seed=2)


@pytest.mark.parametrize(
    ("folds", "reason"), [(1, "at least 2 folds"), (6, "too few groups (5) for 6 folds")]
)
def test_too_few_folds_or_groups_fall_back_to_in_sample(folds, reason):
    cv = cross_validate(
        ODD, target_kind="fallback", target_value=0.5, quantiles=quantile_grid(5), folds=folds
    )
    assert cv.folds is None
    assert reason in cv.note
    assert cv.note.startswith("in-sample")
    [fit] = cv.fits
    assert list(cv.routes) == route_cases(ODD, fit.point.thresholds)


# The baselines ---------------------------------------------------------------------------------

BASE = [
    case("a", (0.9, True, 20, 0.5), tokens=100, note=4),
    case("b", (0.8, False, 30, 0.5), tokens=200, note=4),
    case("c", (None, False, 0, None), tokens=300, note=4),  # invalid at rung 0: full
    case("d", (0.2, True, 10, 0.01), tokens=400, note=4, needs=False),
]


@pytest.mark.parametrize("pruned_rate", [0.0, 0.25])
@pytest.mark.parametrize("target", [400.0, 700.0])
def test_random_routing_spends_the_policy_tokens_in_expectation(pruned_rate, target):
    router = random_routing(BASE, pruned_rate=pruned_rate, forwarded_tokens=target)
    full, compressed, notes = 1000.0, 20 + 30 + 300 + 10, 16.0
    p_c = router.compressed_rate
    expected = pruned_rate * notes + p_c * compressed + (1 - pruned_rate - p_c) * full
    assert expected == pytest.approx(target)
    assert router.forwarded_fraction == pytest.approx(target / full)
    # Containment is the expectation over the three evidence cases (a, b, c).
    compress_right, full_right = 2 / 3, 1.0  # c's compression is invalid: full, right
    assert router.containment == pytest.approx(
        p_c * compress_right + (1 - pruned_rate - p_c) * full_right
    )


def test_random_routing_clips_to_what_is_feasible():
    router = random_routing(BASE, pruned_rate=0.0, forwarded_tokens=10.0)
    assert router.compressed_rate == 1.0
    assert router.forwarded_fraction == pytest.approx(360 / 1000)


def test_length_routing_compresses_the_longest_first_at_most_the_policy_tokens():
    # Longest first: d (400 -> 10), c (invalid: stays 300), b (200 -> 30), a (100 -> 20).
    router = length_routing(BASE, forwarded_tokens=700.0)
    assert router.compressed_rate == 0.25  # d alone: 610 <= 700
    assert router.forwarded_fraction == pytest.approx(0.61)
    assert router.containment == 1.0  # a, b, c forwarded in full
    router = length_routing(BASE, forwarded_tokens=450.0)
    assert router.compressed_rate == 0.75  # d, c, b: 440
    assert router.containment == pytest.approx(2 / 3)  # b's compression lost the answer
    router = length_routing(BASE, forwarded_tokens=100.0)  # out of reach: all compressed
    assert router.compressed_rate == 1.0
    assert router.forwarded_fraction == pytest.approx(0.36)


def grouped_table(n=40):
    rows = []
    for i in range(n):
        good = i % 3 != 0
        rows.append(
            case(
                f"c{i}",
                (0.2 + 0.6 * good + 0.01 * (i % 5), good, 15, 0.5),
                group=f"g{i // 2}",
                tokens=100 + 10 * (i % 7),
            )
        )
        if i % 4 == 0:
            rows.append(
                case(f"d{i}", (0.5, True, 15, 0.01), needs=False, group=f"g{i // 2}", note=6)
            )
    return rows


def test_the_evaluation_compares_the_policy_with_the_baselines_and_bounds_it():
    rows = grouped_table()
    cv = cross_validate(
        rows, target_kind="distortion", target_value=0.05, quantiles=quantile_grid(11), folds=4
    )
    result = evaluate_routes(rows, cv.routes, bootstrap=300, seed=3)
    assert result.n_groups == 20
    assert result.n_needs_evidence == 40
    policy = result.policy
    assert policy.containment_ci[0] <= policy.containment <= policy.containment_ci[1]
    low, high = policy.forwarded_fraction_ci
    assert low <= policy.forwarded_fraction <= high
    assert result.gain_over_random_ci[0] <= result.gain_over_random <= result.gain_over_random_ci[1]
    assert result.gain_over_random == pytest.approx(policy.containment - result.random.containment)
    assert result.random.forwarded_fraction == pytest.approx(policy.forwarded_fraction)
    assert result.length.forwarded_fraction <= policy.forwarded_fraction + 1e-12
    assert result.never_compress.forwarded_fraction == 1.0
    assert result.never_compress.containment == 1.0
    assert result.always_compress.containment == pytest.approx(26 / 40)
    # The signal separates the good compressions: the policy beats random routing.
    assert result.gain_over_random > 0
    assert policy.pruned_rate > 0  # the distractors: a note is cheaper than a compression
    again = evaluate_routes(rows, cv.routes, bootstrap=300, seed=3)
    assert again == result
    assert evaluate_routes(rows, cv.routes, bootstrap=0).policy.containment_ci is None


def test_the_policy_records_the_cross_validated_figures_and_round_trips(tmp_path):
    rows = grouped_table()
    policy, selection = build_policy(
        rows,
        rung_names=["segments"],
        estimator="relevant_pmi",
        scorer="fake",
        judge="facts",
        target_kind="distortion",
        target_value=0.05,
        grid_points=11,
        folds=4,
        bootstrap=200,
        reproduce="ib-middleware calibrate --data x --target-distortion 0.05",
    )
    assert policy.folds == 4
    assert policy.prune_below == selection.point.prune_below
    assert policy.thresholds() == {"segments": selection.point.thresholds[0]}
    evaluation = policy.evaluation
    assert evaluation["folds"] == 4
    assert len(evaluation["fold_fits"]) == 4
    assert evaluation["in_sample"]["distortion"] == selection.point.distortion
    assert policy.containment == evaluation["policy"]["containment"]
    assert policy.forwarded_fraction == evaluation["policy"]["forwarded_fraction"]
    assert policy.pruned_rate + policy.accepted_rate + policy.fallback_rate == pytest.approx(1.0)
    for name in ("containment_ci", "forwarded_fraction_ci", "gain_over_random_ci"):
        low, high = getattr(policy, name)
        assert low <= high
    assert set(evaluation) >= {"random", "length", "always_compress", "never_compress"}
    path = policy.save(tmp_path / "policy.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["version"] == 2
    for field in (
        "prune_below",
        "pruned_rate",
        "accepted_rate",
        "folds",
        "containment",
        "containment_ci",
        "forwarded_fraction",
        "forwarded_fraction_ci",
        "gain_over_random",
        "gain_over_random_ci",
        "evaluation",
    ):
        assert field in raw
    assert Policy.load(path) == policy


def test_build_policy_without_a_gate_grid_calibrates_no_gate():
    policy, _ = build_policy(
        grouped_table(),
        rung_names=["segments"],
        estimator="relevant_pmi",
        scorer="fake",
        judge="facts",
        target_kind="distortion",
        target_value=0.05,
        grid_points=5,
        bootstrap=0,
        prune_grid=[None],
    )
    assert policy.prune_below is None
    assert policy.pruned_rate == 0.0
    assert policy.containment_ci is None
    assert len(policy.curve) == 5


def test_the_measured_table_round_trips_through_its_file(tmp_path):
    rows = grouped_table(6)
    assert load_records(save_records(tmp_path / "table.jsonl", rows)) == rows
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"case_id": "a"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: not a measured case"):
        load_records(bad)


def test_a_gate_that_loses_evidence_on_held_out_cases_is_not_shipped():
    # In-sample a gate just under the odd case's query fraction prunes only distractors;
    # held out, the odd case meets a gate fitted without it, is pruned, and the target is lost.
    table = []
    for index in range(10):
        table.append(case(f"e{index}", (0.9, True, 10, 0.5), group=f"g{index}"))
        table.append(case(f"d{index}", (0.9, True, 10, 0.02), needs=False, group=f"g{index}"))
    table.append(case("odd", (0.9, True, 10, 0.03), group="odd"))
    options = {
        "rung_names": ["segments"],
        "estimator": "relevant_pmi",
        "scorer": "fake",
        "judge": "facts",
        "target_kind": "distortion",
        "target_value": 0.01,
        "grid_points": 5,
        "bootstrap": 0,
    }
    policy, _ = build_policy(table, **options)
    rejected = policy.evaluation["gate_rejected"]
    assert rejected["prune_below"] == pytest.approx(0.03)
    assert rejected["cross_validated_distortion"] > 0.01
    assert policy.prune_below is None
    assert policy.pruned_rate == 0.0
    assert policy.distortion <= 0.01

"""Calibration v3: grouping by question and document, nested CV without leaks, the policy."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from calibration_tables import synthetic

from ib_middleware.lab.calibration import (
    CaseRecord,
    Settings,
    assign_folds,
    candidate_grid,
    certified_policy,
    components,
    evaluate_routes,
    fold_group,
    nested_cv,
    route_table,
)
from ib_middleware.lab.calibration import nested as nested_module
from ib_middleware.lab.calibration.grid import PASSED, Candidate
from ib_middleware.lab.calibration.nested import fit, fit_with
from ib_middleware.lab.workloads import WorkloadCase
from ib_middleware.policy import FittedFor


def table_of(rows):
    grid, _ = candidate_grid(rows)
    return route_table(rows, grid)


def test_components_join_questions_that_share_a_document():
    rows = [
        CaseRecord("a", 1, True, (), group="question:1|document:A"),
        CaseRecord("b", 1, True, (), group="question:2|document:A"),
        CaseRecord("c", 1, True, (), group="question:2|document:B"),
        CaseRecord("d", 1, True, (), group="question:3|document:C"),
        CaseRecord("e", 1, True, (), group="document:B"),
        CaseRecord("f", 1, True, ()),  # no group: alone
    ]
    assert components(rows) == [0, 0, 0, 1, 0, 2]


def test_folds_never_split_a_question_or_a_document():
    rows = synthetic()
    for seed in range(5):
        fold = assign_folds(rows, 5, seed=seed)
        owner: dict[str, int] = {}
        for row, f in zip(rows, fold, strict=True):
            for key in row.group.split("|"):
                assert owner.setdefault(key, f) == f, f"{key} on both sides"
        sizes = np.bincount(fold)
        assert sizes.min() >= 0.5 * sizes.max(), "folds of comparable size"


def test_a_distractor_page_goes_with_its_document_not_its_question():
    page = WorkloadCase("x", "q", "a", "q1/page", group="q1", document="3M_2018_10K")
    other = WorkloadCase(
        "y", "q", "", "q1/distractor", False, "q1", variant="distractor", document="AMD_2019"
    )
    assert fold_group(page) == "question:q1|document:3M_2018_10K"
    assert fold_group(other) == "document:AMD_2019"


def test_a_passthrough_case_is_never_compressed_and_never_loses():
    rows = synthetic(passthrough_share=1.0)
    table = table_of(rows)
    passing = [i for i, r in enumerate(rows) if r.passthrough]
    assert passing
    assert (table.codes[passing] == PASSED).all()
    assert not table.loss[passing].any()
    assert (table.tokens[passing] == 500).all(), "it forwards its whole text"


def test_the_candidates_are_fixed_numbers_and_start_safe():
    rows = synthetic()
    grid, how = candidate_grid(rows)
    assert how == "fixed share"
    assert grid[0] == Candidate(math.inf, None), "the first tested candidate accepts nothing"
    assert {c.prune_below for c in grid} == {None, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2}
    # A signal that is not a share (a retention ratio above 1) gets the wide grid, the same
    # numbers whatever the table: nothing of the data but its range chose them.
    wider = [dataclasses.replace(r, rungs=(dataclasses.replace(r.rungs[0], bits_per_token=1.7),
                                           *r.rungs[1:])) for r in rows]  # fmt: skip
    wide, how = candidate_grid(wider)
    assert how == "fixed wide"
    thresholds = [c.threshold for c in wide if c.prune_below is None]
    assert thresholds[:3] == [math.inf, 4.0, 3.95]
    assert thresholds[-1] == -math.inf


def test_the_inner_loop_never_sees_the_outer_fold(monkeypatch):
    rows = synthetic()
    table = table_of(rows)
    settings = Settings(outer_folds=5, inner_folds=3)
    seen: list[set[int]] = []
    original = nested_module.fit_with

    def spy(table, index, *args, **kwargs):
        seen[-1].update(int(i) for i in index)
        return original(table, index, *args, **kwargs)

    def outer(table, index, settings, *, seed=0):
        seen.append(set())
        return fit(table, index, settings, seed=seed)

    monkeypatch.setattr(nested_module, "fit_with", spy)
    monkeypatch.setattr(nested_module, "fit", outer)
    run = nested_cv(table, settings, seed=4)
    assert len(seen) == 5
    for fold, touched in enumerate(seen):
        held_out = set(np.flatnonzero(run.fold_of == fold).tolist())
        assert touched, "the procedure fitted something"
        assert not touched & held_out, f"fold {fold}'s cases reached its own fit"


def test_changing_a_held_out_fold_changes_nothing_of_its_routing():
    rows = synthetic()
    table = table_of(rows)
    settings = Settings(outer_folds=5, inner_folds=3)
    before = nested_cv(table, settings, seed=1)
    fold = np.flatnonzero(before.fold_of == 0)
    # Every held-out case of fold 0 now loses its evidence under every candidate.
    table.correct[fold] = False
    table.loss[fold] = True
    after = nested_cv(table, settings, seed=1)
    assert (after.chosen[fold] == before.chosen[fold]).all()


def test_the_guarantee_wins_over_the_target_point():
    rows = synthetic(n_questions=80)
    table = table_of(rows)
    everything = np.arange(len(rows))
    loose = fit_with(table, everything, Settings(alpha=0.05, delta=0.1), 0.5, True)
    assert loose.target_point != loose.candidate, "a 50% distortion target is not certified"
    assert "not certified" in loose.note
    for test in loose.certified.values():
        assert test.valid[loose.candidate]
        assert not test.valid[loose.target_point]
    assert (
        table.candidates[loose.candidate].threshold > table.candidates[loose.target_point].threshold
    )


def test_the_baselines_spend_the_policy_tokens_and_each_rung_stands_alone():
    rows = synthetic()
    table = table_of(rows)
    chosen = fit(table, np.arange(len(rows)), Settings()).candidate
    routes = table.column(np.arange(len(rows)), chosen)
    result = evaluate_routes(rows, routes, bootstrap=0)
    assert result.random.pruned_rate == 0.0
    assert result.random_forced.pruned_rate == result.policy.pruned_rate
    assert len(result.always_rung) == 3
    forwarded = [rung.forwarded_fraction for rung in result.always_rung]
    assert forwarded == sorted(forwarded), "wider rungs forward more"
    assert result.random.forwarded_fraction == pytest.approx(result.policy.forwarded_fraction)


def test_the_certified_policy_reports_heldout_figures_guarantees_and_their_spread():
    rows = synthetic()
    fitted = FittedFor(estimator="relevant_pmi", scorer="fake", ladder=[])
    policy = certified_policy(
        rows,
        rung_names=["tight", "medium", "wide"],
        fitted_for=fitted,
        judge="workload",
        settings=Settings(outer_folds=5, inner_folds=3),
        seeds=20,
        bootstrap=50,
        records_file="policy.records.jsonl",
    )
    assert policy.version == 3
    assert policy.fitted_for == fitted
    assert policy.records == "policy.records.jsonl"
    assert len(set(policy.thresholds().values())) == 1, "one threshold shared by the rungs"
    assert set(policy.guarantee) == {"search_results", "filing_pages"}
    for guarantee in policy.guarantee.values():
        assert (guarantee.alpha, guarantee.delta, guarantee.n) == (0.05, 0.1, 90)
        assert guarantee.observed_loss <= guarantee.bound
        assert "at most 0.05 of cases, with probability at least 0.9" in guarantee.statement
    for name in ("search_results", "filing_pages", "all"):
        shared = policy.workloads[name]["shared"]
        spread = shared["spread"]
        assert spread["seeds"] == 20
        low, mid, high = (spread["containment"][k] for k in ("p5", "median", "p95"))
        assert low <= mid <= high
        assert 0.0 <= spread["guarantee_held_share"] <= 1.0
        assert shared["policy"]["containment_ci"] is not None
    own = policy.workloads["search_results"]["own"]
    assert set(own["transfer"]) == {"filing_pages"}
    assert own["heldout"]["spread"]["seeds"] == 20
    assert policy.evaluation["shipped"]["note"]
    assert Settings().targets() == (0.0125, 0.025, 0.0375, 0.05)


def test_too_few_components_give_in_sample_figures_that_say_so():
    rows = synthetic(n_questions=2)  # 3 components: one shared document, two distractors
    fitted = FittedFor(estimator="relevant_pmi", scorer="fake", ladder=[])
    policy = certified_policy(
        rows,
        rung_names=["a", "b", "c"],
        fitted_for=fitted,
        judge="facts",
        settings=Settings(),
        seeds=3,
        bootstrap=0,
    )
    assert policy.folds is None
    assert policy.evaluation["note"].startswith("in-sample: too few")
    assert not any(g.certified for g in policy.guarantee.values()), "6 cases certify nothing"
    assert max(policy.thresholds().values()) > 1e300, "so the policy accepts nothing"

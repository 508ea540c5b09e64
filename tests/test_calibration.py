"""Calibration: the pure ladder simulation on synthetic tables, selection, loading, measuring."""

from __future__ import annotations

import json
import math

import pytest

from ib_middleware.compressors import ExtractiveCompressor
from ib_middleware.errors import EngineError
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.lab.calibration import (
    CaseRecord,
    LabelledCase,
    RungOutcome,
    build_policy,
    judgeable,
    load_cases,
    measure,
    quantile_grid,
    quantile_thresholds,
    route_cases,
    select_point,
    simulate,
    summarise_rungs,
    sweep,
)
from ib_middleware.lab.data import financebench_path
from ib_middleware.lab.judges import JUDGES, get_judge
from ib_middleware.policy import CurvePoint, Policy
from ib_middleware.stage import CompressionStage
from ib_middleware.testing import FakeScorer


def row(case_id, fallback_correct, *rungs, input_tokens=100):
    """rungs: (bits_per_token, correct) pairs; None bits means a failed rung."""
    outcomes = tuple(
        RungOutcome(bits, correct, output_tokens=None if bits is None else 10)
        for bits, correct in rungs
    )
    return CaseRecord(case_id, input_tokens, fallback_correct, outcomes)


# A two-rung table whose every operating point is worked out by hand below.
# rung 0 bits: 0.1 0.2 0.3 0.4   rung 1 bits: 0.5 0.6 0.7 0.8 (case d's rung 1 failed)
TABLE = [
    row("a", True, (0.1, False), (0.5, True)),
    row("b", True, (0.2, False), (0.6, False)),
    row("c", True, (0.3, True), (0.7, True)),
    row("d", False, (0.4, True), (None, False)),
]


def test_route_cases_takes_the_first_rung_that_clears_its_threshold():
    assert route_cases(TABLE, [0.0, 0.0]) == [0, 0, 0, 0]
    assert route_cases(TABLE, [0.25, 0.45]) == [1, 1, 0, 0]
    assert route_cases(TABLE, [0.25, 0.55]) == [None, 1, 0, 0]
    assert route_cases(TABLE, [0.35, 0.65]) == [None, None, 1, 0]
    assert route_cases(TABLE, [9.0, 9.0]) == [None, None, None, None]


def test_a_failed_rung_is_never_accepted_even_at_minus_infinity():
    assert route_cases(TABLE, [math.inf, -math.inf]) == [1, 1, 1, None]


@pytest.mark.parametrize(
    ("thresholds", "fallback", "distortion", "forwarded"),
    [
        ([0.0, 0.0], 0.0, 0.5, 40 / 400),  # all at rung 0: a, b wrong
        ([0.25, 0.45], 0.0, 0.25, 40 / 400),  # a, b at rung 1 (b wrong), c, d at rung 0
        ([0.25, 0.55], 0.25, 0.25, 130 / 400),  # a falls back, b at rung 1 (wrong)
        ([0.35, 0.65], 0.5, 0.0, 220 / 400),  # a, b fall back (right), c rung 1, d rung 0
        ([9.0, 9.0], 1.0, 0.25, 1.0),  # all fall back: d's context lacks the answer
    ],
)
def test_simulate_known_operating_points(thresholds, fallback, distortion, forwarded):
    point = simulate(TABLE, thresholds, quantile=0.5)
    assert point.fallback_rate == pytest.approx(fallback)
    assert point.distortion == pytest.approx(distortion)
    assert point.forwarded_token_fraction == pytest.approx(forwarded)
    assert point.thresholds == thresholds
    assert point.quantile == 0.5


def test_simulate_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one case"):
        simulate([], [0.1])
    with pytest.raises(ValueError, match="1 thresholds for 2 rungs"):
        simulate(TABLE, [0.1])


def test_quantile_thresholds_per_rung_and_edges():
    # q = 0: rung 0 accepts every case, so none reaches rung 1: its whole distribution is used.
    assert quantile_thresholds(TABLE, 0.0) == pytest.approx([0.1, 0.5])
    # q = 0.5: c and d are accepted at rung 0; rung 1's median is over a and b (0.5, 0.6).
    assert quantile_thresholds(TABLE, 0.5) == pytest.approx([0.25, 0.55])
    top = quantile_thresholds(TABLE, 1.0)
    assert top[0] > 0.4
    assert top[1] > 0.7
    assert top[0] == pytest.approx(0.4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        quantile_thresholds(TABLE, 1.5)


def test_quantile_thresholds_for_a_rung_that_never_produced_a_valid_compression():
    rows = [row("a", True, (None, False)), row("b", True, (None, False))]
    assert quantile_thresholds(rows, 0.3) == [0.0]
    assert simulate(rows, [0.0]).fallback_rate == 1.0


def test_sweep_spans_everything_accepted_to_everything_forwarded():
    curve = sweep(TABLE, quantile_grid(5))
    assert [p.quantile for p in curve] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert curve[0].fallback_rate == 0.0
    assert curve[-1].fallback_rate == 1.0
    assert curve[-1].distortion == pytest.approx(0.25)
    rates = [p.fallback_rate for p in curve]
    assert rates == sorted(rates)


def test_quantile_grid():
    assert quantile_grid(2) == [0.0, 1.0]
    assert len(quantile_grid(21)) == 21
    assert quantile_grid(11)[3] == 0.3
    with pytest.raises(ValueError, match="at least 2"):
        quantile_grid(1)


def point(q, fallback, distortion, forwarded=0.5):
    return CurvePoint(
        quantile=q,
        thresholds=[q],
        fallback_rate=fallback,
        distortion=distortion,
        forwarded_token_fraction=forwarded,
    )


CURVE = [
    point(0.0, 0.0, 0.40, 0.1),
    point(0.2, 0.1, 0.30, 0.2),
    point(0.4, 0.3, 0.20, 0.4),
    point(0.5, 0.3, 0.10, 0.45),
    point(0.6, 0.5, 0.10, 0.6),
    point(1.0, 1.0, 0.05, 1.0),
]


@pytest.mark.parametrize(
    ("kind", "target", "quantile", "met"),
    [
        ("fallback", 0.3, 0.5, True),  # two points at 0.3: lower distortion wins
        ("fallback", 0.22, 0.5, False),  # closest is 0.3
        ("fallback", 0.15, 0.2, False),  # 0.1 is 0.05 away, 0.3 is 0.15 away
        ("fallback", 0.0, 0.0, True),
        ("distortion", 0.2, 0.4, True),  # 0.4, 0.5, 0.6 and 1.0 qualify: 0.4 forwards fewest
        ("distortion", 0.1, 0.5, True),
        ("distortion", 0.35, 0.2, True),
        ("distortion", 0.5, 0.0, True),
        ("distortion", 0.01, 1.0, False),  # unreachable: least distortion, flagged
    ],
)
def test_select_point(kind, target, quantile, met):
    selection = select_point(CURVE, kind, target)
    assert selection.point.quantile == quantile
    assert selection.target_met is met
    if not met and kind == "distortion":
        assert "no operating point" in selection.note


def test_select_point_ties_go_to_fewer_forwarded_tokens():
    curve = [point(0.1, 0.2, 0.1, 0.9), point(0.2, 0.2, 0.1, 0.3)]
    assert select_point(curve, "fallback", 0.2).point.quantile == 0.2
    assert select_point(curve, "distortion", 0.1).point.quantile == 0.2


def test_select_point_needs_a_curve():
    with pytest.raises(ValueError, match="no operating points"):
        select_point([], "fallback", 0.3)


def test_build_policy_round_trips_and_names_its_rungs(tmp_path):
    policy, selection = build_policy(
        TABLE,
        rung_names=["small", "large"],
        estimator="cxmi",
        scorer="scorer-model",
        judge="facts",
        target_kind="distortion",
        target_value=0.0,
        grid_points=5,
        reproduce="ib-middleware calibrate --data x --target-distortion 0",
    )
    assert selection.target_met
    assert policy.distortion == 0.0
    assert policy.fallback_rate == 0.5
    assert set(policy.thresholds()) == {"small", "large"}
    # q = 0.75 is the first grid point with no error: thresholds 0.325 and 0.65.
    assert policy.thresholds() == pytest.approx({"small": 0.325, "large": 0.65})
    assert policy.n_cases == 4
    assert len(policy.curve) == 5
    loaded = Policy.load(policy.save(tmp_path / "policy.json"))
    assert loaded == policy
    assert loaded.reproduce.startswith("ib-middleware calibrate")


def test_build_policy_checks_its_inputs():
    common = {"estimator": "cxmi", "scorer": "s", "judge": "facts", "target_value": 0.1}
    with pytest.raises(ValueError, match="at least one"):
        build_policy([], rung_names=[], target_kind="fallback", **common)
    with pytest.raises(ValueError, match="rung names"):
        build_policy(TABLE, rung_names=["one"], target_kind="fallback", **common)
    with pytest.raises(ValueError, match="target_kind"):
        build_policy(TABLE, rung_names=["a", "b"], target_kind="accuracy", **common)


def test_summarise_rungs():
    small, large = summarise_rungs(TABLE, ["small", "large"], [0.35, 0.65])
    assert (small.valid, small.failed, small.accepted) == (4, 0, 1)
    assert small.accuracy == 0.5
    assert small.accepted_accuracy == 1.0
    assert small.bits_per_token == pytest.approx((0.1, 0.25, 0.4))
    assert (large.valid, large.failed, large.accepted) == (3, 1, 1)
    assert large.accuracy == pytest.approx(2 / 3)


# Loading ------------------------------------------------------------------------------------


def write_lines(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    return path


def test_load_plain_cases(tmp_path):
    path = write_lines(
        tmp_path / "cases.jsonl",
        [
            {"context": "Capex was 1,577.", "query": "capex?", "answer": "$1577.00", "id": "c1"},
            {"context": "Sales rose.", "question": "sales?", "answer": "rose"},
        ],
    )
    first, second = load_cases(path)
    assert first == LabelledCase("Capex was 1,577.", "capex?", "$1577.00", "c1")
    assert second.query == "sales?"
    assert second.case_id == "cases.jsonl:2"


def test_load_financebench_format():
    cases = load_cases(financebench_path())
    assert len(cases) == 75
    assert cases[0].case_id == "financebench_id_03029"
    assert "1,577" in cases[0].context
    multi = next(case for case in cases if "\n\n" in case.context)
    assert multi.context.count("\n\n") >= 1


def test_load_financebench_dedupes_repeated_pages(tmp_path):
    page = {"evidence_text_full_page": "Page one."}
    path = write_lines(
        tmp_path / "fb.jsonl",
        [
            {
                "question": "q",
                "answer": "a",
                "evidence": [page, page, {"evidence_text_full_page": "P2"}],
            }
        ],
    )
    [case] = load_cases(path)
    assert case.context == "Page one.\n\nP2"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json\n", r"bad\.jsonl:1: invalid JSON"),
        ('["a list"]\n', "expected a JSON object"),
        ('{"query": "q", "answer": "a"}\n', "needs `context`"),
        ('{"context": "c", "answer": "a"}\n', "`query` must be a string"),
        ('{"context": "c", "query": "q", "answer": 12}\n', "`answer` must be a string"),
        ('{"question": "q", "answer": "a", "evidence": [{"x": 1}]}\n', "evidence_text_full_page"),
        ("\n\n", "holds no cases"),
    ],
)
def test_load_rejects_malformed_files(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_cases(path)


def test_judgeable_keeps_cases_whose_context_holds_the_answer():
    cases = load_cases(financebench_path())
    usable = judgeable(cases, JUDGES["facts"])
    assert 0 < len(usable) < len(cases)
    assert all(JUDGES["facts"](case.context, case.answer) for case in usable)
    assert len(judgeable(cases, JUDGES["contains"])) < len(usable)


def test_get_judge():
    assert get_judge("contains") is JUDGES["contains"]
    with pytest.raises(ValueError, match="choose one of: contains, exact, facts, numeric, tok"):
        get_judge("llm")


# Measuring ----------------------------------------------------------------------------------

PAGE = (
    "Capital expenditure was $1,577 million in 2018. "
    "The company logo is red. Employees enjoy the cafeteria. The weather was mild. "
    "Offices are open on weekdays. The annual picnic was held in June."
)


def scorer_function(prompt, z):
    return -1.0 if "Document" in prompt else -4.0


def stage_with(*rungs, scorer=None, token_budget=0):
    # A budget of 0: these short pages are measured, not passed through.
    return CompressionStage(
        list(rungs),
        estimator=CXMIEstimator(scorer or FakeScorer(scorer_function)),
        token_budget=token_budget,
    )


def test_measure_labels_every_rung_and_the_fallback():
    stage = stage_with(
        Rung(ExtractiveCompressor(budget_tokens=14), threshold_bits_per_token=9.0),
        Rung(ExtractiveCompressor(budget_tokens=2), threshold_bits_per_token=9.0),
    )
    cases = [
        LabelledCase(PAGE, "What was capital expenditure?", "$1577.00", "capex"),
        LabelledCase(PAGE, "What colour is the logo?", "green", "logo"),
    ]
    seen = []
    records = measure(stage, cases, JUDGES["facts"], on_case=lambda i, r: seen.append(i))
    assert seen == [0, 1]
    capex, logo = records
    assert capex.case_id == "capex"
    assert capex.fallback_correct
    assert not logo.fallback_correct
    assert capex.input_tokens == stage.token_counter.count_tokens(PAGE)
    good, empty = capex.rungs
    assert good.correct
    assert good.bits_per_token is not None
    assert good.bits_per_token > 0
    assert good.error is None
    # A 2-token budget selects nothing: an invalid compression has no estimate.
    assert empty.bits_per_token is None
    assert empty.error == "rejected: empty compression"


def test_measure_records_engine_failures_instead_of_raising():
    scorer = FakeScorer(scorer_function)
    scorer.enqueue(EngineError("scorer died"))
    stage = stage_with(
        Rung(ExtractiveCompressor(budget_tokens=14), threshold_bits_per_token=0), scorer=scorer
    )
    case = LabelledCase(PAGE, "What was capital expenditure?", "$1577.00")
    first, second = measure(stage, [case, case], JUDGES["facts"])
    assert first.rungs[0].bits_per_token is None
    assert first.rungs[0].error == "EngineError: scorer died"
    assert first.rungs[0].correct  # the compression itself was fine
    assert second.rungs[0].bits_per_token is not None
    assert first.case_id == "0"


def test_measure_feeds_the_ladder_simulation_end_to_end():
    stage = stage_with(Rung(ExtractiveCompressor(budget_tokens=14), threshold_bits_per_token=0))
    cases = [
        LabelledCase(PAGE, "What was capital expenditure?", "$1577.00"),
        LabelledCase(PAGE, "When was the picnic?", "June"),
    ]
    records = measure(stage, cases, JUDGES["facts"])
    policy, _ = build_policy(
        records,
        rung_names=[rung.label for rung in stage.rungs],
        estimator=stage.estimator.name,
        scorer="fake-scorer",
        judge="facts",
        target_kind="fallback",
        target_value=0.0,
    )
    assert policy.fallback_rate == 0.0
    assert policy.rungs[0].name == "extractive-14"


@pytest.mark.parametrize("threshold", [0.1, 50.0])
def test_calibration_and_run_time_reach_the_same_verdict(threshold):
    """Calibration measures through the stage's own rung step: same signal, same verdict."""
    stage = stage_with(
        Rung(ExtractiveCompressor(budget_tokens=14), threshold_bits_per_token=threshold)
    )
    stage.token_budget = 0
    case = LabelledCase(PAGE, "What was capital expenditure?", "$1577.00", "capex")
    [record] = measure(stage, [case], JUDGES["facts"])
    [result] = stage.run([case.context], query=case.query)
    [attempt] = result.attempts
    assert record.rungs[0].bits_per_token == pytest.approx(attempt.estimate.bits_per_token)
    calibrated_accepts = record.rungs[0].bits_per_token >= threshold
    assert calibrated_accepts == (result.decision == "accepted")


def test_measure_passes_through_what_the_stage_would_and_runs_no_rung_on_it():
    def scorer(prompt, z):
        raise AssertionError("no rung may score a passthrough case")

    stage = stage_with(
        Rung(ExtractiveCompressor(budget_tokens=14), threshold_bits_per_token=0.0),
        scorer=FakeScorer(scorer),
        token_budget=10_000,
    )
    [record] = measure(stage, [LabelledCase(PAGE, "capex?", "$1577.00")], JUDGES["facts"])
    assert record.passthrough
    assert record.rungs[0].bits_per_token is None
    assert record.rungs[0].error.startswith("passthrough")
    assert route_cases([record], [0.0]) == ["passthrough"]

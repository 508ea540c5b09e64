"""Calibration v3 end to end: what a policy was fitted for, the mismatch error, replays."""

from __future__ import annotations

import dataclasses
import json

import pytest
from calibration_tables import synthetic
from typer.testing import CliRunner

from ib_middleware.build import build_stage, fitted_for
from ib_middleware.compressors import ExtractiveCompressor
from ib_middleware.config import StageConfig
from ib_middleware.errors import PolicyMismatchError
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.lab.calibration import load_meta, load_records, measure, save_records
from ib_middleware.lab.calibration.command import workload_cases
from ib_middleware.lab.cli import app
from ib_middleware.lab.judges import JUDGES
from ib_middleware.lab.workloads import WorkloadCase
from ib_middleware.policy import Policy, PolicyRung
from ib_middleware.registry import register_engine
from ib_middleware.stage import CompressionStage
from ib_middleware.testing import FakeScorer

runner = CliRunner()
SCORER = {"engine": "policy-fake-scorer", "options": {}}
RUNGS = [
    {"name": "tight", "compressor": {"kind": "segments", "budget_tokens": 40}},
    {"name": "wide", "compressor": {"kind": "segments", "budget_tokens": 120}},
]


def score(prompt: str, continuation: str) -> float:
    document = prompt.split("Question:", maxsplit=1)[0]
    return -1.0 if continuation.split(maxsplit=1)[0] in document else -6.0


@pytest.fixture(autouse=True)
def fake_scorer():
    register_engine("policy-fake-scorer", lambda **options: FakeScorer(score))


def v3_policy(tmp_path, config: StageConfig) -> Policy:
    fitted = fitted_for(config, FakeScorer(score))
    policy = Policy(
        version=3,
        estimator=config.estimator.kind,
        scorer=fitted.scorer,
        rungs=[PolicyRung(name=r.name, threshold_bits_per_token=0.7) for r in config.rungs],
        target_kind="distortion",
        target_value=0.05,
        fallback_rate=0.5,
        distortion=0.03,
        judge="workload",
        n_cases=100,
        fitted_for=fitted,
    )
    policy.save(tmp_path / "policy.json")
    return policy


def test_a_policy_applies_to_the_stage_it_was_fitted_for(tmp_path):
    config = StageConfig(rungs=RUNGS, estimator={"scorer": SCORER})
    v3_policy(tmp_path, config)
    stage = build_stage(config.model_copy(update={"policy": tmp_path / "policy.json"}))
    assert [rung.threshold_bits_per_token for rung in stage.rungs] == [0.7, 0.7]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            {"rungs": [RUNGS[0]]},
            "ladder: the policy's rungs ['tight', 'wide'], the stage's ['tight']",
        ),
        (
            {"rungs": [RUNGS[0], {**RUNGS[1], "compressor": {"kind": "segments"}}]},
            "rung 'wide' compressor: budget_tokens 120 -> 200",
        ),
        ({"estimator": {"scorer": SCORER, "kind": "cxmi"}}, "estimator: the policy's"),
        (
            {"estimator": {"scorer": SCORER, "witness": "page"}},
            "witness: the policy's 'segments:3'",
        ),
    ],
)
def test_a_mismatch_is_refused_naming_both_and_the_way_out(tmp_path, change, named):
    config = StageConfig(rungs=RUNGS, estimator={"scorer": SCORER})
    v3_policy(tmp_path, config)
    changed = StageConfig(**{"rungs": RUNGS, "estimator": {"scorer": SCORER}, **change})
    with pytest.raises(PolicyMismatchError) as caught:
        build_stage(changed.model_copy(update={"policy": tmp_path / "policy.json"}))
    message = str(caught.value)
    assert named in message
    assert "policy.json was calibrated for another stage" in message
    assert "policy: null" in message
    assert "ib-middleware calibrate" in message
    # The way out works: no policy, the config's own thresholds.
    assert build_stage(changed.model_copy(update={"policy": None})).rungs


def test_another_scorer_is_refused(tmp_path):
    config = StageConfig(rungs=RUNGS, estimator={"scorer": SCORER})
    policy = v3_policy(tmp_path, config)
    other = policy.model_copy(
        update={"fitted_for": policy.fitted_for.model_copy(update={"scorer": "gemma-3-270m"})}
    )
    other.save(tmp_path / "policy.json")
    with pytest.raises(PolicyMismatchError, match="scorer: the policy's 'gemma-3-270m'"):
        build_stage(config.model_copy(update={"policy": tmp_path / "policy.json"}))


def test_an_older_policy_still_applies_by_rung_name(tmp_path):
    config = StageConfig(rungs=RUNGS, estimator={"scorer": SCORER})
    policy = v3_policy(tmp_path, config).model_copy(update={"fitted_for": None, "version": 2})
    policy.save(tmp_path / "policy.json")
    stage = build_stage(config.model_copy(update={"policy": tmp_path / "policy.json"}))
    assert [rung.threshold_bits_per_token for rung in stage.rungs] == [0.7, 0.7]


def test_measure_marks_what_the_stage_passes_through_and_groups_by_question_and_document():
    stage = CompressionStage(
        [Rung(ExtractiveCompressor(budget_tokens=6), threshold_bits_per_token=0.0)],
        estimator=CXMIEstimator(FakeScorer(score)),
        token_budget=40,
    )
    sentence = "Capex was $1,577 million in 2018. The logo is red and blue and green."
    common = {"query": "capex?", "answer": "", "workload": "search_results", "shape": "items"}
    items = [
        WorkloadCase(
            sentence,
            case_id=f"q1/result/{i}",
            group="q1",
            document=f"T{i}",
            item_index=i,
            n_items=3,
            needed=("Capex was $1,577 million in 2018.",),
            **common,
        )
        for i in range(3)
    ]
    alone = WorkloadCase(sentence, case_id="q2/results", group="q2", document="q2", **common)
    records = measure(stage, [*items, alone], JUDGES["facts"])
    tokens = records[0].input_tokens
    assert tokens <= 40 < 3 * tokens, "each result fits the budget, the tool output does not"
    assert [r.passthrough for r in records] == [False, False, False, True]
    assert records[0].group == "question:q1|document:T0"
    assert records[0].workload == "search_results"
    assert records[0].fallback_correct, "the workload's own judge: the needed sentence"


def test_calibrate_replays_a_table_beside_its_policy(tmp_path):
    rows = [dataclasses.replace(r, rungs=r.rungs[:2]) for r in synthetic()]
    config = StageConfig(rungs=RUNGS, estimator={"scorer": SCORER})
    meta = {"fitted_for": fitted_for(config, FakeScorer(score)).model_dump(mode="json")}
    table = save_records(
        tmp_path / "t.records.jsonl.gz", rows, meta={**meta, "rung_names": ["tight", "wide"]}
    )
    assert load_records(table) == rows
    assert load_meta(table)["rung_names"] == ["tight", "wide"]
    out = tmp_path / "policy.json"
    args = ["calibrate", "--replay", str(table), "--seeds", "3", "--bootstrap", "20"]
    result = runner.invoke(app, [*args, "--inner-folds", "3", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    policy = Policy.load(out)
    assert policy.version == 3
    assert policy.fitted_for.ladder[1].compressor["budget_tokens"] == 120
    assert set(policy.guarantee) == {"search_results", "filing_pages"}
    assert payload["evaluation"]["spread"]["seeds"] == 3
    assert policy.reproduce.startswith(f"ib-middleware calibrate --replay {table}")
    stage = build_stage(config.model_copy(update={"policy": out}))
    assert stage.rungs[0].threshold_bits_per_token == policy.rungs[0].threshold_bits_per_token
    shown = runner.invoke(app, [*args, "--inner-folds", "3"])
    assert shown.exit_code == 0, shown.output
    assert "held out per workload" in shown.stdout
    assert "with probability at least 0.9" in shown.stdout


def test_calibrate_measures_a_bundled_workload_and_ships_the_table_beside(tmp_path):
    config = tmp_path / "stage.yaml"
    config.write_text(
        "policy: null\n"
        "rungs:\n"
        "  - {name: tight, compressor: {kind: segments, budget_tokens: 40}}\n"
        "  - {name: wide, compressor: {kind: segments, budget_tokens: 160}}\n"
        "estimator: {scorer: {engine: policy-fake-scorer, options: {}}}\n",
        encoding="utf-8",
    )
    out = tmp_path / "policy.json"
    args = ["calibrate", "--workloads", "filings", "--limit", "15", "-c", str(config)]
    args += ["--folds", "2", "--inner-folds", "2", "--seeds", "2", "--bootstrap", "0"]
    result = runner.invoke(app, [*args, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    table = tmp_path / "policy.records.jsonl"
    assert payload["records"] == str(table)
    policy = Policy.load(out)
    assert policy.records == "policy.records.jsonl"
    assert policy.reproduce.startswith("ib-middleware calibrate --workloads filings --limit 15")
    assert "--alpha 0.05 --delta 0.1" in policy.reproduce
    rows = load_records(table)
    assert len(rows) == policy.n_cases == 15
    assert {row.workload for row in rows} == {"filing_pages"}
    assert all(row.group.startswith(("question:", "document:")) for row in rows)
    assert any(not row.needs_evidence for row in rows), "other filings' pages are in"
    assert load_meta(table)["fitted_for"] == policy.fitted_for.model_dump(mode="json")
    assert list(policy.guarantee) == ["filing_pages"]
    with pytest.raises(ValueError, match="unknown workload 'weather'"):
        workload_cases("weather")
    assert not (tmp_path / "policy.records.jsonl.partial").exists(), "removed once complete"
    # An interrupted measurement resumes: the cases of the partial table are not measured again.
    first = dataclasses.replace(rows[0], input_tokens=123_456)
    partial = tmp_path / "policy.records.jsonl.partial"
    save_records(partial, [first], meta={"fitted_for": policy.fitted_for.model_dump(mode="json")})
    again = runner.invoke(app, [*args, "--out", str(out), "--json"])
    assert again.exit_code == 0, again.output
    assert "resuming: 1 cases already measured" in again.stderr
    assert load_records(table)[0].input_tokens == 123_456
    assert load_records(table)[1:] == rows[1:]
    assert not partial.exists()

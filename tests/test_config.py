"""Configuration from YAML, TOML and the environment, and building a stage from it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ib_middleware.build import EngineCache, build_stage
from ib_middleware.config import EngineConfig, StageConfig, graded_rungs
from ib_middleware.judging.online import ContrastivePMIEstimator
from ib_middleware.policy import CurvePoint, Policy, PolicyRung
from ib_middleware.registry import register_engine
from ib_middleware.testing import FakeCompressor, FakeScorer

YAML = """
token_budget: 100
on_failure: raise
rungs:
  - name: cheap
    compressor: {kind: extractive, budget_tokens: 50}
    threshold_bits_per_token: 0.3
  - name: fake-llm
    compressor:
      engine: {engine: fake-gen, options: {model_id: g}}
      sentences: 6
    threshold_bits_per_token: 0.4
estimator:
  kind: contrastive_pmi
  scorer: {engine: fake-score, options: {}}
"""


@pytest.fixture(autouse=True)
def fake_engines():
    register_engine("fake-gen", lambda **kw: FakeCompressor(default="GOOD summary", **kw))
    register_engine("fake-score", lambda **kw: FakeScorer(lambda p, z: -1.0, **kw))


def test_default_config_is_offline_embedded():
    config = StageConfig()
    graded = graded_rungs()
    assert config.rungs == graded, "the graded ladder is the default"
    assert [rung.name for rung in graded] == ["segments-tight", "segments-medium", "segments-wide"]
    shares = [rung.compressor.budget_share for rung in graded]
    assert shares == sorted(shares) == [0.10, 0.25, 0.50]  # a graded ladder, widest last
    assert config.estimator.kind == "relevant_pmi"
    assert config.reject_unsupported_figures
    assert config.estimator.scorer.options["model_path"] == "gemma3-270m"
    assert config.on_failure == "passthrough"


def test_yaml_and_toml_load_the_same(tmp_path):
    yaml_path = tmp_path / "stage.yaml"
    yaml_path.write_text(YAML)
    toml_path = tmp_path / "stage.toml"
    toml_path.write_text(
        """
token_budget = 100
on_failure = "raise"
[estimator]
kind = "contrastive_pmi"
scorer = {engine = "fake-score", options = {}}
[[rungs]]
name = "cheap"
compressor = {kind = "extractive", budget_tokens = 50}
threshold_bits_per_token = 0.3
[[rungs]]
name = "fake-llm"
compressor = {engine = {engine = "fake-gen", options = {model_id = "g"}}, sentences = 6}
threshold_bits_per_token = 0.4
"""
    )
    assert StageConfig.load(yaml_path) == StageConfig.load(toml_path)


def test_environment_overrides_file(tmp_path, monkeypatch):
    path = tmp_path / "stage.yaml"
    path.write_text(YAML)
    monkeypatch.setenv("IB_MIDDLEWARE_TOKEN_BUDGET", "999")
    monkeypatch.setenv("IB_MIDDLEWARE_ESTIMATOR__KIND", "cxmi")
    config = StageConfig.load(path)
    assert config.token_budget == 999
    assert config.estimator.kind == "cxmi"
    assert config.rungs[0].name == "cheap"


def test_unknown_keys_and_bad_values_are_rejected(tmp_path):
    with pytest.raises(ValidationError, match="extra"):
        StageConfig(rungs=[{"name": "x", "compressor": {"kind": "extractive", "bogus": 1}}])
    with pytest.raises(ValidationError):
        StageConfig(on_failure="ignore")
    bad = tmp_path / "stage.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match=r"\.yaml"):
        StageConfig.load(bad)


def test_build_stage_from_config_shares_engines(tmp_path):
    path = tmp_path / "stage.yaml"
    path.write_text(YAML + "policy: null\n")  # a stage of fakes: the shipped policy is not for it
    stage = build_stage(StageConfig.load(path))
    assert [rung.label for rung in stage.rungs] == ["cheap", "fake-llm"]
    assert [rung.threshold_bits_per_token for rung in stage.rungs] == [0.3, 0.4]
    assert isinstance(stage.estimator, ContrastivePMIEstimator)
    assert stage.on_failure == "raise"
    cache = EngineCache()
    config = EngineConfig(engine="fake-score", options={})
    assert cache.get(config) is cache.get(config)


def test_policy_thresholds_replace_config_thresholds(tmp_path):
    policy = Policy(
        estimator="contrastive_pmi",
        scorer="fake-scorer",
        rungs=[PolicyRung(name="cheap", threshold_bits_per_token=0.9)],
        target_kind="fallback",
        target_value=0.3,
        fallback_rate=0.25,
        distortion=0.1,
        judge="containment",
        n_cases=10,
        curve=[
            CurvePoint(
                quantile=0.5,
                thresholds=[0.9],
                fallback_rate=0.25,
                distortion=0.1,
                forwarded_token_fraction=0.4,
            )
        ],
    )
    policy_path = policy.save(tmp_path / "policy.json")
    assert Policy.load(policy_path) == policy
    config_path = tmp_path / "stage.yaml"
    config_path.write_text(YAML + f"policy: {policy_path}\n")
    stage = build_stage(StageConfig.load(config_path))
    assert [rung.threshold_bits_per_token for rung in stage.rungs] == [0.9, 0.4]

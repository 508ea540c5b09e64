"""Sweep building blocks: config validation, the cache, the truncation baseline, analyses."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pydantic import ValidationError

from ib_middleware.lab.sweep import (
    CONTAINMENT,
    ResultCache,
    SweepConfig,
    SweepRun,
    TruncationCompressor,
    analyse,
    headline,
    routing_curves,
)

_MINIMAL = {
    "compressors": [{"name": "extractive-64", "kind": "extractive", "budget_tokens": 64}],
    "predictors": [{"name": "smollm2"}],
}


def test_config_defaults_and_determinism():
    config = SweepConfig(**_MINIMAL)
    assert config.samples == 2
    assert config.seeds == [0]
    assert config.compressors[0].deterministic
    greedy = SweepConfig(
        compressors=[{"name": "a", "temperature": 0.0}], predictors=[{"name": "p"}]
    )
    assert greedy.compressors[0].deterministic
    sampled = SweepConfig(compressors=[{"name": "a"}], predictors=[{"name": "p"}])
    assert not sampled.compressors[0].deterministic


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"surprise": 1}, "Extra inputs are not permitted"),
        ({"compressors": _MINIMAL["compressors"] * 2}, "compressor names must be unique"),
        ({"predictors": [{"name": "p", "price_model": "gpt-9"}]}, "no price for"),
        ({"judge": {"kind": "llm"}}, "needs an engine"),
        ({"samples": 0}, "greater than or equal to 1"),
        ({"compressors": []}, "at least 1 item"),
    ],
)
def test_config_rejects_mistakes_with_a_clear_message(change, message):
    with pytest.raises(ValidationError, match=message):
        SweepConfig(**(_MINIMAL | change))


def test_config_load_finds_a_dataset_beside_the_file(tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "cases.jsonl").write_text("{}", encoding="utf-8")
    path = folder / "sweep.yaml"
    path.write_text(
        json.dumps(_MINIMAL | {"dataset": {"kind": "jsonl", "path": "cases.jsonl"}}),
        encoding="utf-8",
    )
    config = SweepConfig.load(path)
    assert config.dataset.path == folder / "cases.jsonl"
    path.write_text("- a list", encoding="utf-8")
    with pytest.raises(ValueError, match="mapping at the top level"):
        SweepConfig.load(path)


def test_cache_round_trip_and_key_sensitivity(tmp_path):
    cache = ResultCache(tmp_path)
    cache.put("kind", {"a": 1, "b": [1, 2]}, {"x": 1.5})
    assert cache.get("kind", {"b": [1, 2], "a": 1}) == {"x": 1.5}  # key order is irrelevant
    assert cache.get("kind", {"a": 2, "b": [1, 2]}) is None
    assert cache.get("other", {"a": 1, "b": [1, 2]}) is None
    assert (cache.hits, cache.misses) == (1, 2)
    assert not list(tmp_path.rglob("*.tmp"))


def test_truncation_keeps_leading_words_within_the_budget():
    compressor = TruncationCompressor(budget_tokens=5)
    result = compressor.compress("alpha beta gamma delta epsilon zeta", "ignored")
    assert "alpha" in result.text
    assert result.output_tokens <= 5
    assert compressor.compress("", "q").text == ""
    with pytest.raises(ValueError, match="positive"):
        TruncationCompressor(budget_tokens=0)


def _item(bits, tokens, correct, full=True, **extra):
    return {
        "bits_per_token": bits,
        "output_tokens": tokens,
        "correct": correct,
        "full_correct": full,
        "compressor_cost": 0.0,
        "predictor_cost": 1.0,
        "full_cost": 10.0,
    } | extra


def test_mi_routing_beats_random_when_the_signal_separates():
    rng = np.random.default_rng(0)
    items = [_item(float(b), int(rng.integers(5, 50)), b > 0.5) for b in rng.random(40)]
    curves = routing_curves(items, [0.0, 0.25, 0.5, 0.75, 1.0])
    assert curves["gain_vs_random"] > 0.1
    low, high = curves["gain_vs_random_ci"]
    assert low <= curves["gain_vs_random"] <= high
    assert curves["mi"][2] == 1.0  # half fall back: exactly the wrong half
    assert curves["mi_cost"][0] == pytest.approx(1.0)
    assert curves["mi_cost"][-1] == pytest.approx(10.0)


def test_an_uninformative_signal_gains_nothing_on_average():
    rng = np.random.default_rng(1)
    items = [_item(float(rng.random()), 10, bool(rng.random() < 0.5)) for _ in range(400)]
    curves = routing_curves(items, [0.0, 0.25, 0.5, 0.75, 1.0])
    low, high = curves["gain_vs_random_ci"]
    assert low < 0.0 < high


def test_missing_estimates_fall_back_first():
    items = [_item(None, 0, False), _item(0.9, 10, True), _item(0.1, 10, True)]
    assert routing_curves(items, [1 / 3])["mi"] == [1.0]


def _run(points: int) -> SweepRun:
    cells, items = [], []
    for index in range(points):
        rate = 0.1 * (index + 1)
        base = {
            "compressor": f"c{index}",
            "kind": "abstractive",
            "family": "a" if index % 2 else "b",
            "sentences": 3,
            "compressor_params": 1e8 * (1 + index % 2),
            "seed": 0,
            "predictor": "p",
        }
        cells.append(
            base
            | {
                "bits_per_token": rate,
                "mi_bits": rate * 20,
                "distortion": 0.2 + 0.7 * math.exp(-8 * rate),
                "containment": 1 - (0.1 + 0.8 * math.exp(-8 * rate)),
                "perplexity": None,
            }
        )
        for case in range(6):
            items.append(
                base
                | _item(rate + 0.01 * case, 20, (case + index) % 3 != 0)
                | {"contained": case % 2 == 0, "full_contained": True, "predictor_params": 1e8}
            )
    return SweepRun(cells=cells, items=items)


def test_analyse_fits_correlates_and_notes_confounded_knobs():
    analyses = analyse(_run(6), [0.0, 0.5, 1.0])
    assert set(analyses) == {"p", CONTAINMENT}
    fit = analyses["p"]["rate_distortion"]
    assert fit["r_squared"] > 0.99
    assert fit["b"] == pytest.approx(8.0, rel=0.05)
    correlation = analyses["p"]["correlations"]["bits_per_token_vs_distortion"]
    assert correlation["pearson_r"] < -0.8
    knobs = analyses["p"]["knobs"]
    assert "confounded" in knobs["notes"][0]
    assert [c["name"] for c in knobs["coefficients"]] == ["intercept", "log_compressor_params"]
    figures = headline(analyses)
    assert figures["p"]["gain_vs_random"] is not None


def test_analyses_that_cannot_be_done_say_why():
    analyses = analyse(_run(1), [0.0, 0.5, 1.0])
    assert "at least" in analyses["p"]["rate_distortion"]["error"]
    assert "error" in analyses["p"]["correlations"]["bits_per_token_vs_distortion"]
    assert "at least 8" in analyses["p"]["knobs"]["error"]

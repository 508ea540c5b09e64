"""A tiny sweep on the real embedded engines, and its report in a real headless browser."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from headless_browser import render_and_dump

from ib_middleware.lab.sweep import SweepConfig, run_sweep

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory):
    """The smoke sweep of examples/sweeps: 4 short cases, SmolLM2 as everything."""
    tmp_path = tmp_path_factory.mktemp("real-sweep")
    out = tmp_path / "out"
    config = SweepConfig.load(ROOT / "examples" / "sweeps" / "smoke.yaml")
    return out, run_sweep(config, out, progress=False), tmp_path


@pytest.mark.slow
def test_real_engines_fill_every_measure(real_sweep):
    _, results, _ = real_sweep
    assert len(results["cells"]) == 3
    for cell in results["cells"]:
        assert cell["failures"] == 0
        assert 0.0 <= cell["mi_bits"] <= cell["log_n_bits"] + 1e-9
        assert cell["mean_output_tokens"] > 0
        assert cell["perplexity"] is not None
        assert cell["perplexity"] > 1.0
        assert cell["predictor_flops"] > 0.0  # from the GGUF metadata
    abstractive = next(c for c in results["cells"] if c["compressor"] == "smollm2-135m")
    assert abstractive["samples"] == 2
    assert abstractive["compressor_flops"] > 0.0
    extractive = next(c for c in results["cells"] if c["compressor"] == "extractive-32")
    # BM25 keeps the sentence with the figure when it fits 32 tokens (three of the four cases).
    assert extractive["containment"] >= 0.5
    assert all(
        math.isfinite(item["bits_per_token"])
        for item in results["items"]
        if item["bits_per_token"] is not None
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sweep_report_renders_in_headless_chromium(real_sweep):
    out, results, tmp_path = real_sweep
    dom = render_and_dump(out / "report.html", tmp_path)
    assert "ib-middleware sweep: smoke" in dom
    assert dom.count("<img") == len(list((out / "plots").glob("*.png")))
    assert dom.count("<tr>") >= 1 + len(results["cells"])

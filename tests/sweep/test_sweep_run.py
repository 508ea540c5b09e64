"""End-to-end sweeps with a scripted engine: outputs, caching, CLI, and the report page."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pytest
from ib_estimators import ModelSpec
from typer.testing import CliRunner

from ib_middleware.engines import (
    ChatMessage,
    ContinuationScore,
    Generation,
    GenerationSettings,
    ScoreRequest,
)
from ib_middleware.lab.cli import app
from ib_middleware.lab.sweep import SweepConfig, run_sweep
from ib_middleware.registry import register_engine

_FIGURE = re.compile(r"[^.\n]*\d[^.\n]*\.")


@dataclass
class ScriptedEngine:
    """Generates the first sentence with a figure in it; scores words seen in the prompt high.

    As a compressor it keeps the sentence that holds the answer; as a predictor it answers with
    that sentence. ``blank`` makes every generation empty, like a base model that stops at once.
    """

    model_id: str = "scripted"
    blank: bool = False
    calls: list[str] = field(default_factory=list)

    def generate(
        self, messages: list[ChatMessage], settings: GenerationSettings | None = None
    ) -> Generation:
        del settings
        text = messages[-1].content
        self.calls.append(text)
        found = _FIGURE.search(text.split("Question:")[0])
        reply = "" if self.blank or found is None else found.group(0).strip()
        return Generation(reply, self.model_id, len(text.split()), len(reply.split()), 0.001)

    async def agenerate(self, messages, settings=None):
        return self.generate(messages, settings)

    def score(self, requests: list[ScoreRequest]) -> list[ContinuationScore]:
        results = []
        for request in requests:
            words = request.continuation.split()
            seen = set(request.prompt.split())
            per_token = tuple(-0.5 if word in seen else -6.0 for word in words)
            results.append(ContinuationScore(per_token, len(request.prompt.split())))
        return results

    async def ascore(self, requests):
        return self.score(requests)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def model_spec(self) -> ModelSpec:
        return ModelSpec(n_params=1e6, n_layers=2, d_attn=64, name=self.model_id)


register_engine("sweep-scripted", ScriptedEngine)


def _dataset(tmp_path, n: int = 6):
    rows = [
        {
            "id": f"case-{index}",
            "context": (
                f"Company {name} is based in {name}ville. Revenue was {100 + index} million "
                f"dollars last year. The logo of company {name} is blue."
            ),
            "query": f"What was the revenue of company {name}?",
            "answer": f"{100 + index} million",
        }
        for index, name in enumerate("ABCDEFGH"[:n])
    ]
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    return path


def _config(tmp_path, **overrides) -> SweepConfig:
    engine = {"engine": "sweep-scripted", "options": {}}
    data = {
        "name": "scripted",
        "dataset": {"kind": "jsonl", "path": str(_dataset(tmp_path)), "limit": 6},
        "scorer": engine,
        "samples": 2,
        "seeds": [0, 1],
        "compressors": [
            {"name": "scripted", "engine": engine, "family": "scripted"},
            {"name": "blank", "engine": {**engine, "options": {"blank": True}}, "family": "blank"},
            {"name": "extractive-8", "kind": "extractive", "budget_tokens": 8},
            {"name": "truncation-8", "kind": "truncation", "budget_tokens": 8},
        ],
        "predictors": [{"name": "scripted-predictor", "engine": engine}],
        "fallback_rates": [0.0, 0.25, 0.5, 0.75, 1.0],
    }
    return SweepConfig(**(data | overrides))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("sweep")
    out = tmp_path / "out"
    return out, run_sweep(_config(tmp_path), out, progress=False), tmp_path


def test_sweep_writes_results_plots_and_report(sweep):
    out, results, _ = sweep
    assert len(results["cells"]) == 4 * 1 * 2  # compressors x predictors x seeds
    saved = json.loads((out / "results.json").read_text())
    assert saved["cells"] == json.loads(json.dumps(results["cells"]))
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    plots = sorted(path.name for path in (out / "plots").iterdir())
    assert "rate_distortion.png" in plots
    assert "routing_containment.png" in plots
    assert all((out / "plots" / name).stat().st_size > 1000 for name in plots)


def test_cells_carry_every_measure(sweep):
    _, results, _ = sweep
    cell = next(c for c in results["cells"] if c["compressor"] == "scripted" and c["seed"] == 0)
    assert cell["accuracy"] == 1.0  # the scripted predictor reads the kept sentence
    assert cell["containment"] == 1.0
    assert cell["samples"] == 2
    assert cell["n_contexts"] == 6
    assert 0.0 < cell["mi_bits"] <= cell["log_n_bits"]
    rate = cell["mi_bits"] / cell["mean_output_tokens"]
    if cell["saturated"]:  # at log N the MI is a lower bound: no rate is read off it
        assert cell["bits_per_token"] is None
        assert cell["bits_per_token_lower_bound"] == pytest.approx(rate)
    else:
        assert cell["bits_per_token"] == pytest.approx(rate)
        assert cell["bits_per_token_lower_bound"] is None
    assert cell["compressor_flops"] > 0.0
    assert cell["predictor_cost"] < cell["full_cost"]  # priced as gpt-4o, fewer tokens read
    extractive = next(c for c in results["cells"] if c["compressor"] == "extractive-8")
    assert extractive["samples"] == 1  # deterministic: one sample per context
    assert extractive["compressor_flops"] == 0.0


def test_empty_compressions_count_as_zero_information(sweep):
    _, results, _ = sweep
    blank = [c for c in results["cells"] if c["compressor"] == "blank"]
    assert all(c["mi_bits"] == 0.0 and c["bits_per_token"] is None for c in blank)
    assert all(c["empty"] == 12 and c["containment"] == 0.0 for c in blank)


def test_analyses_cover_each_predictor_and_containment(sweep):
    _, results, _ = sweep
    analyses = results["analyses"]
    assert set(analyses) == {"scripted-predictor", "containment"}
    routing = analyses["containment"]["routing"]["scripted"]
    assert routing["mi"][0] == routing["random"][0]  # no fallback: the same system
    assert routing["mi"][-1] == routing["random"][-1]  # all fallback: the same system
    assert set(results["headline"]) == {"scripted-predictor", "containment"}
    knobs = analyses["scripted-predictor"]["knobs"]
    assert "error" in knobs or knobs["n_observations"] > 0


def test_rerun_reads_everything_from_the_cache(sweep):
    out, first, tmp_path = sweep
    again = run_sweep(_config(tmp_path), out, progress=False)
    assert again["cache"]["misses"] == 0
    assert again["cells"] == first["cells"]


def test_changing_a_compressor_recomputes_only_it(sweep):
    out, _, tmp_path = sweep
    config = _config(tmp_path)
    changed = config.compressors[3].model_copy(update={"budget_tokens": 12})
    compressors = [*config.compressors[:3], changed]
    rerun = run_sweep(config.model_copy(update={"compressors": compressors}), out, progress=False)
    # 6 compressions, 1 score tensor and 6 answers are new; the truncation baseline ignores
    # the seed, so the second seed reads them back.
    assert rerun["cache"]["misses"] == 6 + 1 + 6


def test_sweep_command(tmp_path):
    config = _config(tmp_path)
    path = tmp_path / "sweep.yaml"
    path.write_text(json.dumps(config.model_dump(mode="json")), encoding="utf-8")  # JSON is YAML
    out = tmp_path / "cli-out"
    result = CliRunner().invoke(app, ["sweep", str(path), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["cells"] == 8
    assert summary["report"] == str(out / "report.html")
    missing = CliRunner().invoke(app, ["sweep", str(tmp_path / "nope.yaml"), "--json"])
    assert missing.exit_code == 1
    assert "no such file" in missing.output


def test_too_few_cases_is_a_clear_error(tmp_path):
    config = _config(tmp_path)
    one = config.dataset.model_copy(update={"limit": None, "max_context_chars": 10})
    with pytest.raises(ValueError, match="at least 2"):
        run_sweep(config.model_copy(update={"dataset": one}), tmp_path / "x", progress=False)

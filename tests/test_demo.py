"""The demo with a fake stage and a fake answering model: graph, tables, JSON, spans, errors."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from ib_middleware.compressors import AbstractiveCompressor, ApproximateTokenCounter
from ib_middleware.errors import IBMiddlewareError
from ib_middleware.lab.data import load_financebench
from ib_middleware.lab.demo import (
    ANSWER_TOKENS,
    FilingPages,
    build_demo_graph,
    demo_app,
    resolve_answerer,
    run_demo,
)
from ib_middleware.online import CXMIEstimator
from ib_middleware.routing import Rung
from ib_middleware.stage import CompressionStage
from ib_middleware.testing import FakeCompressor, FakeScorer


def fake_stage(*replies: str) -> tuple[CompressionStage, FakeCompressor]:
    generator = FakeCompressor(default="GOOD the page in brief")
    generator.enqueue(*replies)

    def score(prompt: str, z: str) -> float:
        return -1.0 if "Document:" in prompt and z.startswith("GOOD") else -5.0

    rung = Rung(AbstractiveCompressor(generator, window_tokens=5000), threshold_bits_per_token=0.5)
    # The replies are stand-in text (GOOD/BAD markers); the support rule has its own tests.
    stage = CompressionStage(
        [rung],
        estimator=CXMIEstimator(FakeScorer(score)),
        token_budget=300,
        reject_unsupported_figures=False,
    )
    return stage, generator


def pages(**options) -> FilingPages:
    return FilingPages(load_financebench(), ApproximateTokenCounter(), **options)


def test_filing_pages_mix_evidence_and_seeded_distractors():
    filings = pages(pages=4, seed=7)
    questions = filings.questions(3)
    assert len({case.company for case in questions}) == 3
    case = questions[0]
    documents = filings.retrieve(case.case_id)
    assert len(documents) == 4
    evidence = [d for d in documents if d.metadata["evidence"]]
    assert {d.page_content for d in evidence} == set(case.pages)
    distractors = [d for d in documents if not d.metadata["evidence"]]
    assert all(not d.metadata["source"].startswith(case.company) for d in distractors)
    assert [d.page_content for d in filings.retrieve(case.case_id)] == [
        d.page_content for d in documents
    ], "the same seed gives the same pages in the same order"
    other = pages(pages=4, seed=8).retrieve(case.case_id)
    assert [d.page_content for d in other] != [d.page_content for d in documents]


def test_filing_pages_skip_questions_with_long_pages():
    filings = pages(max_page_tokens=300)
    counter = ApproximateTokenCounter()
    for case in filings.questions(5):
        assert all(counter.count_tokens(page) <= 300 for page in case.pages)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_demo_graph_retrieves_compresses_answers(mode):
    stage, _ = fake_stage("BAD unsupported")  # the first page falls back, the rest compress
    answerer = FakeCompressor(default="$1,577 million")
    filings = pages()
    graph = build_demo_graph(stage, answerer, filings)
    case = filings.questions(1)[0]
    inputs = {"case_id": case.case_id, "question": case.query}
    state = graph.invoke(inputs) if mode == "sync" else await graph.ainvoke(inputs)
    assert state["answer"] == "$1,577 million"
    decisions = state["ib_decisions"]
    assert len(decisions) == len(state["documents"]) == 3
    assert {d["decision"] for d in decisions} <= {"accepted", "fallback", "passthrough"}
    assert "fallback" in {d["decision"] for d in decisions}
    # The answering model read what the stage forwarded, with the question.
    prompt = answerer.history[0][-1].content
    assert case.query in prompt
    assert "GOOD the page in brief" in prompt


def test_run_demo_prints_tables_summary_and_json(tmp_path):
    stage, _ = fake_stage()
    answerer = FakeCompressor(default="42")
    out = io.StringIO()
    spans = tmp_path / "spans.jsonl"
    report = run_demo(
        2,
        True,
        spans,
        stage=stage,
        answerer=answerer,
        console=Console(file=out, width=120),
    )
    text = out.getvalue()
    lines = text.strip().splitlines()
    payload = json.loads(lines[-1])
    assert payload["questions"] == 2
    assert set(payload["decisions"]) == {"passthrough", "accepted", "fallback"}
    assert sum(payload["decisions"].values()) == 6
    assert payload["raw_tokens"] > payload["forwarded_tokens"] > 0
    assert 0.0 < payload["token_savings"] < 1.0
    assert payload["fallback_rate"] == 0.0
    assert payload["answerer"] == "fake-compressor"
    assert [r["answer"] for r in payload["results"]] == ["42", "42"]
    assert all("text" not in page for r in payload["results"] for page in r["pages"])
    assert "summary" in text
    assert report.summary_line() in " ".join(text.split())
    for column in ("raw tokens", "forwarded", "decision", "rung", "bits/token"):
        assert column in text
    spans_written = [json.loads(line) for line in spans.read_text().splitlines()]
    stage_spans = [span for span in spans_written if span["name"] == "ib_middleware.stage"]
    assert len(stage_spans) == 2  # one stage invocation per question
    decisions = [
        span["attributes"]["ib_middleware.route.decision"]
        for span in spans_written
        if "ib_middleware.route.decision" in span["attributes"]
    ]
    assert {"passthrough", "accepted"} <= set(decisions)
    for span in spans_written:
        assert {"trace_id", "span_id", "parent_span_id", "start_time", "end_time"} <= set(span)
    assert answerer.history, "the answering model was asked"


def test_answer_length_is_capped():
    assert ANSWER_TOKENS <= 64


class FakeEngines:
    def __init__(self, engine):
        self.engine = engine
        self.asked = []

    def get(self, config):
        self.asked.append(config)
        return self.engine


def test_resolve_answerer_embedded_by_default(monkeypatch):
    monkeypatch.delenv("IB_DEMO_MODEL", raising=False)
    engines = FakeEngines(FakeCompressor(model_id="smollm2"))
    assert resolve_answerer(None, engines).model_id == "smollm2"  # type: ignore[arg-type]
    assert engines.asked[0].options == {"model_path": "smollm2"}


def test_resolve_answerer_needs_an_endpoint_for_a_named_model(monkeypatch):
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "IB_DEMO_MODEL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(IBMiddlewareError, match="OPENAI_BASE_URL"):
        resolve_answerer("gpt-4.1-mini", FakeEngines(None))  # type: ignore[arg-type]
    monkeypatch.setenv("IB_DEMO_MODEL", "from-env")
    with pytest.raises(IBMiddlewareError, match="from-env"):
        resolve_answerer(None, FakeEngines(None))  # type: ignore[arg-type]


def test_resolve_answerer_uses_the_endpoint(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    answerer = resolve_answerer("served-model", FakeEngines(None))  # type: ignore[arg-type]
    assert answerer.model_id == "served-model"


def test_command_explains_a_missing_endpoint(monkeypatch):
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "IB_DEMO_MODEL"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(demo_app, ["--model", "gpt-4.1-mini", "--questions", "1"])
    assert result.exit_code == 1
    assert "OPENAI_BASE_URL" in result.output
    assert "Traceback" not in result.output

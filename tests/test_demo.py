"""The demo with a fake stage and a fake answering model: graph, tables, JSON, spans, errors."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Sequence

import pytest
from rich.console import Console
from typer.testing import CliRunner

from ib_middleware.compressors import AbstractiveCompressor, ApproximateTokenCounter
from ib_middleware.engines import ChatMessage, Generation, GenerationSettings, Scorer
from ib_middleware.errors import IBMiddlewareError
from ib_middleware.judging.online import CXMIEstimator, EstimatorName, OnlineEstimate
from ib_middleware.judging.routing import Rung
from ib_middleware.lab.data import load_financebench
from ib_middleware.lab.demo import (
    ANSWER_TOKENS,
    DemoQuestion,
    DemoReport,
    FilingPages,
    PageRow,
    build_demo_graph,
    demo_app,
    render_question,
    resolve_answerer,
    run_demo,
)
from ib_middleware.lab.demo._report import holds_answer
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
    assert set(payload["decisions"]) == {"passthrough", "accepted", "pruned", "fallback"}
    assert sum(payload["decisions"].values()) == 6
    assert payload["raw_tokens"] > payload["forwarded_tokens"] > 0
    assert 0.0 < payload["token_savings"] < 1.0
    assert payload["fallback_rate"] == 0.0
    assert payload["answerer"] == "fake-compressor"
    assert [r["answer"] for r in payload["results"]] == ["42", "42"]
    # 3M's raw pages hold its figure; the second question's gold answer is a computed ratio
    # that no raw page holds: not judgeable, and not a failure.
    assert payload["judgeable"] == 1
    assert payload["evidence_containment"] in (0.0, 1.0)
    assert payload["results"][1]["evidence_contained"] is None
    assert all("keeps_answer" in page for r in payload["results"] for page in r["pages"])
    assert all("text" not in page for r in payload["results"] for page in r["pages"])
    assert "summary" in text
    assert report.summary_line() in " ".join(text.split())
    for column in ("raw tokens", "forwarded", "decision", "rung", "bits/token", "keeps answer"):
        assert column in text
    assert "evidence kept" in text
    assert "not judgeable" in text
    spans_written = [json.loads(line) for line in spans.read_text().splitlines()]
    stage_spans = [span for span in spans_written if span["name"] == "ib_middleware.stage"]
    # one stage invocation per research-agent search call and per FinanceBench question
    assert len(stage_spans) == 4
    research = payload["research"]
    assert research["search_calls"] == len(research["calls"]) == 2
    assert research["raw_tokens"] > research["forwarded_tokens"] > 0
    assert research["supporting_facts_kept"] in (0.0, 0.5, 1.0)
    assert all(len(call["results"]) == 10 for call in research["calls"])
    assert "research agent" in text
    assert "supporting facts kept" in text
    decisions = [
        span["attributes"]["ib_middleware.route.decision"]
        for span in spans_written
        if "ib_middleware.route.decision" in span["attributes"]
    ]
    assert {"passthrough", "accepted"} <= set(decisions)
    for span in spans_written:
        assert {"trace_id", "span_id", "parent_span_id", "start_time", "end_time"} <= set(span)
    assert answerer.history, "the answering model was asked"


@dataclasses.dataclass
class KeepsTheFigure(FakeCompressor):
    """Compresses 3M's cash-flow page to its capex figure (when ``keep``), any other to a line."""

    keep: bool = True

    def generate(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None
    ) -> Generation:
        prompt = " ".join(message.content for message in messages)
        figure = self.keep and "(1,577)" in prompt
        self.enqueue("GOOD PP&E purchases were 1,577" if figure else "GOOD the page in brief")
        return super().generate(messages, settings)


class GatedEstimator:
    """The fake CXMI plus a query share: all of the query on its own pages, none elsewhere."""

    def __init__(self, inner: CXMIEstimator) -> None:
        self.inner = inner
        self.own = {case.query: set(case.pages) for case in load_financebench()}

    @property
    def name(self) -> EstimatorName:
        return self.inner.name

    @property
    def scorer(self) -> Scorer:
        return self.inner.scorer

    def _gate(self, estimate: OnlineEstimate, context: str, query: str) -> OnlineEstimate:
        share = 1.0 if context in self.own.get(query, set()) else 0.0
        return dataclasses.replace(estimate, query_fraction=share)

    def estimate(
        self, context: str, query: str, compression: str, *, references: Sequence[str] = ()
    ) -> OnlineEstimate:
        estimate = self.inner.estimate(context, query, compression, references=references)
        return self._gate(estimate, context, query)

    async def aestimate(
        self, context: str, query: str, compression: str, *, references: Sequence[str] = ()
    ) -> OnlineEstimate:
        estimate = await self.inner.aestimate(context, query, compression, references=references)
        return self._gate(estimate, context, query)


def gated_stage(*, keep: bool) -> CompressionStage:
    """Every page routed: distractors pruned, evidence compressed (keeping 3M's figure or not)."""

    def score(prompt: str, z: str) -> float:
        return -1.0 if "Document:" in prompt and z.startswith("GOOD") else -5.0

    generator = KeepsTheFigure(keep=keep)
    rung = Rung(AbstractiveCompressor(generator, window_tokens=5000), threshold_bits_per_token=0.5)
    return CompressionStage(
        [rung],
        estimator=GatedEstimator(CXMIEstimator(FakeScorer(score))),
        token_budget=20,
        reject_unsupported_figures=False,
        prune_below=0.5,
    )


@pytest.mark.parametrize("keep", [True, False])
def test_run_demo_reports_evidence_containment(keep: bool) -> None:
    out = io.StringIO()
    report = run_demo(
        2,
        stage=gated_stage(keep=keep),
        answerer=FakeCompressor(default="42"),
        console=Console(file=out, width=140),
    )
    three_m, other = report.questions
    assert three_m.company == "3M"
    pages_3m = {page.source: page for page in three_m.pages}
    [evidence] = [page for page in three_m.pages if page.evidence]
    assert evidence.decision == "accepted"
    assert evidence.keeps_answer is keep
    assert three_m.evidence_contained is keep, "the raw pages are judged before compression"
    distractors = [page for page in three_m.pages if not page.evidence]
    assert distractors
    assert all(page.decision == "pruned" and page.keeps_answer is None for page in distractors)
    assert len(pages_3m) == 3
    assert other.evidence_contained is None, "no raw page holds a computed ratio"
    summary = report.summary()
    assert summary["judgeable"] == 1
    assert summary["evidence_containment"] == (1.0 if keep else 0.0)
    assert summary["decisions"]["pruned"] >= 2
    assert summary["decisions"]["fallback"] == 0
    assert summary["fallback_rate"] == 0.0, "pruned pages are routed, not fallbacks"
    assert f"evidence kept in {int(keep)}/1 judgeable" in report.summary_line()
    text = out.getvalue()
    assert "keeps answer" in text
    assert ("yes" if keep else "no") in text
    assert "pruned" in text


def test_holds_answer_only_judges_what_the_raw_text_holds() -> None:
    raw = "Purchases of property, plant and equipment (PP&E) (1,577) (1,373)"
    assert holds_answer(raw, "capex was $1.577 billion", "$1577.00") is True
    assert holds_answer(raw, "capex fell", "$1577.00") is False
    assert holds_answer(raw, "24.26", "24.26") is None, "the raw text lacks it: not judgeable"


def test_summary_counts_judgeable_questions_only() -> None:
    kept = PageRow("3M p1", True, 1000, 100, "accepted", 0, 0.4, "ok", True)
    lost = PageRow("3M p1", True, 1000, 100, "accepted", 0, 0.4, "ok", False)
    note = PageRow("AMD p2", False, 500, 20, "pruned", None, None, "nothing relevant")
    fell = PageRow("AMD p3", False, 500, 500, "fallback", None, None, "low")
    questions = (
        DemoQuestion("a", "3M", "q", "$1577", "-", (kept, note), 1.0, True),
        DemoQuestion("b", "3M", "q", "$1577", "-", (lost, fell), 1.0, False),
        DemoQuestion("c", "AMD", "q", "24.26", "-", (note,), 1.0, None),
        DemoQuestion("d", "AMD", "q", "24.26", "-", (note,), 1.0, None),
    )
    summary = DemoReport(questions, "fake", 4.0).summary()
    assert summary["judgeable"] == 2
    assert summary["evidence_containment"] == 0.5
    assert summary["decisions"] == {"passthrough": 0, "accepted": 2, "pruned": 3, "fallback": 1}
    assert summary["fallback_rate"] == pytest.approx(1 / 6)
    assert json.loads(json.dumps(summary)) == summary
    nothing = DemoReport(questions[2:], "fake", 2.0)
    assert nothing.summary()["evidence_containment"] is None
    assert nothing.summary()["judgeable"] == 0
    assert "no judgeable question" in nothing.summary_line()


def test_render_question_shows_which_evidence_page_keeps_the_answer() -> None:
    kept = PageRow("3M p1", True, 1000, 100, "accepted", 0, 0.4, "ok", True)
    note = PageRow("AMD p2", False, 500, 20, "pruned", None, None, "nothing relevant")
    out = io.StringIO()
    question = DemoQuestion("a", "3M", "Capex?", "$1577", "1577", (kept, note), 1.0, True)
    render_question(Console(file=out, width=140), 1, question)
    rows = {line.split()[1]: line for line in out.getvalue().splitlines() if "│" in line[:2]}
    assert rows["3M"].rstrip(" │").endswith("yes")
    assert rows["AMD"].rstrip(" │").endswith("-")
    assert "evidence kept yes" in " ".join(out.getvalue().split())


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

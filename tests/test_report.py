"""The HTML report: content, self-containment, the CLI command, and a real headless browser."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import pytest
import typer
from headless_browser import render_and_dump
from typer.testing import CliRunner

from ib_middleware import EngineError
from ib_middleware.compressors import AbstractiveCompressor
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.lab.report import load_prices, register_report_command, render_report
from ib_middleware.lab.report.data import load_spans, summarise
from ib_middleware.stage import CompressionStage
from ib_middleware.telemetry import configure_span_file
from ib_middleware.testing import FakeCompressor, FakeScorer

PAGE = "Capital expenditure was $1,577 million in 2018. " + "Other filler text here. " * 60
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_spans(path):
    """A span file with every kind of decision and a failed compressor call."""
    small, large = FakeCompressor(model_id="small"), FakeCompressor(model_id="large")
    small.enqueue("GOOD capex.", "BAD one.", EngineError("down"), "BAD three.")
    large.enqueue("GOOD two.", "GOOD again.", "BAD four.")
    scorer = FakeScorer(lambda p, z: -1.0 if "Document:" in p and z.startswith("GOOD") else -5.0)
    rungs = [
        Rung(AbstractiveCompressor(small, window_tokens=5000), 0.5),
        Rung(AbstractiveCompressor(large, window_tokens=5000), 0.5),
    ]
    with configure_span_file(path) as sink:
        # The replies are stand-in text (GOOD/BAD markers); the support rule has its own tests.
        stage = CompressionStage(
            rungs,
            estimator=CXMIEstimator(scorer),
            token_budget=50,
            observers=[sink.telemetry()],
            reject_unsupported_figures=False,
        )
        stage.run([PAGE, "short"], "q")  # accepted at rung 0, passthrough
        for _ in range(3):  # rung 1 accepts; after an error rung 1 accepts; fallback
            stage.run([PAGE], "q")


@pytest.fixture(scope="module")
def spans_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "spans.jsonl"
    write_spans(path)
    return path


@pytest.fixture(scope="module")
def report(spans_path):
    out = spans_path.parent / "out" / "report.html"
    data = render_report(spans_path, out, price_model="gpt-4o")
    return out, data


class References(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.references: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.references += [value or "" for name, value in attrs if name in {"src", "href"}]


def test_report_summarises_every_decision(report):
    _, data = report
    assert data.counts == {"passthrough": 1, "accepted": 3, "fallback": 1}
    assert data.fallback_rate == pytest.approx(1 / 4)
    assert data.invocations == 4
    assert data.tokens_saved == sum(d.input_tokens - d.output_tokens for d in data.decisions) > 0
    assert data.cost_saved == pytest.approx(data.tokens_saved * 2.50 / 1e6)
    assert {a.rung for a in data.attempts} == {0, 1}
    assert all(a.ratio is not None for a in data.attempts)
    assert any(call.failed for call in data.calls)


def test_report_is_self_contained(report):
    out, _ = report
    page = out.read_text(encoding="utf-8")
    parser = References()
    parser.feed(page)
    assert "script" not in parser.tags
    assert "link" not in parser.tags
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert not re.search(r"https?:|//[a-z]|@import|url\(|<iframe|<object|<embed", text)
    images = [ref for ref in parser.references if ref.startswith("data:image/png;base64,")]
    assert len(images) == len(parser.references) == 6
    for image in images:
        assert base64.b64decode(image.split(",", 1)[1]).startswith(PNG_SIGNATURE)
    for title in ("Bits per token by rung", "Decisions over time", "Fallback rate", "Slowest"):
        assert title in page


def test_empty_span_file_still_renders(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    data = render_report(empty, tmp_path / "report.html")
    assert data.decisions == []
    assert "no scored attempts" in (tmp_path / "report.html").read_text()


def test_bad_lines_are_reported_with_their_number(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "span", "name": "x"}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        load_spans(bad)


def test_price_table_file(tmp_path, spans_path):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"big-llm": {"input_per_million": 10, "output_per_million": 30}}))
    table = load_prices(prices)
    data = summarise(load_spans(spans_path), price_model="big-llm", prices=table)
    assert data.cost_saved == pytest.approx(data.tokens_saved * 10 / 1e6)
    prices.write_text(json.dumps({"big-llm": {"input_per_million": -1, "output_per_million": 0}}))
    with pytest.raises(ValueError, match="non-negative"):
        load_prices(prices)


def test_report_command(tmp_path, spans_path):
    app = typer.Typer()
    register_report_command(app)
    app.command("noop")(lambda: None)  # a group, as in the real CLI
    out = tmp_path / "r.html"
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(spans_path), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["counts"]["accepted"] == 3
    assert summary["out"] == str(out)
    assert out.read_text().startswith("<!DOCTYPE html>")
    missing = runner.invoke(app, ["report", str(tmp_path / "nope.jsonl"), "-o", str(out)])
    assert missing.exit_code == 1
    assert "no such file" in missing.output


@pytest.mark.timeout(240)
def test_report_renders_in_headless_chromium(report, tmp_path):
    out, _ = report
    dom = render_and_dump(out, tmp_path)
    assert dom.count("<img") == 6
    assert "ib-middleware compression report" in dom

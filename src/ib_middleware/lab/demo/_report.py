"""What the demo measured, per page and per question, and how it is shown."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from langchain_core.documents import Document
from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["DemoQuestion", "DemoReport", "PageRow", "page_rows", "render_question"]


@dataclass(frozen=True)
class PageRow:
    """What happened to one page."""

    source: str
    evidence: bool
    raw_tokens: int
    forwarded_tokens: int
    decision: str
    rung: int | None
    bits_per_token: float | None
    reason: str


@dataclass(frozen=True)
class DemoQuestion:
    """One answered question."""

    case_id: str
    company: str
    question: str
    gold: str
    answer: str
    pages: tuple[PageRow, ...]
    wall_s: float

    @property
    def raw_tokens(self) -> int:
        """Tokens of the retrieved pages."""
        return sum(page.raw_tokens for page in self.pages)

    @property
    def forwarded_tokens(self) -> int:
        """Tokens the answering model read."""
        return sum(page.forwarded_tokens for page in self.pages)


@dataclass(frozen=True)
class DemoReport:
    """The whole run.

    Example:
        >>> page = PageRow("3M p1", True, 1000, 100, "accepted", 0, 0.4, "accepted")
        >>> question = DemoQuestion("id", "3M", "Capex?", "$1577", "1577", (page,), 60.0)
        >>> report = DemoReport((question,), "smollm2", 61.0)
        >>> report.summary()["token_savings"], report.summary()["decisions"]["accepted"]
        (0.9, 1)
    """

    questions: tuple[DemoQuestion, ...]
    answerer: str
    wall_s: float

    def summary(self) -> dict[str, Any]:
        """Counts, tokens, savings and fallback rate, JSON-ready."""
        decisions = Counter(page.decision for q in self.questions for page in q.pages)
        raw = sum(q.raw_tokens for q in self.questions)
        forwarded = sum(q.forwarded_tokens for q in self.questions)
        routed = decisions["accepted"] + decisions["fallback"]
        return {
            "questions": len(self.questions),
            "answerer": self.answerer,
            "decisions": {k: decisions[k] for k in ("passthrough", "accepted", "fallback")},
            "raw_tokens": raw,
            "forwarded_tokens": forwarded,
            "token_savings": 1.0 - forwarded / raw if raw else 0.0,
            "fallback_rate": decisions["fallback"] / routed if routed else 0.0,
            "wall_s": round(self.wall_s, 1),
        }

    def to_dict(self) -> dict[str, Any]:
        """The summary plus every question and page."""
        results = [
            {**asdict(q), "raw_tokens": q.raw_tokens, "forwarded_tokens": q.forwarded_tokens}
            for q in self.questions
        ]
        return {**self.summary(), "results": results}

    def summary_line(self) -> str:
        """One line: tokens, savings, decisions, fallback rate, time."""
        s = self.summary()
        counts = ", ".join(f"{k} {v}" for k, v in s["decisions"].items())
        return (
            f"{s['questions']} questions: {s['raw_tokens']} raw tokens -> "
            f"{s['forwarded_tokens']} forwarded ({s['token_savings']:.0%} saved); "
            f"{counts}; fallback rate {s['fallback_rate']:.0%}; {s['wall_s']:.0f} s"
        )


def page_rows(documents: Sequence[Document], decisions: Sequence[dict[str, Any]]) -> list[PageRow]:
    """One row per page, from the documents and the compress node's decisions."""
    by_index = {record.get("document_index"): record for record in decisions}
    rows = []
    for index, document in enumerate(documents):
        record = by_index.get(index, {})
        rows.append(
            PageRow(
                source=str(document.metadata.get("source", index)),
                evidence=bool(document.metadata.get("evidence", False)),
                raw_tokens=int(record.get("input_tokens", 0)),
                forwarded_tokens=int(record.get("output_tokens", 0)),
                decision=str(record.get("decision", "-")),
                rung=record.get("rung"),
                bits_per_token=record.get("bits_per_token"),
                reason=str(record.get("reason", "")),
            )
        )
    return rows


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def render_question(console: Console, number: int, question: DemoQuestion) -> None:
    """A table of one question's pages, then its answer and the gold answer.

    Example:
        ::

            render_question(Console(), 1, report.questions[0])
    """
    title = f"Q{number} {question.company}: {question.question}"
    table = Table(title=escape(title), title_justify="left", expand=False)
    for column in ("page", "raw tokens", "forwarded", "decision", "rung", "bits/token"):
        table.add_column(column, justify="left" if column in ("page", "decision") else "right")
    for page in question.pages:
        label = f"{page.source}{' (evidence)' if page.evidence else ''}"
        rung = "-" if page.rung is None else str(page.rung)
        table.add_row(
            escape(label),
            str(page.raw_tokens),
            str(page.forwarded_tokens),
            page.decision,
            rung,
            _fmt(page.bits_per_token),
        )
    table.add_section()
    table.add_row("total", str(question.raw_tokens), str(question.forwarded_tokens), "", "", "")
    console.print(table)
    console.print(f"  [bold]answer[/]  {escape(question.answer)}")
    console.print(f"  [bold]gold[/]    {escape(question.gold)}  [dim]({question.wall_s:.0f} s)[/]")

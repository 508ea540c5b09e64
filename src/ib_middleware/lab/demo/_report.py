"""What the demo measured, per page and per question, and how it is shown.

Evidence containment: whether the text the answering model read (every forwarded page of a
question) still holds what the question needs, judged with the ``facts`` judge against the
gold answer. A question whose raw pages do not hold it either is not judgeable (None): the judge
cannot find its answer even uncompressed, so it counts neither way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from langchain_core.documents import Document
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ib_middleware.lab.demo._research import ResearchReport, yes_no
from ib_middleware.lab.judges import JUDGES
from ib_middleware.langgraph import MARKER_KEY

__all__ = [
    "DECISIONS",
    "DemoQuestion",
    "DemoReport",
    "PageRow",
    "holds_answer",
    "page_rows",
    "page_text",
    "render_question",
]

DECISIONS = ("passthrough", "accepted", "pruned", "fallback")
"""The decisions a page can get, in the order the summary counts them."""

_ROUTED = ("accepted", "pruned", "fallback")


def page_text(documents: Sequence[Document]) -> str:
    """The page texts of a question, one after another (what ``holds_answer`` judges).

    A pruned page counts as empty: its note's token count is no evidence.

    Example:
        >>> pruned = Document("[note; 1577 tokens omitted]",
        ...                   metadata={"ib_middleware": {"decision": "pruned"}})
        >>> print(page_text([Document("Capex 1,577."), pruned, Document("Other filing.")]))
        Capex 1,577.
        <BLANKLINE>
        Other filing.
    """
    return "\n\n".join(
        document.page_content
        for document in documents
        if document.metadata.get(MARKER_KEY, {}).get("decision") != "pruned"
    )


def holds_answer(raw: str, forwarded: str, gold: str) -> bool | None:
    """Whether ``forwarded`` still holds the gold answer; None when ``raw`` does not hold it.

    Judged with ``JUDGES["facts"]`` (every figure of the answer, or the whole answer).

    Example:
        >>> raw = "Purchases of PP&E were $1,577 million."
        >>> holds_answer(raw, "PP&E purchases: 1,577", "$1577.00")
        True
        >>> holds_answer(raw, "Capital spending rose.", "$1577.00")
        False
        >>> holds_answer("Revenue grew.", "Revenue grew.", "$1577.00") is None
        True
    """
    facts = JUDGES["facts"]
    if not facts(raw, gold):
        return None
    return facts(forwarded, gold)


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
    keeps_answer: bool | None = None
    """An evidence page: whether its forwarded text holds the answer (``holds_answer``); None
    for a distractor page, or an evidence page whose raw text does not hold the answer alone."""


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
    evidence_contained: bool | None = None
    """Whether the forwarded pages together hold the answer (``holds_answer``); None when the
    raw pages do not hold it either (not judgeable)."""

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
        >>> page = PageRow("3M p1", True, 1000, 100, "accepted", 0, 0.4, "accepted", True)
        >>> note = PageRow("AMD p2", False, 500, 20, "pruned", None, None, "nothing relevant")
        >>> kept = DemoQuestion("a", "3M", "Capex?", "$1577", "1577", (page, note), 60.0, True)
        >>> unjudged = DemoQuestion("b", "AMD", "Why?", "Demand", "-", (note,), 30.0, None)
        >>> summary = DemoReport((kept, unjudged), "smollm2", 91.0).summary()
        >>> round(summary["token_savings"], 2), summary["decisions"], summary["fallback_rate"]
        (0.93, {'passthrough': 0, 'accepted': 1, 'pruned': 2, 'fallback': 0}, 0.0)
        >>> summary["evidence_containment"], summary["judgeable"]
        (1.0, 1)
    """

    questions: tuple[DemoQuestion, ...]
    answerer: str
    wall_s: float
    research: ResearchReport | None = None
    """The research agent's search calls, when it ran."""

    def _judged(self) -> list[bool]:
        return [q.evidence_contained for q in self.questions if q.evidence_contained is not None]

    def summary(self) -> dict[str, Any]:
        """Counts, tokens, savings, evidence containment and fallback rate, JSON-ready.

        ``evidence_containment`` is the share of the judgeable questions (``judgeable``: those
        whose raw pages hold the answer) whose forwarded pages still hold it; None when no
        question is judgeable. ``fallback_rate`` is over the routed pages, those a rung ran
        on: accepted + pruned + fallback (passthrough pages never reach a rung).
        """
        decisions = Counter(page.decision for q in self.questions for page in q.pages)
        raw = sum(q.raw_tokens for q in self.questions)
        forwarded = sum(q.forwarded_tokens for q in self.questions)
        routed = sum(decisions[k] for k in _ROUTED)
        judged = self._judged()
        return {
            "questions": len(self.questions),
            "answerer": self.answerer,
            "decisions": {k: decisions[k] for k in DECISIONS},
            "raw_tokens": raw,
            "forwarded_tokens": forwarded,
            "token_savings": 1.0 - forwarded / raw if raw else 0.0,
            "evidence_containment": sum(judged) / len(judged) if judged else None,
            "judgeable": len(judged),
            "fallback_rate": decisions["fallback"] / routed if routed else 0.0,
            "wall_s": round(self.wall_s, 1),
        }

    def to_dict(self) -> dict[str, Any]:
        """The summary plus every question and page."""
        results = [
            {**asdict(q), "raw_tokens": q.raw_tokens, "forwarded_tokens": q.forwarded_tokens}
            for q in self.questions
        ]
        out: dict[str, Any] = {**self.summary(), "results": results}
        if self.research is not None and self.research.calls:
            calls = [asdict(call) for call in self.research.calls]
            out["research"] = {**self.research.summary(), "calls": calls}
        return out

    def summary_line(self) -> str:
        """One line: tokens, savings, evidence containment, decisions, fallback rate, time.

        Example:
            >>> page = PageRow("3M p1", True, 1000, 100, "accepted", 0, 0.4, "accepted", True)
            >>> question = DemoQuestion("a", "3M", "Capex?", "$1577", "1577", (page,), 6.0, True)
            >>> for part in DemoReport((question,), "smollm2", 6.0).summary_line().split("; "):
            ...     print(part)
            1 questions: 1000 raw tokens -> 100 forwarded (90% saved)
            evidence kept in 1/1 judgeable (100%)
            passthrough 0, accepted 1, pruned 0, fallback 0
            fallback rate 0% of routed pages
            6 s
        """
        s = self.summary()
        counts = ", ".join(f"{k} {v}" for k, v in s["decisions"].items())
        if s["judgeable"]:
            kept = sum(self._judged())
            evidence = (
                f"evidence kept in {kept}/{s['judgeable']} judgeable "
                f"({s['evidence_containment']:.0%})"
            )
        else:
            evidence = "evidence kept: no judgeable question"
        return (
            f"{s['questions']} questions: {s['raw_tokens']} raw tokens -> "
            f"{s['forwarded_tokens']} forwarded ({s['token_savings']:.0%} saved); {evidence}; "
            f"{counts}; fallback rate {s['fallback_rate']:.0%} of routed pages; "
            f"{s['wall_s']:.0f} s"
        )


def page_rows(
    documents: Sequence[Document],
    decisions: Sequence[dict[str, Any]],
    *,
    raw: Sequence[Document] = (),
    gold: str = "",
) -> list[PageRow]:
    """One row per page, from the forwarded documents and the compress node's decisions.

    ``raw`` are the same pages before compression, in the same order, and ``gold`` the gold
    answer: together they give an evidence page's ``keeps_answer``.

    Example:
        >>> raw = [Document("Capex was $1,577 million.", metadata={"evidence": True})]
        >>> forwarded = [Document("Capex rose.", metadata={"evidence": True})]
        >>> record = {"document_index": 0, "decision": "accepted", "rung": 0}
        >>> [row] = page_rows(forwarded, [record], raw=raw, gold="$1577")
        >>> row.decision, row.keeps_answer
        ('accepted', False)
    """
    by_index = {record.get("document_index"): record for record in decisions}
    rows = []
    for index, document in enumerate(documents):
        record = by_index.get(index, {})
        evidence = bool(document.metadata.get("evidence", False))
        keeps = None
        if evidence and index < len(raw) and gold:
            keeps = holds_answer(raw[index].page_content, document.page_content, gold)
        rows.append(
            PageRow(
                source=str(document.metadata.get("source", index)),
                evidence=evidence,
                raw_tokens=int(record.get("input_tokens", 0)),
                forwarded_tokens=int(record.get("output_tokens", 0)),
                decision=str(record.get("decision", "-")),
                rung=record.get("rung"),
                bits_per_token=record.get("bits_per_token"),
                reason=str(record.get("reason", "")),
                keeps_answer=keeps,
            )
        )
    return rows


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


_COLUMNS = ("page", "raw tokens", "forwarded", "decision", "rung", "bits/token", "keeps answer")


def render_question(console: Console, number: int, question: DemoQuestion) -> None:
    """A table of one question's pages, then its answer, the gold answer and containment.

    The ``keeps answer`` column says, for an evidence page, whether its forwarded text still
    holds the answer (``-``: a distractor, or an evidence page that does not hold it raw).

    Example:
        ::

            render_question(Console(), 1, report.questions[0])
    """
    title = f"Q{number} {question.company}: {question.question}"
    table = Table(title=escape(title), title_justify="left", expand=False)
    for column in _COLUMNS:
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
            yes_no(page.keeps_answer),
        )
    table.add_section()
    table.add_row(
        "total",
        str(question.raw_tokens),
        str(question.forwarded_tokens),
        "",
        "",
        "",
        yes_no(question.evidence_contained),
    )
    console.print(table)
    console.print(f"  [bold]answer[/]  {escape(question.answer)}")
    console.print(f"  [bold]gold[/]    {escape(question.gold)}  [dim]({question.wall_s:.0f} s)[/]")
    kept = {
        True: "yes  [dim](the forwarded pages hold the gold answer)[/]",
        False: "no  [dim](the raw pages held the gold answer; the forwarded ones do not)[/]",
        None: "-  [dim](not judgeable: the raw pages do not hold the gold answer)[/]",
    }[question.evidence_contained]
    console.print(f"  [bold]evidence kept[/] {kept}")

"""The bundled HotpotQA sample (CC BY-SA 4.0): ten search results per question, two of them gold.

See README.md in this folder for the attribution and the fields. ``load_hotpotqa`` reads the
sample (or any file in the upstream layout, as JSON Lines or a JSON list) into
``HotpotQuestion`` rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

__all__ = ["HotpotQuestion", "Paragraph", "hotpotqa_path", "load_hotpotqa"]

YES_NO = frozenset({"yes", "no"})


def hotpotqa_path() -> Path:
    """Path of the bundled HotpotQA sample (27 questions, JSON Lines).

    Example:
        >>> hotpotqa_path().name
        'hotpotqa_dev.jsonl'
    """
    return Path(str(files(__package__ or "ib_middleware.lab.data").joinpath("hotpotqa_dev.jsonl")))


@dataclass(frozen=True)
class Paragraph:
    """One search result: a Wikipedia paragraph's title and its sentences (as upstream)."""

    title: str
    sentences: tuple[str, ...]

    @property
    def text(self) -> str:
        """The sentences joined as upstream wrote them (each after the first opens with a space)."""
        return "".join(self.sentences).strip()


@dataclass(frozen=True)
class HotpotQuestion:
    """One HotpotQA question with its ten paragraphs and the sentences a reader needs.

    Attributes:
        question_id: The upstream ``_id``.
        question: The question.
        answer: The gold answer (``yes``/``no`` for some comparisons).
        kind: ``bridge`` or ``comparison``.
        paragraphs: The ten results in upstream order.
        supporting: ``(title, sentence index)`` of every supporting fact.
    """

    question_id: str
    question: str
    answer: str
    kind: str
    paragraphs: tuple[Paragraph, ...]
    supporting: tuple[tuple[str, int], ...]

    def supporting_sentences(self, title: str | None = None) -> tuple[str, ...]:
        """The supporting-fact sentences (of one paragraph when ``title`` is given), stripped."""
        by_title = {paragraph.title: paragraph for paragraph in self.paragraphs}
        out = []
        for fact_title, index in self.supporting:
            paragraph = by_title.get(fact_title)
            if paragraph is None or index >= len(paragraph.sentences):
                continue  # upstream names a few sentences its context lacks
            if title is None or fact_title == title:
                out.append(paragraph.sentences[index].strip())
        return tuple(out)

    @property
    def answer_must_survive(self) -> bool:
        """Whether the answer string itself must be kept (it is not yes/no)."""
        return self.answer.strip().lower() not in YES_NO


def _question(row: dict[str, object], where: str) -> HotpotQuestion:
    context, facts = row.get("context"), row.get("supporting_facts")
    if not isinstance(context, list) or not isinstance(facts, list):
        msg = f"{where}: a HotpotQA record needs `context` and `supporting_facts` lists"
        raise ValueError(msg)  # noqa: TRY004  # bad file content, not a bad argument type
    try:
        paragraphs = tuple(
            Paragraph(str(title), tuple(str(s) for s in sentences)) for title, sentences in context
        )
        supporting = tuple((str(title), int(index)) for title, index in facts)
        return HotpotQuestion(
            question_id=str(row["_id"]),
            question=str(row["question"]),
            answer=str(row["answer"]),
            kind=str(row.get("type", "")),
            paragraphs=paragraphs,
            supporting=supporting,
        )
    except (KeyError, TypeError, ValueError) as error:
        msg = f"{where}: not a HotpotQA record ({type(error).__name__}: {error})"
        raise ValueError(msg) from error


def load_hotpotqa(path: str | Path | None = None) -> list[HotpotQuestion]:
    """Read HotpotQA questions (the bundled sample by default).

    Raises:
        ValueError: On a record without HotpotQA's fields (the message names its line).

    Example:
        >>> questions = load_hotpotqa()
        >>> len(questions), len(questions[0].paragraphs), questions[0].supporting[0]
        (27, 10, ('Scott Derrickson', 0))
    """
    source = Path(path) if path is not None else hotpotqa_path()
    text = source.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        rows = [(f"{source.name}[{i}]", row) for i, row in enumerate(json.loads(text))]
    else:
        rows = [
            (f"{source.name}:{number}", json.loads(line))
            for number, line in enumerate(text.splitlines(), start=1)
            if line.strip()
        ]
    out = []
    for where, row in rows:
        if not isinstance(row, dict):
            msg = f"{where}: expected a JSON object"
            raise ValueError(msg)  # noqa: TRY004  # bad file content, not a bad argument type
        out.append(_question(row, where))
    return out

"""The labelled workloads the ladder is measured and calibrated on: search results, filing pages.

*Search results* (``search_result_cases``): the bundled HotpotQA sample (CC BY-SA 4.0), ten
Wikipedia paragraphs per question, two of them gold, in the shapes a search tool returns them:

- ``page``: one results page, each result its title on one line then its sentences, results
  separated by blank lines;
- ``items``: ten separate results (``result_text``), one record each;
- ``json``: the JSON text of ``{"results": [{"title", "content", "url"}, ...]}``.

What must survive: every supporting-fact sentence, and the answer string when it is not
yes/no and the context holds it.

*Filing pages* (``filing_page_cases``): the bundled FinanceBench sample (CC BY-NC 4.0), as
calibration v2 built it: per question whose evidence states figures, its evidence page, a
window of about half of it around the evidence (dropped when the cut loses the label), and
another company's filing page under the same question (which needs nothing). What must
survive (``ib_middleware.lab.filing_labels.needed_figures``): the answer's figures when the
page states them, else the figures of the line items the justification names (and its own
figures the page states), else every figure of the evidence's segments.

Every record is a ``WorkloadCase``: a ``LabelledCase`` (context, query, answer, case_id,
needs_evidence, group) with the workload, the shape, the variant, the source ``document``, the
``needed`` facts, and ``contained(text)``, the workload's containment judge. ``group`` is the
question; ``document`` the source document (a filing's ``doc_name``, a result's title; for a
page of ten results, the question's id): cross-validation keeps both together.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from ib_middleware.lab.data import financebench_path
from ib_middleware.lab.data.hotpotqa import HotpotQuestion, Paragraph, load_hotpotqa
from ib_middleware.lab.filing_labels import (
    LabelSource,
    evidence_window,
    label_figures,
    needed_figures,
)
from ib_middleware.lab.graded import company_of, load_graded_cases
from ib_middleware.lab.judges import answer_contained, facts_contained, normalize_text

__all__ = [
    "Shape",
    "Workload",
    "WorkloadCase",
    "filing_page_cases",
    "result_text",
    "results_json",
    "results_page",
    "search_result_cases",
    "sentence_contained",
]

Workload = Literal["search_results", "filing_pages"]
Shape = Literal["page", "items", "json"]


def sentence_contained(sentence: str, text: str) -> bool:
    """Whether ``text`` holds ``sentence`` word for word (after ``normalize_text``).

    Example:
        >>> sentence_contained("He lives in Los Angeles.", 'Bio: he lives in "Los Angeles".')
        True
    """
    needle = normalize_text(sentence)
    return not needle or f" {needle} " in f" {normalize_text(text)} "


@dataclass(frozen=True)
class WorkloadCase:
    """One labelled case of a workload: a ``LabelledCase`` with what must survive.

    Attributes:
        context: The raw context X (a page, one result, or a JSON text).
        query: The query Q.
        answer: The label the ``facts`` judge reads: for filing pages the needed figures (or
            the gold answer, when the page states it); for search results the gold answer.
        case_id: ``<question>/<variant>`` (``/<index>`` added for an item).
        needs_evidence: False when nothing here is needed (another filing; a result without a
            supporting fact): forwarding nothing of it loses nothing.
        group: The question; every record of one question shares it.
        workload: ``search_results`` or ``filing_pages``.
        shape: ``page``, ``items`` or ``json``.
        variant: ``page``, ``window`` or ``distractor`` (filing pages); ``results`` (a page or
            JSON of ten results) or ``result`` (one item).
        document: The source document: a filing's ``doc_name``, a result's title, or the
            question's id for a page of ten results.
        needed: The facts that must survive: sentences (search) or figures (filing).
        label_source: For filing pages, where ``needed`` comes from (``needed_figures``).
        item_index: For an item, its position among the question's results.
        n_items: For an item, how many results the question's tool output holds.
    """

    context: str
    query: str
    answer: str
    case_id: str
    needs_evidence: bool = True
    group: str = ""
    workload: Workload = "filing_pages"
    shape: Shape = "page"
    variant: str = "page"
    document: str = ""
    needed: tuple[str, ...] = ()
    label_source: LabelSource | None = None
    item_index: int | None = None
    n_items: int | None = None

    def contained(self, text: str) -> bool:
        """Whether ``text`` keeps everything this case needs (True when it needs nothing).

        Search results: every needed sentence word for word, and the answer when it must
        survive. Filing pages: the ``facts`` judge on ``answer`` (every figure of the label).
        """
        if not self.needs_evidence:
            return True
        if self.workload == "filing_pages":
            return facts_contained(self.answer, text)
        return all(sentence_contained(sentence, text) for sentence in self.needed)


# Search results -------------------------------------------------------------------------------


def result_text(paragraph: Paragraph) -> str:
    """One search result as text: its title on one line, then its sentences.

    Example:
        >>> paragraph = Paragraph("Ed Wood", ("Ed Wood was a filmmaker.", " He was born in 1924."))
        >>> print(result_text(paragraph))
        Ed Wood
        Ed Wood was a filmmaker. He was born in 1924.
    """
    return f"{paragraph.title}\n{paragraph.text}"


def results_page(question: HotpotQuestion) -> str:
    """The ten results as one page, one after another, separated by blank lines."""
    return "\n\n".join(result_text(paragraph) for paragraph in question.paragraphs)


def _url(title: str) -> str:
    return "https://en.wikipedia.org/wiki/" + quote(title.replace(" ", "_"))


def results_json(question: HotpotQuestion) -> str:
    """The ten results as a search tool's JSON: ``{"results": [{title, content, url}, ...]}``."""
    results = [
        {"title": p.title, "content": p.text, "url": _url(p.title)} for p in question.paragraphs
    ]
    return json.dumps({"results": results}, ensure_ascii=False)


def _search_needed(question: HotpotQuestion, context: str, title: str | None) -> tuple[str, ...]:
    sentences = question.supporting_sentences(title)
    if not sentences:
        return ()
    answer = question.answer.strip()
    # JSON escapes quotes; the judge compares normalised words, so a JSON text counts too.
    keep_answer = question.answer_must_survive and answer_contained(answer, context)
    return (*sentences, answer) if keep_answer else sentences


def search_result_cases(
    shape: Shape = "page", *, path: str | Path | None = None
) -> list[WorkloadCase]:
    """The search-results workload in one shape (see the module docstring).

    Args:
        shape: ``page`` (one record per question), ``items`` (one record per result: ten per
            question, ``needs_evidence`` only on results holding a supporting fact) or
            ``json`` (one record per question, the JSON text).
        path: A HotpotQA file in the upstream layout; the bundled sample by default.

    Example:
        >>> pages = search_result_cases("page")
        >>> len(pages), pages[0].needed[0][:16], pages[0].contained(pages[0].context)
        (27, 'Scott Derrickson', True)
        >>> items = search_result_cases("items")
        >>> len(items), sum(item.needs_evidence for item in items[:10])
        (270, 2)
    """
    out: list[WorkloadCase] = []
    for question in load_hotpotqa(path):
        common = {
            "query": question.question,
            "answer": question.answer,
            "group": question.question_id,
            "workload": "search_results",
            "shape": shape,
        }
        if shape == "items":
            for index, paragraph in enumerate(question.paragraphs):
                text = result_text(paragraph)
                needed = _search_needed(question, text, paragraph.title)
                out.append(
                    WorkloadCase(
                        context=text,
                        case_id=f"{question.question_id}/result/{index}",
                        needs_evidence=bool(needed),
                        variant="result",
                        document=paragraph.title,
                        needed=needed,
                        item_index=index,
                        n_items=len(question.paragraphs),
                        **common,  # type: ignore[arg-type]
                    )
                )
            continue
        context = results_page(question) if shape == "page" else results_json(question)
        out.append(
            WorkloadCase(
                context=context,
                case_id=f"{question.question_id}/results",
                variant="results",
                document=question.question_id,
                needed=_search_needed(question, context, None),
                **common,  # type: ignore[arg-type]
            )
        )
    return out


# Filing pages ---------------------------------------------------------------------------------


def filing_page_cases(*, path: str | Path | None = None, seed: int = 0) -> list[WorkloadCase]:
    """The filing-pages workload: page, window and another filing's page per question.

    Only questions whose evidence states figures are used (as in calibration v2); a window
    whose cut loses the label is left out.

    Args:
        path: FinanceBench JSON Lines; the bundled sample by default.
        seed: Seeds the window offsets and the other filing drawn.

    Example:
        >>> cases = filing_page_cases()
        >>> [c.variant for c in cases[:3]], cases[0].label_source, cases[0].answer
        (['page', 'window', 'distractor'], 'answer', '$1577.00')
        >>> all(c.contained(c.context) for c in cases)
        True
    """
    graded = load_graded_cases(path or financebench_path())
    out: list[WorkloadCase] = []
    for case in graded:
        if not any(label_figures(segment.text) for segment in case.evidence):
            continue
        source, figures = needed_figures(case)
        label = case.answer if source == "answer" else " ".join(figures)
        rng = random.Random(f"{seed}-{case.case_id}")  # noqa: S311  # a seeded draw, not a secret
        company = company_of(case.group)
        others = sorted(
            {
                (c.context, c.group)
                for c in graded
                if c.group != case.group and company_of(c.group) != company
            }
        )
        question = case.case_id.rsplit("-", 1)[0]
        variants = [("page", case.context, case.group, True)]
        window = evidence_window(case, rng)
        if facts_contained(label, window):
            variants.append(("window", window, case.group, True))
        if others:
            other, other_doc = others[rng.randrange(len(others))]
            variants.append(("distractor", other, other_doc, False))
        out += [
            WorkloadCase(
                context=context,
                query=case.query,
                answer=label if needs else "",
                case_id=f"{case.case_id}/{variant}",
                needs_evidence=needs,
                group=question,
                workload="filing_pages",
                shape="page",
                variant=variant,
                document=document,
                needed=figures if needs else (),
                label_source=source if needs else None,
            )
            for variant, context, document, needs in variants
        ]
    return out

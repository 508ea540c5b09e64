"""The labelled workloads: search results (HotpotQA) and filing pages (FinanceBench)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ib_middleware.lab.data.hotpotqa import load_hotpotqa
from ib_middleware.lab.filing_labels import needed_figures
from ib_middleware.lab.graded import GradedCase
from ib_middleware.lab.workloads import (
    filing_page_cases,
    results_json,
    results_page,
    search_result_cases,
    sentence_contained,
)
from ib_middleware.segments import split_segments


def test_hotpotqa_sample_has_ten_results_and_two_gold_per_question() -> None:
    questions = load_hotpotqa()
    assert len(questions) == 27
    for question in questions:
        assert len(question.paragraphs) == 10
        gold = {title for title, _ in question.supporting}
        assert len(gold) == 2
        assert question.supporting_sentences()


def test_hotpotqa_loader_names_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"_id": "x", "question": "q"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:1"):
        load_hotpotqa(path)


def test_a_results_page_lists_each_title_then_its_sentences() -> None:
    question = load_hotpotqa()[0]
    page = results_page(question)
    blocks = page.split("\n\n")
    assert len(blocks) == 10
    first = question.paragraphs[0]
    assert blocks[0] == f"{first.title}\n{first.text}"


def test_the_json_shape_is_what_a_search_tool_returns() -> None:
    question = load_hotpotqa()[0]
    payload = json.loads(results_json(question))
    assert [r["title"] for r in payload["results"]] == [p.title for p in question.paragraphs]
    assert set(payload["results"][0]) == {"title", "content", "url"}


@pytest.mark.parametrize("shape", ["page", "json"])
def test_search_pages_need_every_supporting_sentence(shape: str) -> None:
    cases = search_result_cases(shape)  # type: ignore[arg-type]
    assert len(cases) == 27
    assert all(case.contained(case.context) for case in cases)
    case = cases[0]
    assert case.group == case.document == load_hotpotqa()[0].question_id
    # Dropping one supporting sentence loses the case.
    sentence = case.needed[0]
    assert not case.contained(case.context.replace(sentence, ""))


def test_the_answer_must_survive_unless_yes_or_no() -> None:
    cases = search_result_cases("page")
    yes_no = [c for c in cases if c.answer.lower() in {"yes", "no"}]
    assert yes_no
    assert all(c.answer not in c.needed for c in yes_no)
    animorphs = next(c for c in cases if c.answer == "Animorphs")
    assert "Animorphs" in animorphs.needed


def test_search_items_are_grouped_by_question_with_their_title_as_document() -> None:
    items = search_result_cases("items")
    assert len(items) == 270
    by_question = Counter(item.group for item in items)
    assert set(by_question.values()) == {10}
    first = items[:10]
    assert [item.item_index for item in first] == list(range(10))
    assert {item.n_items for item in first} == {10}
    gold = [item for item in first if item.needs_evidence]
    assert {item.document for item in gold} == {"Scott Derrickson", "Ed Wood"}
    # A result without a supporting fact needs nothing: an empty forward loses nothing.
    assert all(item.contained("") for item in first if not item.needs_evidence)
    assert not gold[0].contained("")


def test_sentence_containment_ignores_case_and_punctuation_only() -> None:
    assert sentence_contained("It grew 5%.", "Before. it grew 5 % after")
    assert not sentence_contained("It grew 5%.", "it grew 15%")


def test_filing_labels_prefer_the_answer_then_line_items_then_evidence() -> None:
    page = "Balance\n(Millions)\n2018\n2017\nInventories\n900\n800\nCost of sales\n1,577\n1,373"
    stated = GradedCase("a", page, "q", (), "$1577.00")
    assert needed_figures(stated) == ("answer", ("$1577.00",))
    named = GradedCase(
        "b", page, "q", (), "1.75", justification="... a single line item named: Inventories."
    )
    assert needed_figures(named) == ("line_items", ("900", "800"))
    own = GradedCase("c", page, "q", (), "1.75", justification="Cost/Inventory = 1577/900*100")
    assert needed_figures(own) == ("line_items", ("1577", "900"))
    evidence = tuple(split_segments(page)[-1:])
    fallback = GradedCase("d", page, "q", evidence, "1.75", justification="")
    assert needed_figures(fallback) == ("evidence", ("1,577", "1,373"))


def test_filing_pages_keep_page_window_and_other_filing_per_question() -> None:
    cases = filing_page_cases()
    assert all(case.contained(case.context) for case in cases)
    variants = Counter(case.variant for case in cases)
    assert variants["page"] == variants["distractor"] >= variants["window"] > 0
    sources = Counter(case.label_source for case in cases if case.needs_evidence)
    assert set(sources) == {"answer", "line_items", "evidence"}
    distractors = [case for case in cases if case.variant == "distractor"]
    assert all(not case.needs_evidence and case.contained("") for case in distractors)
    page = next(case for case in cases if case.variant == "page")
    other = next(c for c in distractors if c.group == page.group)
    assert other.document != page.document
    assert filing_page_cases(seed=0) == cases

"""Dataset loaders: every format, seeded distractors, filters, and errors that say what to fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ib_middleware.lab.data import (
    LabelledCase,
    financebench_cases,
    financebench_path,
    load_cases,
    load_dataset,
    load_longhealth,
    load_qasper,
)

FIXTURES = Path(__file__).parent / "fixtures"
LONGHEALTH = FIXTURES / "longhealth_tiny.json"
QASPER = FIXTURES / "qasper_tiny.json"
QASPER_LINES = FIXTURES / "qasper_tiny.jsonl"


def _financebench_file(tmp_path: Path) -> Path:
    """Six one-line-page cases over three documents; case 5 has two evidence pages."""
    rows = []
    for index in range(6):
        doc = f"DOC{index % 3}"
        pages = [f"page {index} of {doc}"] + ([f"page {index}b of {doc}"] if index == 5 else [])
        rows.append(
            {
                "financebench_id": f"fb{index}",
                "doc_name": doc,
                "question": f"question {index}?",
                "answer": f"answer {index}",
                "evidence": [{"evidence_text_full_page": page, "doc_name": doc} for page in pages],
            }
        )
    path = tmp_path / "fb.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    return path


# --- FinanceBench -------------------------------------------------------------------------------


def test_financebench_defaults_to_the_bundled_sample_and_matches_load_cases():
    cases = financebench_cases()
    assert cases == load_cases(financebench_path())
    assert load_dataset("financebench") == cases


def test_distractors_are_seeded_and_reproducible():
    first = financebench_cases(distractor_pages=3, seed=1)
    again = financebench_cases(distractor_pages=3, seed=1)
    other = financebench_cases(distractor_pages=3, seed=2)
    plain = financebench_cases()
    assert first == again
    assert first != other
    for padded, case in zip(first, plain, strict=True):
        assert padded.context.count(case.context) == 1
        assert (padded.query, padded.answer, padded.case_id) == (
            case.query,
            case.answer,
            case.case_id,
        )
        assert len(padded.context) > len(case.context)


def test_distractors_come_from_other_documents_and_evidence_stays_together(tmp_path):
    path = _financebench_file(tmp_path)
    positions = set()
    for seed in range(30):
        for case in financebench_cases(path, distractor_pages=2, seed=seed):
            parts = case.context.split("\n\n")
            index = int(case.case_id[2:])
            own = [part for part in parts if part.startswith(f"page {index}")]
            assert len(parts) == 2 + len(own)
            assert own == [f"page {index} of DOC{index % 3}"] + (
                [f"page {index}b of DOC{index % 3}"] if index == 5 else []
            )
            start = parts.index(own[0])
            assert parts[start : start + len(own)] == own  # evidence pages adjacent, in order
            assert all(f"DOC{index % 3}" not in part for part in parts if part not in own)
            assert len(set(parts)) == len(parts)
            positions.add(start)
    assert positions == {0, 1, 2}  # first, between, last: every slot is drawn


def test_limit_leaves_each_context_as_the_full_load_draws_it(tmp_path):
    path = _financebench_file(tmp_path)
    by_id = {case.case_id: case for case in financebench_cases(path, distractor_pages=1, seed=4)}
    limited = load_dataset("financebench", path, distractor_pages=1, seed=4, limit=2)
    assert [by_id[case.case_id] for case in limited] == limited


def test_too_many_distractors_say_how_many_are_available(tmp_path):
    path = _financebench_file(tmp_path)
    with pytest.raises(ValueError, match=r"case fb0 can take at most 5 distractor pages"):
        financebench_cases(path, distractor_pages=6)
    with pytest.raises(ValueError, match="distractor_pages must be 0 or more"):
        financebench_cases(path, distractor_pages=-1)


def test_malformed_financebench_lines_are_named(tmp_path):
    path = tmp_path / "fb.jsonl"
    path.write_text('{"doc_name": "D", "question": "q", "answer": "a", "evidence": []}\n')
    with pytest.raises(ValueError, match=r"fb.jsonl:1: `evidence` is empty"):
        financebench_cases(path)
    path.write_text('{"doc_name": "D", "question": "q", "answer": "a", "evidence": [{}]}\n')
    with pytest.raises(ValueError, match=r"fb.jsonl:1: `evidence_text_full_page` must be"):
        financebench_cases(path)
    path.write_text("\n{not json\n")
    with pytest.raises(ValueError, match=r"fb.jsonl:2: invalid JSON"):
        financebench_cases(path)


# --- JSON Lines ---------------------------------------------------------------------------------


def test_jsonl_reads_generic_rows(tmp_path):
    path = tmp_path / "cases.jsonl"
    rows = [
        {"id": "a", "context": "Revenue was 12.", "query": "Revenue?", "answer": "12"},
        {"id": "b", "context": "Nothing here.", "question": "Cost?", "answer": "7"},
    ]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    assert load_dataset("jsonl", path) == [
        LabelledCase("Revenue was 12.", "Revenue?", "12", "a"),
        LabelledCase("Nothing here.", "Cost?", "7", "b"),
    ]
    assert [case.case_id for case in load_dataset("jsonl", str(path), answerable_only=True)] == [
        "a"
    ]


# --- LongHealth ---------------------------------------------------------------------------------


def test_longhealth_one_case_per_question():
    cases = load_longhealth(LONGHEALTH)
    assert [case.case_id for case in cases] == ["patient_01-1", "patient_01-2", "patient_02-1"]
    first, second, third = cases
    assert first.context.startswith("Admission letter.")
    assert "\n\nDischarge letter." in first.context
    assert first.context == second.context
    assert first.query.splitlines() == [
        "Which wrist was fractured?",
        "A. Right wrist",
        "B. Left wrist",
        "C. Both wrists",
        "D. Neither wrist",
        "E. Cannot be answered",
    ]
    assert first.answer == "Left wrist"  # `correct` holds the text
    assert second.answer == "6 weeks"  # `correct` holds a (lower-case) letter
    assert third.answer == "Penicillin"
    assert load_dataset("longhealth", LONGHEALTH) == cases


def _longhealth_with(tmp_path: Path, **changes: object) -> Path:
    data = json.loads(LONGHEALTH.read_text())
    data["patient_02"]["questions"][0].update(changes)
    path = tmp_path / "lh.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"correct": "F"}, r"patient patient_02, question 1: `correct` \('F'\) is neither"),
        ({"correct": 3}, r"question 1: `correct` must be the right option's text or its letter"),
        ({"answer_c": None}, r"question 1: `answer_c` must be a string, got NoneType"),
        ({"question": ["?"]}, r"question 1: `question` must be a string"),
    ],
)
def test_longhealth_errors_name_patient_question_and_field(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        load_longhealth(_longhealth_with(tmp_path, **changes))


def test_longhealth_rejects_other_shapes(tmp_path):
    path = tmp_path / "lh.json"
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match=r"lh.json: the file must be a JSON object, got list"):
        load_longhealth(path)
    path.write_text(json.dumps({"p": {"questions": []}}))
    with pytest.raises(ValueError, match="patient p: `texts` must be a JSON object"):
        load_longhealth(path)
    path.write_text(json.dumps({"p": {"texts": {}, "questions": []}}))
    with pytest.raises(ValueError, match="holds no questions; expected LongHealth"):
        load_longhealth(path)
    path.write_text('{"p": \n oops}')
    with pytest.raises(ValueError, match=r"lh.json:2: invalid JSON"):
        load_longhealth(path)


# --- QASPER -------------------------------------------------------------------------------------


def test_qasper_one_case_per_answerable_question():
    cases = load_qasper(QASPER)
    assert [(case.case_id, case.answer) for case in cases] == [
        ("q-alpha-1", "12 sheep; 3 goats"),  # extractive spans
        ("q-alpha-2", "In a barn overnight."),  # first answer unanswerable, second free-form
        ("q-beta-1", "yes"),
        ("q-beta-2", "no"),
    ]  # q-alpha-3 has only unanswerable answers
    alpha, beta = cases[0].context, cases[2].context
    assert alpha.startswith("Counting Sheep with Tiny Models\n\nAbstract\nWe count 12 sheep")
    assert "\n\nIntroduction\nCounting animals is a made-up task.\n\nIt is hard at night." in alpha
    assert alpha.endswith("Method ::: Setup\nAll animals were kept in a barn overnight.")
    assert "\n\nRain fell on most days.\n\nResults\n" in beta  # a section with no name
    assert cases[0].query == "How many animals were counted?"


def test_qasper_json_lines_and_column_layout_read_the_same():
    assert load_qasper(QASPER_LINES) == load_qasper(QASPER)
    assert load_dataset("qasper", QASPER_LINES) == load_qasper(QASPER)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"title": "t", "qas": []}\n', r"papers.jsonl:1: every line needs the paper's `id`"),
        ('{"id": "p", "qas": []}\n{oops\n', r"papers.jsonl:2: invalid JSON"),
        ('{"id": "p", "abstract": "a", "full_text": [], "qas": []}\n', r"`title` must be a string"),
        (
            '{"id": "p", "title": "t", "abstract": "a", "full_text": {"section_name": ["s"],'
            ' "paragraphs": []}, "qas": []}\n',
            r"paper p\): the lists in `full_text` \(section_name, paragraphs\) differ in length",
        ),
        (
            '{"id": "p", "title": "t", "abstract": "a", "full_text": [],'
            ' "qas": [{"question": "q", "question_id": "q1", "answers": "none"}]}\n',
            r"question q1: `answers` must be a list",
        ),
        ('{"id": "p", "title": "t", "abstract": "a", "full_text": [], "qas": []}\n', "no answer"),
    ],
)
def test_qasper_errors_name_the_line_paper_and_field(tmp_path, text, message):
    path = tmp_path / "papers.jsonl"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_qasper(path)


def test_qasper_json_errors_name_the_paper(tmp_path):
    data = json.loads(QASPER.read_text())
    del data["paper-beta"]["qas"][0]["question_id"]
    path = tmp_path / "qasper.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"paper paper-beta: `question_id` must be a string"):
        load_qasper(path)


# --- Filters and dispatch -----------------------------------------------------------------------


def test_filters_apply_in_order_answerable_then_length_then_limit():
    assert [case.case_id for case in load_dataset("qasper", QASPER, answerable_only=True)] == [
        "q-alpha-1",
        "q-alpha-2",
    ]  # "yes" and "no" are not in the paper's text
    lengths = {case.case_id: len(case.context) for case in load_qasper(QASPER)}
    short = min(lengths.values())
    kept = load_dataset("qasper", QASPER, max_context_chars=short)
    assert [case.case_id for case in kept] == ["q-beta-1", "q-beta-2"]
    assert load_dataset("qasper", QASPER, max_context_chars=short, answerable_only=True) == []
    assert [c.case_id for c in load_dataset("qasper", QASPER, answerable_only=True, limit=1)] == [
        "q-alpha-1"
    ]
    assert load_dataset("longhealth", LONGHEALTH, limit=0) == []
    assert len(load_dataset("longhealth", LONGHEALTH, answerable_only=True)) == 2


def test_financebench_filters_and_distractors_combine():
    plain = load_dataset("financebench", limit=5, answerable_only=True)
    padded = load_dataset("financebench", limit=5, answerable_only=True, distractor_pages=2)
    assert [case.case_id for case in plain] == [case.case_id for case in padded]
    cap = max(len(case.context) for case in plain)
    assert all(len(c.context) <= cap for c in load_dataset("financebench", max_context_chars=cap))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "squad", "path": "x"}, "unknown dataset kind 'squad'; choose one of"),
        ({"kind": "qasper"}, "dataset kind 'qasper' needs a path"),
        ({"kind": "longhealth", "path": LONGHEALTH, "distractor_pages": 2}, "financebench only"),
        ({"kind": "financebench", "limit": -1}, "limit must be 0 or more"),
        ({"kind": "financebench", "max_context_chars": -5}, "max_context_chars must be 0 or more"),
    ],
)
def test_load_dataset_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_dataset(**kwargs)


def test_public_loaders_document_an_example():
    import ib_middleware.lab.data.loaders as loaders

    for symbol in loaders.__all__:
        obj = getattr(loaders, symbol)
        if callable(obj) and symbol != "DatasetKind":
            assert "Example:" in (obj.__doc__ or ""), f"{symbol} needs a docstring example"

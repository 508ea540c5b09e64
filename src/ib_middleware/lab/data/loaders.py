"""Dataset loaders: benchmark files in, ``LabelledCase`` rows (context, query, answer) out.

Formats, field by field:

``jsonl``: JSON Lines, one case per line: ``context``, ``query`` (or ``question``), ``answer``
and an optional ``id``; a FinanceBench record also works (see ``load_cases``).

``financebench``: JSON Lines in the upstream FinanceBench layout (the bundled sample by default,
see README.md in this folder): ``financebench_id``, ``doc_name``, ``question``, ``answer`` and
``evidence``, a list of objects with ``evidence_text_full_page`` (and their own ``doc_name``).
The context is the case's distinct evidence pages. With ``distractor_pages=k`` it also holds
``k`` whole pages drawn from cases about other documents; the evidence pages stay together, at a
position among the distractors drawn with the same seeded generator, so a seed always gives
the same context. Pages are joined by blank lines.

``longhealth``: the LongHealth benchmark JSON (``benchmark_v5.json``), an object keyed by
patient id; each patient has ``texts`` (an object of clinical letters, joined in file order by
blank lines to make the context) and ``questions``, a list of objects with ``No``,
``question``, ``answer_a`` to ``answer_e`` and ``correct`` (the right option's text, or its
letter A-E). One case per question; the query is the question followed by the five lettered
options, the answer the right option's text, the id ``"<patient id>-<No>"``. Other fields
(``name``, ``birthday``, ``diagnosis``, ``answer_location``) are not used.

``qasper``: the QASPER JSON (``qasper-{train,dev}-v0.3.json``), an object keyed by paper id, or
JSON Lines with one paper per line carrying its ``id``. A paper has ``title``, ``abstract``,
``full_text`` (a list of ``{section_name, paragraphs}``) and ``qas`` (a list of ``{question,
question_id, answers}``, each answer wrapping ``{answer: {unanswerable, extractive_spans,
yes_no, free_form_answer, ...}}``). The column layout of the Hugging Face export (``full_text``
and ``qas`` as objects of parallel lists) is read too. The context is the title, the abstract,
then each section under its name. One case per question with an answer: the first answer not
marked unanswerable gives its extractive spans joined by ``"; "``, else its free-form answer,
else ``"yes"``/``"no"``; the id is ``question_id``.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, get_args

from ib_middleware.lab.data.cases import LabelledCase, load_cases
from ib_middleware.lab.judges import facts_contained

__all__ = ["DatasetKind", "financebench_cases", "load_dataset", "load_longhealth", "load_qasper"]

DatasetKind = Literal["financebench", "jsonl", "longhealth", "qasper"]
"""The dataset formats ``load_dataset`` reads."""

_LETTERS = "ABCDE"


def _bundled_financebench() -> Path:
    # Same file as ``ib_middleware.lab.data.financebench_path()``; that package imports this module.
    return Path(
        str(files(__package__ or "ib_middleware.lab.data").joinpath("financebench_dev.jsonl"))
    )


def _fail(where: str, problem: str) -> ValueError:
    return ValueError(f"{where}: {problem}")


def _string(value: object, where: str, field: str) -> str:
    if not isinstance(value, str):
        raise _fail(where, f"`{field}` must be a string, got {type(value).__name__}")
    return value


def _object(value: object, where: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _list(value: object, where: str, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(where, f"`{field}` must be a list, got {type(value).__name__}")
    return value


def _read_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        where = f"{path.name}:{exc.lineno}"
        raise _fail(where, f"invalid JSON ({exc.msg}); is this the right file?") from exc


def _read_jsonl(path: Path) -> list[tuple[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                rows.append((where, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise _fail(where, f"invalid JSON ({exc.msg}); one object per line") from exc
    return rows


# --- FinanceBench -----------------------------------------------------------------------------


def _financebench_row(row: object, where: str) -> tuple[LabelledCase, list[tuple[str, str]]]:
    record = _object(row, where, "a FinanceBench line")
    doc = _string(record.get("doc_name"), where, "doc_name")
    evidence = _list(record.get("evidence"), where, "evidence")
    pages: dict[str, str] = {}
    for item in evidence:
        entry = _object(item, where, "every `evidence` item")
        page = _string(entry.get("evidence_text_full_page"), where, "evidence_text_full_page")
        item_doc = entry.get("doc_name", doc)
        pages.setdefault(page, item_doc if isinstance(item_doc, str) else doc)
    if not pages:
        raise _fail(where, "`evidence` is empty; every case needs at least one page")
    case = LabelledCase(
        context="\n\n".join(pages),
        query=_string(record.get("question"), where, "question"),
        answer=_string(record.get("answer"), where, "answer"),
        case_id=str(record.get("financebench_id", where)),
    )
    return case, list(pages.items())


def financebench_cases(
    path: str | Path | None = None, *, distractor_pages: int = 0, seed: int = 0
) -> list[LabelledCase]:
    r"""FinanceBench cases, optionally lengthened with distractor pages from other documents.

    Each case draws its distractors and the evidence position from its own generator, seeded
    with ``seed`` and the case id, so a case's context does not depend on which other cases
    are loaded.

    Args:
        path: A FinanceBench JSON Lines file; the bundled sample when None.
        distractor_pages: Whole pages from other documents to add to every context.
        seed: Seed of the draw; the same seed gives the same contexts.

    Raises:
        ValueError: On a malformed line (the message names it), a negative
            ``distractor_pages``, or more distractors asked for than other documents have.

    Example:
        >>> plain = financebench_cases()
        >>> padded = financebench_cases(distractor_pages=2, seed=7)
        >>> len(padded), plain[0].context in padded[0].context
        (75, True)
        >>> padded[0].context.count("\n\n") > plain[0].context.count("\n\n")
        True
    """
    if distractor_pages < 0:
        msg = f"distractor_pages must be 0 or more, got {distractor_pages}"
        raise ValueError(msg)
    source = Path(path) if path is not None else _bundled_financebench()
    parsed = [_financebench_row(row, where) for where, row in _read_jsonl(source)]
    if not parsed:
        msg = f"{source.name} holds no cases"
        raise ValueError(msg)
    if distractor_pages == 0:
        return [case for case, _ in parsed]
    # Every distinct page once, in file order, with the document it comes from.
    pool: dict[str, str] = {}
    for _, pages in parsed:
        for page, doc in pages:
            pool.setdefault(page, doc)
    cases = []
    for case, pages in parsed:
        own_docs = {doc for _, doc in pages}
        own_pages = {page for page, _ in pages}
        others = [
            page for page, doc in pool.items() if doc not in own_docs and page not in own_pages
        ]
        if len(others) < distractor_pages:
            msg = (
                f"case {case.case_id} can take at most {len(others)} distractor pages from "
                f"other documents in {source.name}; ask for fewer"
            )
            raise ValueError(msg)
        rng = random.Random(f"{seed}:{case.case_id}")  # noqa: S311  # reproducible, not secret
        chosen = rng.sample(others, distractor_pages)
        chosen.insert(rng.randint(0, distractor_pages), case.context)
        cases.append(dataclasses.replace(case, context="\n\n".join(chosen)))
    return cases


# --- LongHealth -------------------------------------------------------------------------------


def _longhealth_answer(question: dict[str, Any], where: str, options: list[str]) -> str:
    correct = question.get("correct")
    if not isinstance(correct, str) or not correct.strip():
        raise _fail(where, "`correct` must be the right option's text or its letter A-E")
    for option in options:
        if option.strip() == correct.strip():
            return option
    letter = correct.strip().upper()
    if len(letter) == 1 and letter in _LETTERS:
        return options[_LETTERS.index(letter)]
    raise _fail(where, f"`correct` ({correct[:60]!r}) is neither an option's text nor A-E")


def load_longhealth(path: str | Path) -> list[LabelledCase]:
    """Read the LongHealth benchmark JSON: one case per question (format in the module doc).

    Raises:
        ValueError: On a malformed file; the message names the patient and question.

    Example:
        >>> import json, tempfile
        >>> patient = {"texts": {"text_0": "Ms Doe was given 5 mg of drug X."},
        ...     "questions": [{"No": 1, "question": "Which dose?", "correct": "B",
        ...     "answer_a": "1 mg", "answer_b": "5 mg", "answer_c": "7 mg",
        ...     "answer_d": "9 mg", "answer_e": "None"}]}
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = Path(tmp, "benchmark.json")
        ...     _ = path.write_text(json.dumps({"patient_01": patient}))
        ...     [case] = load_longhealth(path)
        >>> case.case_id, case.answer, case.query.splitlines()[2]
        ('patient_01-1', '5 mg', 'B. 5 mg')
    """
    source = Path(path)
    data = _object(_read_json(source), source.name, "the file")
    cases = []
    for patient_id, raw in data.items():
        where = f"{source.name}: patient {patient_id}"
        patient = _object(raw, where, "a patient")
        texts = _object(patient.get("texts"), where, "`texts`")
        context = "\n\n".join(_string(text, where, f"texts.{key}") for key, text in texts.items())
        for index, raw_question in enumerate(_list(patient.get("questions"), where, "questions")):
            question = _object(raw_question, f"{where}, question {index}", "a question")
            number = question.get("No", index + 1)
            here = f"{where}, question {number}"
            fields = [f"answer_{letter.lower()}" for letter in _LETTERS]
            options = [_string(question.get(field), here, field) for field in fields]
            lines = [f"{letter}. {text}" for letter, text in zip(_LETTERS, options, strict=True)]
            cases.append(
                LabelledCase(
                    context=context,
                    query="\n".join([_string(question.get("question"), here, "question"), *lines]),
                    answer=_longhealth_answer(question, here, options),
                    case_id=f"{patient_id}-{number}",
                )
            )
    if not cases:
        msg = f"{source.name} holds no questions; expected LongHealth's benchmark JSON"
        raise ValueError(msg)
    return cases


# --- QASPER -----------------------------------------------------------------------------------


def _rows(value: object, where: str, field: str, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """A list of objects, or the Hugging Face column layout (an object of parallel lists)."""
    if isinstance(value, dict) and all(isinstance(value.get(key), list) for key in keys):
        columns = [value[key] for key in keys]
        if len({len(column) for column in columns}) > 1:
            raise _fail(where, f"the lists in `{field}` ({', '.join(keys)}) differ in length")
        return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]
    return [_object(item, where, f"every `{field}` item") for item in _list(value, where, field)]


def _qasper_context(paper: dict[str, Any], where: str) -> str:
    blocks = [
        _string(paper.get("title"), where, "title"),
        "Abstract\n" + _string(paper.get("abstract"), where, "abstract"),
    ]
    for section in _rows(
        paper.get("full_text"), where, "full_text", ("section_name", "paragraphs")
    ):
        name = section.get("section_name") or ""
        paragraphs = [
            _string(text, where, "full_text.paragraphs")
            for text in _list(section.get("paragraphs"), where, "full_text.paragraphs")
        ]
        body = "\n\n".join(text for text in paragraphs if text.strip())
        blocks.append("\n".join(part for part in (str(name), body) if part))
    return "\n\n".join(block for block in blocks if block)


def _qasper_answer(answers: list[dict[str, Any]], where: str) -> str | None:
    for wrapper in answers:
        answer = _object(wrapper.get("answer", wrapper), where, "an answer")
        if answer.get("unanswerable"):
            continue
        spans = [span for span in answer.get("extractive_spans") or [] if isinstance(span, str)]
        free_form = answer.get("free_form_answer")
        yes_no = answer.get("yes_no")
        if any(span.strip() for span in spans):
            return "; ".join(span.strip() for span in spans if span.strip())
        if isinstance(free_form, str) and free_form.strip():
            return free_form.strip()
        if isinstance(yes_no, bool):
            return "yes" if yes_no else "no"
    return None


def _qasper_cases(paper: dict[str, Any], where: str) -> list[LabelledCase]:
    context = _qasper_context(paper, where)
    cases = []
    for qa in _rows(paper.get("qas"), where, "qas", ("question", "question_id", "answers")):
        question_id = _string(qa.get("question_id"), where, "question_id")
        here = f"{where}, question {question_id}"
        answers = qa.get("answers")
        if isinstance(answers, dict) and isinstance(answers.get("answer"), list):
            answers = answers["answer"]  # the column layout keeps answers as parallel lists
        rows = [_object(item, here, "every answer") for item in _list(answers, here, "answers")]
        answer = _qasper_answer(rows, here)
        if answer is not None:
            query = _string(qa.get("question"), here, "question")
            cases.append(LabelledCase(context, query, answer, case_id=question_id))
    return cases


def load_qasper(path: str | Path) -> list[LabelledCase]:
    r"""Read QASPER (JSON keyed by paper id, or JSON Lines): one case per answerable question.

    Raises:
        ValueError: On a malformed file; the message names the paper (or line) and field.

    Example:
        >>> import json, tempfile
        >>> paper = {"id": "p1", "title": "Tiny", "abstract": "We count sheep.",
        ...     "full_text": [{"section_name": "Method", "paragraphs": ["We used 12 sheep."]}],
        ...     "qas": [{"question": "How many sheep?", "question_id": "q1", "answers": [
        ...         {"answer": {"unanswerable": False, "extractive_spans": ["12 sheep"],
        ...                     "yes_no": None, "free_form_answer": ""}}]}]}
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = Path(tmp, "papers.jsonl")
        ...     _ = path.write_text(json.dumps(paper) + "\n")
        ...     [case] = load_qasper(path)
        >>> case.case_id, case.answer, case.context.splitlines()[-2:]
        ('q1', '12 sheep', ['Method', 'We used 12 sheep.'])
    """
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        data = None  # several objects: JSON Lines
    papers: list[tuple[str, dict[str, Any]]] = []
    if isinstance(data, dict) and "qas" not in data:
        for key, paper in data.items():
            where = f"{source.name}: paper {key}"
            papers.append((where, _object(paper, where, "a paper")))
    else:
        for where, row in _read_jsonl(source):
            paper = _object(row, where, "a QASPER line")
            if not isinstance(paper.get("id"), str):
                raise _fail(where, "every line needs the paper's `id` (a string)")
            papers.append((f"{where} (paper {paper['id']})", paper))
    cases = [case for where, paper in papers for case in _qasper_cases(paper, where)]
    if not cases:
        msg = f"{source.name} holds no answerable questions; expected QASPER's JSON or JSON Lines"
        raise ValueError(msg)
    return cases


# --- One entry point --------------------------------------------------------------------------

_READERS: dict[str, Callable[[Path], list[LabelledCase]]] = {
    "jsonl": load_cases,
    "longhealth": load_longhealth,
    "qasper": load_qasper,
}


def load_dataset(
    kind: DatasetKind,
    path: str | Path | None = None,
    *,
    limit: int | None = None,
    distractor_pages: int = 0,
    seed: int = 0,
    answerable_only: bool = False,
    max_context_chars: int | None = None,
) -> list[LabelledCase]:
    """Load cases of one format, then filter: answerable, short enough, the first ``limit``.

    Args:
        kind: The file format (see the module docstring).
        path: The file; may be None only for ``financebench`` (the bundled sample).
        limit: Keep at most this many cases (after the other filters).
        distractor_pages: FinanceBench only: pages from other documents added to each context.
        seed: FinanceBench only: seed of the distractor draw.
        answerable_only: Keep only cases whose context holds the answer's facts
            (``ib_middleware.lab.judges.facts_contained``).
        max_context_chars: Keep only cases whose context is at most this many characters.

    Returns:
        The cases in file order; empty when the filters leave none.

    Raises:
        ValueError: For an unknown kind, a missing path, options the kind does not take,
            negative limits, or a malformed file.

    Example:
        >>> cases = load_dataset("financebench", limit=3, answerable_only=True)
        >>> len(cases), cases[0].answer
        (3, '$1577.00')
    """
    if kind not in get_args(DatasetKind):
        known = ", ".join(get_args(DatasetKind))
        msg = f"unknown dataset kind {kind!r}; choose one of: {known}"
        raise ValueError(msg)
    for name, value in (("limit", limit), ("max_context_chars", max_context_chars)):
        if value is not None and value < 0:
            msg = f"{name} must be 0 or more (or None for no limit), got {value}"
            raise ValueError(msg)
    if kind == "financebench":
        cases = financebench_cases(path, distractor_pages=distractor_pages, seed=seed)
    else:
        if path is None:
            msg = f"dataset kind {kind!r} needs a path to its file"
            raise ValueError(msg)
        if distractor_pages:
            msg = f"distractor_pages applies to financebench only, not {kind!r}; leave it at 0"
            raise ValueError(msg)
        cases = _READERS[kind](Path(path))
    if answerable_only:
        cases = [case for case in cases if facts_contained(case.answer, case.context)]
    if max_context_chars is not None:
        cases = [case for case in cases if len(case.context) <= max_context_chars]
    return cases if limit is None else cases[:limit]

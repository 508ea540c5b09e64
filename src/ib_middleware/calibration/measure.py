"""Labelled cases and the measuring run: every rung of a stage on every case, labelled.

The result is the table the ladder simulation reads (``CaseRecord`` rows): per rung the bits per
token (None when the rung failed or its compression was invalid) and whether the compression
holds the answer; plus whether the raw context itself holds it (the fallback's label).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ib_middleware.calibration.simulation import CaseRecord, RungOutcome
from ib_middleware.judges import Judge
from ib_middleware.routing import Rung, check_compression
from ib_middleware.stage import CompressionStage

__all__ = ["LabelledCase", "judgeable", "load_cases", "measure", "save_records"]

_REFERENCES = 3


@dataclass(frozen=True)
class LabelledCase:
    """A raw context, a query, and the gold answer the context should let one give."""

    context: str
    query: str
    answer: str
    case_id: str = ""


def _text(row: dict[str, object], where: str, *keys: str) -> str:
    value = next((row[key] for key in keys if key in row), None)
    if not isinstance(value, str):
        msg = f"{where}: `{keys[0]}` must be a string"
        raise ValueError(msg)  # noqa: TRY004  # bad file content, not a bad argument type
    return value


def _case_from_row(row: object, where: str) -> LabelledCase:
    if not isinstance(row, dict):
        msg = f"{where}: expected a JSON object"
        raise ValueError(msg)  # noqa: TRY004  # bad file content, not a bad argument type
    if "context" in row:
        context = _text(row, where, "context")
        case_id = row.get("id", row.get("case_id", where))
    elif isinstance(row.get("evidence"), list):
        pages = [item.get("evidence_text_full_page") for item in row["evidence"]]
        if not all(isinstance(page, str) for page in pages):
            msg = f"{where}: every evidence item needs `evidence_text_full_page` text"
            raise ValueError(msg)
        context = "\n\n".join(dict.fromkeys(page for page in pages if page))
        case_id = row.get("financebench_id", where)
    else:
        msg = f"{where}: needs `context`, `query`, `answer` (or FinanceBench's fields)"
        raise ValueError(msg)
    return LabelledCase(
        context=context,
        query=_text(row, where, "query", "question"),
        answer=_text(row, where, "answer"),
        case_id=str(case_id),
    )


def load_cases(path: str | Path) -> list[LabelledCase]:
    """Read labelled cases from JSON Lines.

    Each line holds ``context``, ``query`` (or ``question``) and ``answer``, with an optional
    ``id``; or a FinanceBench record (``question``, ``answer``, ``evidence[]`` with
    ``evidence_text_full_page``), whose distinct evidence pages become the context.

    Raises:
        ValueError: On a malformed line (the message names it) or a file with no cases.

    Example:
        >>> from ib_middleware.data import financebench_path
        >>> cases = load_cases(financebench_path())
        >>> len(cases), cases[0].answer
        (75, '$1577.00')
    """
    source = Path(path)
    cases = []
    with source.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{source.name}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: invalid JSON ({exc.msg})") from exc
            cases.append(_case_from_row(row, where))
    if not cases:
        msg = f"{source.name} holds no cases"
        raise ValueError(msg)
    return cases


def judgeable(cases: Sequence[LabelledCase], judge: Judge) -> list[LabelledCase]:
    """The cases whose raw context the judge finds the answer in.

    Only these can tell a good compression from a bad one: on the others every route, the
    fallback included, is labelled wrong whatever the thresholds.

    Example:
        >>> from ib_middleware.judges import JUDGES
        >>> cases = [LabelledCase("Capex was 1,577.", "q", "$1577.00"), LabelledCase("x", "q", "7")]
        >>> [case.context for case in judgeable(cases, JUDGES["facts"])]
        ['Capex was 1,577.']
    """
    return [case for case in cases if judge(case.context, case.answer)]


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _measure_rung(
    stage: CompressionStage, rung: Rung, case: LabelledCase, judge: Judge, references: list[str]
) -> RungOutcome:
    try:
        compression = rung.compressor.compress(case.context, case.query)
    except Exception as error:  # noqa: BLE001  # a failing rung is an outcome to record
        return RungOutcome(None, correct=False, error=_error_text(error))
    correct = judge(compression.text, case.answer)
    tokens = stage.token_counter.count_tokens(compression.text)
    invalid = check_compression(compression)
    if invalid is not None:
        return RungOutcome(None, correct=correct, output_tokens=tokens, error=invalid)
    try:
        estimate = stage.estimator.estimate(
            case.context, case.query, compression.text, references=references
        )
    except Exception as error:  # noqa: BLE001  # a failing estimate is an outcome to record
        return RungOutcome(None, correct=correct, output_tokens=tokens, error=_error_text(error))
    return RungOutcome(estimate.bits_per_token, correct=correct, output_tokens=tokens)


def measure(
    stage: CompressionStage,
    cases: Sequence[LabelledCase],
    judge: Judge,
    *,
    on_case: Callable[[int, CaseRecord], None] | None = None,
) -> list[CaseRecord]:
    """Run every rung on every case and label each compression.

    The stage's token budget does not apply: every case is compressed by every rung. Engine
    and estimator failures are recorded as outcomes, never raised. Estimators that contrast
    with other contexts get the contexts of the next three cases as references.

    Args:
        stage: The stage whose rungs, estimator and token counter are measured.
        cases: Labelled cases.
        judge: Labels a text: ``judge(text, answer)``.
        on_case: Called after each case with its index and record (for progress).

    Example:
        >>> from ib_middleware.compressors import ExtractiveCompressor
        >>> from ib_middleware.judges import JUDGES
        >>> from ib_middleware.online import CXMIEstimator
        >>> from ib_middleware.testing import FakeScorer
        >>> stage = CompressionStage(
        ...     [Rung(ExtractiveCompressor(budget_tokens=8), threshold_bits_per_token=0.0)],
        ...     estimator=CXMIEstimator(FakeScorer(lambda p, z: -1.0 if "Doc" in p else -3.0)),
        ... )
        >>> page = "Capex was $1,577 million. The logo is red and blue and green."
        >>> [record] = measure(stage, [LabelledCase(page, "capex?", "$1577.00")], JUDGES["facts"])
        >>> record.fallback_correct, record.rungs[0].correct, record.rungs[0].bits_per_token > 0
        (True, True, True)
    """
    records = []
    contexts = [case.context for case in cases]
    for index, case in enumerate(cases):
        others = [contexts[(index + step) % len(contexts)] for step in range(1, _REFERENCES + 1)]
        references = list(dict.fromkeys(c for c in others if c != case.context))
        record = CaseRecord(
            case_id=case.case_id or str(index),
            input_tokens=stage.token_counter.count_tokens(case.context),
            fallback_correct=judge(case.context, case.answer),
            rungs=tuple(
                _measure_rung(stage, rung, case, judge, references) for rung in stage.rungs
            ),
        )
        records.append(record)
        if on_case is not None:
            on_case(index, record)
    return records


def save_records(path: str | Path, records: Sequence[CaseRecord]) -> Path:
    """Write the measured table as JSON Lines, one ``CaseRecord`` a line.

    Example:
        >>> import tempfile
        >>> row = CaseRecord("a", 100, True, (RungOutcome(0.5, True, 10),))
        >>> path = save_records(Path(tempfile.mkdtemp()) / "table.jsonl", [row])
        >>> json.loads(path.read_text())["rungs"][0]["bits_per_token"]
        0.5
    """
    target = Path(path)
    with target.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(asdict(record)) + "\n")
    return target

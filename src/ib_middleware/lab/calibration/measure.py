"""The measuring run: every rung of a stage on every labelled case, labelled.

The result is the table the ladder simulation reads (``CaseRecord`` rows): per rung the signal
the accept rule thresholds (``routing.signal``; None when the rung failed, or its compression was
invalid or unsupported) and whether the compression holds the answer; plus whether the raw
context itself holds it (the fallback's label). Each rung runs through the stage's own step,
``CompressionStage.run_rung``: calibration and run time share one code path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from ib_middleware.errors import is_control_flow
from ib_middleware.lab.calibration.simulation import CaseRecord, RungOutcome
from ib_middleware.lab.data.cases import LabelledCase
from ib_middleware.lab.judges import Judge
from ib_middleware.ladder import error_text
from ib_middleware.judging.routing import signal
from ib_middleware.stage import CompressionStage, pruned_note

__all__ = ["judgeable", "measure", "save_records"]

_REFERENCES = 3


def judgeable(cases: Sequence[LabelledCase], judge: Judge) -> list[LabelledCase]:
    """The cases whose raw context the judge finds the answer in, and those needing none.

    Only these can tell a good compression from a bad one: on the others every route, the
    fallback included, is labelled wrong whatever the thresholds. A case that needs no
    evidence (``needs_evidence=False``, a distractor page) is always kept.

    Example:
        >>> from ib_middleware.lab.judges import JUDGES
        >>> cases = [LabelledCase("Capex was 1,577.", "q", "$1577.00"), LabelledCase("x", "q", "7")]
        >>> [case.context for case in judgeable(cases, JUDGES["facts"])]
        ['Capex was 1,577.']
    """
    return [case for case in cases if not case.needs_evidence or judge(case.context, case.answer)]


def _measure_rung(
    stage: CompressionStage, index: int, case: LabelledCase, judge: Judge, references: list[str]
) -> RungOutcome:
    """One rung on one case through the stage's own step (``run_rung``), labelled.

    The same validity rule, ``min_output_tokens``, support check and signal as at run time,
    so a threshold fitted here means at run time what it meant here.
    """
    try:
        attempt = stage.run_rung(index, case.context, case.query, references=references)
    except Exception as error:  # a failing rung is an outcome to record (on_failure="raise")
        if is_control_flow(error):
            raise
        return RungOutcome(None, correct=False, error=error_text(error))
    compression = attempt.compression
    if compression is None:
        return RungOutcome(None, correct=False, error=attempt.error or attempt.reason)
    correct = judge(compression.text, case.answer) if case.needs_evidence else True
    tokens = stage.token_counter.count_tokens(compression.text)
    if attempt.estimate is None:
        return RungOutcome(
            None, correct=correct, output_tokens=tokens, error=attempt.error or attempt.reason
        )
    value, _ = signal(attempt.estimate)
    return RungOutcome(
        value, correct=correct, output_tokens=tokens, query_fraction=attempt.estimate.query_fraction
    )


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
        >>> from ib_middleware.lab.judges import JUDGES
        >>> from ib_middleware.judging.online import CXMIEstimator
        >>> from ib_middleware.judging.routing import Rung
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
        tokens = stage.token_counter.count_tokens(case.context)
        record = CaseRecord(
            case_id=case.case_id or str(index),
            input_tokens=tokens,
            fallback_correct=judge(case.context, case.answer) if case.needs_evidence else True,
            rungs=tuple(
                _measure_rung(stage, index, case, judge, references)
                for index in range(len(stage.rungs))
            ),
            needs_evidence=case.needs_evidence,
            group=case.group,
            note_tokens=stage.token_counter.count_tokens(pruned_note("tool:search", tokens)),
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

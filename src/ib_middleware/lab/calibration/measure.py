"""The measuring run: every rung of a stage on every labelled case, labelled.

The result is the table the ladder simulation reads (``CaseRecord`` rows): per rung the signal
the accept rule thresholds (``routing.signal``; None when the rung failed, or its compression was
invalid or unsupported) and whether the compression holds the answer; plus whether the raw
context itself holds it (the fallback's label). Each rung runs through the stage's own step,
``CompressionStage.run_rung``: calibration and run time share one code path.

A case is marked ``passthrough`` when the stage would forward it untouched: within the token
budget (``CompressionStage.over_budget``), alone or, for one result of a tool output
(``item_index`` set), with the output's other results. A workload case (``lab.workloads``)
brings its own containment judge (``contained``), its workload, and a source ``document`` that
joins its question in the fold ``group`` (``fold_group``).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ib_middleware.errors import is_control_flow
from ib_middleware.judging.routing import signal
from ib_middleware.lab.calibration.simulation import CaseRecord, RungOutcome
from ib_middleware.lab.data.cases import LabelledCase
from ib_middleware.lab.judges import Judge
from ib_middleware.ladder import error_text
from ib_middleware.stage import CompressionStage, pruned_note

__all__ = ["fold_group", "judgeable", "measure", "save_records"]

_REFERENCES = 3


def fold_group(case: LabelledCase) -> str:
    """The keys a case is folded by: its question and its source document, ``|``-joined.

    A page of another source under a question (``variant == "distractor"``) holds nothing the
    question needs: it goes with its document only, so no document sits on both sides of a
    fold while the question's own pages stay together. A case without a ``document`` keeps
    its ``group``.

    Example:
        >>> fold_group(LabelledCase("x", "q", "a", group="q1"))
        'q1'
    """
    document = getattr(case, "document", "")
    if not document:
        return case.group
    keys = [f"document:{document}"]
    if getattr(case, "variant", "") != "distractor" and case.group:
        keys.insert(0, f"question:{case.group}")
    return "|".join(key.replace("|", "/") for key in keys)  # "|" separates the keys


def _label(case: LabelledCase, judge: Judge, text: str) -> bool:
    """Whether ``text`` keeps what the case needs: its own judge when it has one."""
    if not case.needs_evidence:
        return True
    contained = getattr(case, "contained", None)
    return bool(contained(text)) if callable(contained) else judge(text, case.answer)


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
    return [case for case in cases if _label(case, judge, case.context)]


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
    correct = _label(case, judge, compression.text)
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
    done: Mapping[str, CaseRecord] | None = None,
) -> list[CaseRecord]:
    """Run every rung on every case and label each compression.

    Every case is compressed by every rung, except a case the stage would pass through
    (within its token budget): it is marked ``passthrough``, no rung runs on it and no
    threshold applies to it. Engine
    and estimator failures are recorded as outcomes, never raised. Estimators that contrast
    with other contexts get the contexts of the next three cases as references.

    Args:
        stage: The stage whose rungs, estimator and token counter are measured.
        cases: Labelled cases.
        judge: Labels a text: ``judge(text, answer)``.
        on_case: Called after each case with its index and record (for progress).
        done: Records already measured, by case id (a resumed run): reused, not re-run.

    Example:
        >>> from ib_middleware.compressors import ExtractiveCompressor
        >>> from ib_middleware.lab.judges import JUDGES
        >>> from ib_middleware.judging.online import CXMIEstimator
        >>> from ib_middleware.judging.routing import Rung
        >>> from ib_middleware.testing import FakeScorer
        >>> stage = CompressionStage(
        ...     [Rung(ExtractiveCompressor(budget_tokens=8), threshold_bits_per_token=0.0)],
        ...     estimator=CXMIEstimator(FakeScorer(lambda p, z: -1.0 if "Doc" in p else -3.0)),
        ...     token_budget=0,
        ... )
        >>> page = "Capex was $1,577 million. The logo is red and blue and green."
        >>> [record] = measure(stage, [LabelledCase(page, "capex?", "$1577.00")], JUDGES["facts"])
        >>> record.fallback_correct, record.rungs[0].correct, record.rungs[0].bits_per_token > 0
        (True, True, True)
    """
    records = []
    contexts = [case.context for case in cases]
    tokens = [stage.token_counter.count_tokens(context) for context in contexts]
    outputs: dict[tuple[str, str, str], int] = {}
    for case, count in zip(cases, tokens, strict=True):
        if getattr(case, "item_index", None) is not None:
            key = _output_key(case)
            outputs[key] = outputs.get(key, 0) + count
    for index, case in enumerate(cases):
        others = [contexts[(index + step) % len(contexts)] for step in range(1, _REFERENCES + 1)]
        references = list(dict.fromkeys(c for c in others if c != case.context))
        if done and case.case_id in done:
            records.append(done[case.case_id])
            if on_case is not None:
                on_case(index, done[case.case_id])
            continue
        whole = outputs.get(_output_key(case), tokens[index])
        passthrough = not stage.over_budget(max(whole, tokens[index]))
        skipped = RungOutcome(None, correct=False, error="passthrough: within the token budget")
        record = CaseRecord(
            case_id=case.case_id or str(index),
            input_tokens=tokens[index],
            fallback_correct=_label(case, judge, case.context),
            rungs=tuple(
                skipped if passthrough else _measure_rung(stage, rung, case, judge, references)
                for rung in range(len(stage.rungs))
            ),
            needs_evidence=case.needs_evidence,
            group=fold_group(case),
            note_tokens=stage.token_counter.count_tokens(pruned_note("tool:search", tokens[index])),
            workload=str(getattr(case, "workload", "")),
            passthrough=passthrough,
        )
        records.append(record)
        if on_case is not None:
            on_case(index, record)
    return records


def _output_key(case: LabelledCase) -> tuple[str, str, str]:
    """The tool output a result belongs to: its workload, question and shape."""
    if getattr(case, "item_index", None) is None:
        return ("", case.case_id, "")
    return (str(getattr(case, "workload", "")), case.group, str(getattr(case, "shape", "")))


def save_records(
    path: str | Path, records: Sequence[CaseRecord], *, meta: dict[str, Any] | None = None
) -> Path:
    """Write the measured table as JSON Lines, one ``CaseRecord`` a line (gzipped: ``.gz``).

    ``meta`` (what the table was measured with: the ``fitted_for`` of a policy, the rung
    names, the judge) goes first, as ``{"meta": ...}``, so a replay needs no stage.

    Example:
        >>> import tempfile
        >>> row = CaseRecord("a", 100, True, (RungOutcome(0.5, True, 10),))
        >>> path = save_records(Path(tempfile.mkdtemp()) / "table.jsonl", [row])
        >>> json.loads(path.read_text())["rungs"][0]["bits_per_token"]
        0.5
    """
    target = Path(path)
    lines = [json.dumps({"meta": meta}) + "\n"] if meta is not None else []
    lines += [json.dumps(asdict(record)) + "\n" for record in records]
    text = "".join(lines).encode("utf-8")
    # mtime=0: the same table gives the same bytes, so a shipped file only changes with it.
    target.write_bytes(gzip.compress(text, mtime=0) if target.suffix == ".gz" else text)
    return target

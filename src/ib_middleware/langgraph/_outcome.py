"""One tool output's judged results, put back together: the content, the total, the records.

A structured output is judged result by result; its decision as a whole (the *total*) is a
``StageResult`` like any other, so the marker, the decision records and telemetry read it the
same way: ``accepted`` when some results were compressed or pruned (``pruned`` when all
were), ``passthrough`` when all were within budget, ``fallback`` otherwise. Its record holds
one entry per result under ``results``. A failure while writing the content back forwards
the original content, as a ``fallback`` that says why.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ib_middleware.errors import is_control_flow, redact_quotes
from ib_middleware.judging.routing import Decision
from ib_middleware.ladder import error_text
from ib_middleware.langgraph._common import decision_record, marker
from ib_middleware.langgraph._originals import decision_id
from ib_middleware.langgraph._shape import Shape
from ib_middleware.stage import ContextItem, StageResult

__all__ = ["Outcome", "judged"]

_CHANGED = ("accepted", "pruned")


@dataclass(frozen=True)
class Outcome:
    """What one message becomes.

    Attributes:
        content: The content to show (the original object when nothing changed).
        total: The decision for the output as a whole.
        results: One result per item (one for plain text).
        key: The decision id when the content changed (the original is kept under it).
        structured: Whether the output was judged result by result.
    """

    content: str | list[Any]
    total: StageResult
    results: list[StageResult]
    key: str | None
    structured: bool

    def marker(self, original: Any, quoting: str, *, stored: bool) -> dict[str, Any]:
        """The message's marker: the total's, its id, and the original or its reference."""
        mark = marker(self.total, quoting=quoting, original=original)
        if self.key is not None:
            mark["id"] = self.key
            if stored:
                mark.pop("original", None)
                mark["original_ref"] = self.key
        return mark

    def record(self, items: Sequence[ContextItem], quoting: str, **extra: Any) -> dict[str, Any]:
        """The decision record: the total's, with one entry per result when structured."""
        record = decision_record(self.total, quoting=quoting, **extra)
        if self.key is not None:
            record["id"] = self.key
        if self.structured:
            record["results"] = [
                decision_record(result, quoting=item.text, result_index=index)
                for index, (item, result) in enumerate(zip(items, self.results, strict=True))
            ]
        return record


def _decision(results: Sequence[StageResult]) -> Decision:
    decisions = [result.decision for result in results]
    if any(decision in _CHANGED for decision in decisions):
        return "pruned" if all(decision == "pruned" for decision in decisions) else "accepted"
    return "passthrough" if all(d == "passthrough" for d in decisions) else "fallback"


def _total(results: Sequence[StageResult], content: str | list[Any], source: str) -> StageResult:
    counts = {
        word: sum(result.decision in decisions for result in results)
        for word, decisions in (
            ("kept", ("passthrough", "fallback")),
            ("compressed", ("accepted",)),
            ("pruned", ("pruned",)),
        )
    }
    inputs = sum(result.input_tokens for result in results)
    outputs = sum(result.output_tokens for result in results)
    summary = ", ".join(f"{count} {word}" for word, count in counts.items())
    return StageResult(
        text=content if isinstance(content, str) else json.dumps(content, ensure_ascii=False),
        decision=_decision(results),
        rung=None,
        reason=f"{len(results)} results judged one by one: {summary} "
        f"({inputs} -> {outputs} tokens)",
        source=source,
        input_tokens=inputs,
        output_tokens=outputs,
        wall_s=sum(result.wall_s for result in results),
        started_unix_ns=min(result.started_unix_ns for result in results),
    )


def _failed(results: Sequence[StageResult], error: Exception, quoting: str) -> StageResult:
    first = results[0]
    tokens = sum(result.input_tokens for result in results)
    why = redact_quotes(error_text(error), quoting)
    return StageResult(
        text=quoting,
        decision="fallback",
        rung=None,
        reason=f"full context forwarded: putting the output back together failed ({why})",
        source=first.source,
        input_tokens=tokens,
        output_tokens=tokens,
        wall_s=sum(result.wall_s for result in results),
        started_unix_ns=first.started_unix_ns,
    )


def judged(
    shape: Shape, original: str | list[Any], results: Sequence[StageResult], *, expandable: bool
) -> Outcome:
    """The message's new content and decision from its items' ``results``.

    ``expandable`` shows the decision id to the model (a trailer line, or ``_ib_original``
    in JSON), for ``expand_context``.
    """
    structured = shape.kind != "text"
    changed = any(result.decision in _CHANGED for result in results)
    key = decision_id(original) if changed else None
    try:
        content = shape.write(results, reference=key if key and expandable else "")
    except Exception as error:  # nothing is lost: the original goes on
        if is_control_flow(error):
            raise
        failed = _failed(results, error, "\n".join(shape.texts))
        return Outcome(original, failed, list(results), None, structured)
    total = _total(results, content, results[0].source) if structured else results[0]
    return Outcome(content, total, list(results), key, structured)

"""The row type of every dataset: ``LabelledCase`` (context, query, gold answer), and its reader.

``load_cases`` reads the project's own JSON Lines format; ``ib_middleware.lab.data.loaders``
turns the benchmark formats into the same rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LabelledCase", "load_cases"]


@dataclass(frozen=True)
class LabelledCase:
    """A raw context, a query, and the gold answer the context should let one give.

    ``needs_evidence`` is False for a context that holds nothing the query needs (a distractor
    page): forwarding nothing of it loses nothing. ``group`` ties the variants of one question
    together (cross-validation folds and bootstrap resampling keep them together).
    """

    context: str
    query: str
    answer: str
    case_id: str = ""
    needs_evidence: bool = True
    group: str = ""


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
        >>> from ib_middleware.lab.data import financebench_path
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

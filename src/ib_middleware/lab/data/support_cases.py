"""Hand-checkable compressions of bundled FinanceBench pages, each with the verdict it deserves.

``support_cases.jsonl`` (in this folder) holds what a compressor might write about a page: a
short summary sentence, faithful or wrong in one known way. A reviewer checks each case against
the page and its ``note`` (which row, column and cell the figure comes from); the support check
is measured on them (``tests/test_support_cases.py``, ``bench/support_cases.py``).

Fields of a line: ``id``; ``financebench_id`` and ``page`` (the bundled FinanceBench case and
the index into its ``evidence`` list; the page text is read from the bundled file, not copied);
``query``; ``compression``; ``expected`` (``pass`` or ``reject``); ``kind`` (one of
``FAITHFUL_KINDS`` when ``expected`` is ``pass``, of ``WRONG_KINDS`` when it is ``reject``);
``reject_kind`` (for rejects only: the kind of span a rejection should name, one of
``REJECT_KINDS``); ``note``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, get_args

__all__ = [
    "FAITHFUL_KINDS",
    "REJECT_KINDS",
    "WRONG_KINDS",
    "CaseKind",
    "FaithfulKind",
    "RejectKind",
    "SupportCase",
    "WrongKind",
    "load_support_cases",
    "support_cases_path",
]

FaithfulKind = Literal[
    "paraphrase", "scale_words", "dates", "signs", "abbreviations", "derived", "verbatim"
]
"""Ways of being true to the page: the support check should pass these."""

WrongKind = Literal[
    "other_column",
    "year_swap",
    "unit_swap",
    "sign_flip",
    "suffix_scale",
    "wrong_row",
    "wrong_name",
    "stray_figure",
    "wrong_derived",
]
"""Ways of stating what the page does not: the support check should reject these."""

CaseKind = Literal[FaithfulKind, WrongKind]
"""What a case tests."""

RejectKind = Literal[
    "unsupported figure", "wrong column", "wrong row", "wrong unit", "wrong sign", "unknown name"
]
"""The kind of span a rejection of a wrong case should name."""

FAITHFUL_KINDS: tuple[FaithfulKind, ...] = get_args(FaithfulKind)
"""Every faithful kind, in the order the bench reports them."""

WRONG_KINDS: tuple[WrongKind, ...] = get_args(WrongKind)
"""Every wrong kind, in the order the bench reports them."""

REJECT_KINDS: tuple[RejectKind, ...] = get_args(RejectKind)
"""Every ``reject_kind`` a case may name."""

_FIELDS = ("id", "financebench_id", "page", "query", "compression", "expected", "kind", "note")


@dataclass(frozen=True)
class SupportCase:
    """One compression of a page and the support check's expected verdict on it.

    Attributes:
        id: The case id, ``<kind>-<number>``.
        financebench_id: The bundled FinanceBench case whose page this is.
        page: Index of the page in that case's ``evidence`` list.
        context: The page text (the context the compression is checked against).
        query: The question the compression answers.
        compression: What a compressor might write.
        expected: ``pass`` for a faithful compression, ``reject`` for a wrong one.
        kind: What the case tests (``FAITHFUL_KINDS`` or ``WRONG_KINDS``).
        reject_kind: For a reject, the kind of span the rejection should name; else None.
        note: Where on the page a reviewer finds the figure or name (row, column, cell).
    """

    id: str
    financebench_id: str
    page: int
    context: str
    query: str
    compression: str
    expected: Literal["pass", "reject"]
    kind: CaseKind
    reject_kind: RejectKind | None
    note: str


def support_cases_path() -> Path:
    """Path of the bundled support cases (JSON Lines).

    Example:
        >>> support_cases_path().name
        'support_cases.jsonl'
    """
    return Path(str(files("ib_middleware.lab.data").joinpath("support_cases.jsonl")))


def _evidence_pages() -> dict[str, list[str]]:
    """Each bundled FinanceBench case's evidence pages, in its ``evidence`` order."""
    source = Path(str(files("ib_middleware.lab.data").joinpath("financebench_dev.jsonl")))
    pages = {}
    with source.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                evidence = [item["evidence_text_full_page"] for item in row["evidence"]]
                pages[row["financebench_id"]] = evidence
    return pages


def _case(row: Any, where: str, pages: dict[str, list[str]]) -> SupportCase:
    if not isinstance(row, dict):
        msg = f"{where}: expected a JSON object, got {type(row).__name__}"
        raise ValueError(msg)  # noqa: TRY004  # bad file content, not a bad argument type
    for field in _FIELDS:
        value = row.get(field)
        wanted = int if field == "page" else str
        if not isinstance(value, wanted) or isinstance(value, bool):
            msg = f"{where}: `{field}` must be a {wanted.__name__}, got {value!r}"
            raise ValueError(msg)  # noqa: TRY004  # bad file content, not a bad argument type
    kind, expected, reject_kind = row["kind"], row["expected"], row.get("reject_kind")
    if kind not in FAITHFUL_KINDS + WRONG_KINDS:
        known = ", ".join(FAITHFUL_KINDS + WRONG_KINDS)
        msg = f"{where}: unknown kind {kind!r}; choose one of: {known}"
        raise ValueError(msg)
    right = "pass" if kind in FAITHFUL_KINDS else "reject"
    if expected != right:
        msg = f"{where}: a {kind!r} case expects {right!r}, not {expected!r}"
        raise ValueError(msg)
    if expected == "reject" and reject_kind not in REJECT_KINDS:
        msg = f"{where}: a reject needs `reject_kind`, one of: {', '.join(REJECT_KINDS)}"
        raise ValueError(msg)
    if expected == "pass" and reject_kind is not None:
        msg = f"{where}: a pass case has no `reject_kind` (got {reject_kind!r})"
        raise ValueError(msg)
    evidence = pages.get(row["financebench_id"])
    if evidence is None:
        msg = f"{where}: no bundled FinanceBench case {row['financebench_id']!r}"
        raise ValueError(msg)
    if not 0 <= row["page"] < len(evidence):
        msg = f"{where}: `page` {row['page']} is not an index of its {len(evidence)} evidence pages"
        raise ValueError(msg)
    return SupportCase(
        id=row["id"],
        financebench_id=row["financebench_id"],
        page=row["page"],
        context=evidence[row["page"]],
        query=row["query"],
        compression=row["compression"],
        expected=expected,
        kind=kind,
        reject_kind=reject_kind,
        note=row["note"],
    )


def load_support_cases(path: str | Path | None = None) -> list[SupportCase]:
    """Read support cases (the bundled ones by default), each with its page's text.

    Raises:
        ValueError: On a malformed line (the message names the file and line), an id used
            twice, or a file with no cases.

    Example:
        >>> cases = load_support_cases()
        >>> case = next(case for case in cases if case.id == "scale_words-01")
        >>> case.compression, case.expected, "(1,577)" in case.context
        ('Capex was $1,577M in 2018.', 'pass', True)
    """
    source = Path(path) if path is not None else support_cases_path()
    pages = _evidence_pages()
    cases: list[SupportCase] = []
    seen: set[str] = set()
    with source.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{source.name}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                msg = f"{where}: invalid JSON ({exc.msg}); one object per line"
                raise ValueError(msg) from exc
            case = _case(row, where, pages)
            if case.id in seen:
                msg = f"{where}: id {case.id!r} is used by an earlier line"
                raise ValueError(msg)
            seen.add(case.id)
            cases.append(case)
    if not cases:
        msg = f"{source.name} holds no cases"
        raise ValueError(msg)
    return cases

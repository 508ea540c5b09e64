"""Compressions of known quality, built from labelled cases, to grade per-compression signals.

For every case (a context, a query and the evidence that answers it) whose evidence is found in
its context, the builder writes compressions that keep the evidence and compressions that lose
or corrupt it. A signal that routes well ranks every *keep* above every *lose*; the AUC of keep
against each lose kind measures how far it does.

Keep kinds: ``evidence`` (the evidence's segments verbatim), ``evidence_figures`` (only those of
its sentences or table rows that hold figures), ``evidence_headers`` (the evidence with its
table's header rows), and the paraphrases of an evidence row an abstractive rung would write
(``paraphrase``, ``paraphrase_scaled``: ``ib_middleware.lab.paraphrases``).

Lose kinds: ``figures_altered`` (every figure changed, same format, none of them on the page),
``figure_swap`` (one figure replaced by another figure of the same page: another column, row or
year), ``entity_swap`` (the names replaced by another filing's), ``wrong_part`` (a passage of the
same page and about the same length, without the evidence), ``other_filing`` (another case's
evidence), ``generic_summary``, ``query_echo`` and ``cut_before_figures`` (the evidence up to
its first figure); from the evidence row, wrong paraphrases: ``column_swap`` (the same row's
other column), ``year_swap``, ``unit_swap`` and ``sign_flip``. A kind a case cannot make is
left out for that case. Input: JSON Lines with ``context``, ``query`` and ``evidence`` (optional
``id``, ``answer``), or FinanceBench's layout (each evidence page with its ``evidence_text``).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ib_middleware.judging.support import content_spans
from ib_middleware.lab.paraphrases import (
    PARAPHRASE_KEEP_KINDS,
    PARAPHRASE_LOSE_KINDS,
    row_paraphrases,
)
from ib_middleware.segments import Segment, bm25_scores, join_segments, split_segments

__all__ = [
    "KEEP_KINDS",
    "LOSE_KINDS",
    "GradedCase",
    "GradedCompression",
    "company_of",
    "graded_compressions",
    "load_graded_cases",
]

KEEP_KINDS = ("evidence", "evidence_figures", "evidence_headers", *PARAPHRASE_KEEP_KINDS)
LOSE_KINDS = (
    "figures_altered",
    "figure_swap",
    "entity_swap",
    "wrong_part",
    "other_filing",
    "generic_summary",
    "query_echo",
    "cut_before_figures",
    *PARAPHRASE_LOSE_KINDS,
)
_GENERIC = "The document is a page of a company filing with financial statements and related notes."
_MAX_EVIDENCE_SEGMENTS = 3
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class GradedCase:
    """One labelled case with the evidence located in its context.

    Attributes:
        case_id: Stable identifier.
        context: The raw context X.
        query: The query Q.
        evidence: The segments of X that answer Q (at most three, in source order).
        answer: The gold answer, when known.
        group: Which document the context comes from (other-filing compressions avoid it).
        justification: How the gold answer was found or computed (FinanceBench's field).
    """

    case_id: str
    context: str
    query: str
    evidence: tuple[Segment, ...]
    answer: str = ""
    group: str = ""
    justification: str = ""


@dataclass(frozen=True)
class GradedCompression:
    """A compression of known quality.

    Attributes:
        case_id: The case it compresses.
        kind: One of ``KEEP_KINDS`` or ``LOSE_KINDS``.
        keep: Whether it keeps the evidence intact.
        text: The compression.
    """

    case_id: str
    kind: str
    keep: bool
    text: str


def _words(text: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(text)]


def _rank(segments: Sequence[Segment], query: str) -> list[int]:
    scores = bm25_scores([s.text for s in segments], query)
    return sorted(range(len(segments)), key=lambda index: (-scores[index], index))


def _locate(context: str, evidence: str, hint: str) -> tuple[Segment, ...]:
    """The context's segments that overlap the evidence, narrowed to the most telling few."""
    collapsed = " ".join(evidence.split())
    segments = [s for s in split_segments(context) if s.kind != "header"]
    if not collapsed or not segments:
        return ()
    at = context.find(evidence.strip())
    if at >= 0:
        end = at + len(evidence.strip())
        inside = [s for s in segments if s.start < end and s.end > at]
    else:
        inside = [s for s in segments if s.text in collapsed]
    if len(inside) > _MAX_EVIDENCE_SEGMENTS:
        # A whole annotated page: keep the segments the answer and its justification point to.
        order = _rank(inside, hint)
        inside = sorted((inside[i] for i in order[:_MAX_EVIDENCE_SEGMENTS]), key=lambda s: s.index)
    return tuple(inside)


def _cases_from_row(row: dict[str, object], line: int) -> list[GradedCase]:
    if "context" in row:
        evidence = str(row.get("evidence", ""))
        case_id = str(row.get("id", line))
        context, query = str(row["context"]), str(row.get("query", row.get("question", "")))
        hint = " ".join([query, str(row.get("answer", "")), evidence])
        located = _locate(context, evidence, hint)
        answer = str(row.get("answer", ""))
        return [GradedCase(case_id, context, query, located, answer, str(row.get("group", "")))]
    items = row.get("evidence")
    if not isinstance(items, list):
        msg = f"line {line}: expected `context` and `evidence`, or FinanceBench's `evidence` list"
        raise ValueError(msg)  # noqa: TRY004  # bad file content, not a bad argument type
    query = str(row.get("question", ""))
    answer = str(row.get("answer", ""))
    hint = " ".join([query, answer, str(row.get("justification", ""))])
    cases = []
    for number, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        page = str(item.get("evidence_text_full_page", ""))
        located = _locate(page, str(item.get("evidence_text", "")), hint)
        case_id = f"{row.get('financebench_id', line)}-{number}"
        group = str(item.get("doc_name", row.get("doc_name", "")))
        justification = str(row.get("justification") or "")
        cases.append(GradedCase(case_id, page, query, located, answer, group, justification))
    return cases


def load_graded_cases(path: str | Path, *, limit: int | None = None) -> list[GradedCase]:
    r"""Read labelled cases and locate each one's evidence in its context.

    Cases whose evidence cannot be found in the context are left out.

    Example:
        >>> import tempfile, json, pathlib
        >>> row = {"context": "Sales were $5 million. The CEO is Ann.", "query": "Sales?",
        ...        "evidence": "Sales were $5 million."}
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "cases.jsonl"
        >>> _ = path.write_text(json.dumps(row) + "\n")
        >>> [segment.text for segment in load_graded_cases(path)[0].evidence]
        ['Sales were $5 million.']
    """
    cases: list[GradedCase] = []
    for line, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        row = json.loads(raw)
        if not isinstance(row, dict):
            msg = f"line {line}: expected a JSON object"
            raise ValueError(msg)  # noqa: TRY004  # bad file content, not a bad argument type
        cases.extend(case for case in _cases_from_row(row, line) if case.evidence)
        if limit is not None and len(cases) >= limit:
            return cases[:limit]
    return cases


def _figures(text: str) -> list[tuple[int, int]]:
    return [(s.start, s.end) for s in content_spans(text) if s.kind == "figure"]


def _digits_value(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


def _alter(figure: str, rng: random.Random, taken: set[str]) -> str:
    for _ in range(50):
        chars = list(figure)
        positions = [i for i, char in enumerate(chars) if char.isdigit()]
        for rank, position in enumerate(positions):
            low = 1 if rank == 0 and len(positions) > 1 else 0
            choices = [str(d) for d in range(low, 10) if str(d) != chars[position]]
            chars[position] = rng.choice(choices)
        altered = "".join(chars)
        if _digits_value(altered) not in taken:
            return altered
    return figure


def _replace_spans(text: str, spans: Sequence[tuple[int, int]], new: Sequence[str]) -> str:
    out = []
    cursor = 0
    for (start, end), replacement in zip(spans, new, strict=True):
        out.append(text[cursor:start])
        out.append(replacement)
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def _figure_swap(case: GradedCase, text: str, rng: random.Random) -> str | None:
    figures = _figures(text)
    if not figures:
        return None
    answer_digits = _digits_value(case.answer)
    target = next(
        (f for f in figures if answer_digits and _digits_value(text[f[0] : f[1]]) in answer_digits),
        figures[0],
    )
    own = text[target[0] : target[1]]
    page_figures = [case.context[s:e] for s, e in _figures(case.context)]
    evidence_values = {_digits_value(text[s:e]) for s, e in figures}
    same_shape = [
        f
        for f in page_figures
        if _digits_value(f) not in evidence_values
        and len(_digits_value(f)) == len(_digits_value(own))
    ]
    pool = same_shape or [f for f in page_figures if _digits_value(f) not in evidence_values]
    if not pool:
        return None
    replacement = rng.choice(sorted(set(pool)))
    # Keep the evidence's own format around the number: only the digits and separators change.
    number = re.search(r"\d[\d,]*(?:\.\d+)?", replacement)
    own_number = re.search(r"\d[\d,]*(?:\.\d+)?", own)
    if number is None or own_number is None:
        return None
    swapped = own[: own_number.start()] + number.group(0) + own[own_number.end() :]
    return _replace_spans(text, [target], [swapped])


def company_of(group: str) -> str:
    """The company a FinanceBench-style document name starts with (``3M_2018_10K`` → 3M)."""
    return group.split("_", 1)[0] if "_" in group else ""


def _entity_swap(text: str, case: GradedCase, other: GradedCase) -> str | None:
    entities = [s for s in content_spans(text) if s.kind == "entity"]
    own = set(_words(company_of(case.group)))
    # The filing's own company name when the evidence names it, else every name it holds.
    names = [s for s in entities if s.text.lower() in own] or entities
    context_words = set(_words(case.context + " " + case.query))
    foreign_name = company_of(other.group)
    if foreign_name and not set(_words(foreign_name)) & context_words:
        foreign = [foreign_name]
    else:
        foreign = [
            s.text
            for s in content_spans(other.context)
            if s.kind == "entity" and s.text.lower() not in context_words
        ]
    if not names or not foreign:
        return None
    replacements = [foreign[i % len(foreign)] for i in range(len(names))]
    return _replace_spans(text, [(s.start, s.end) for s in names], replacements)


def _wrong_part(case: GradedCase, length: int) -> str | None:
    segments = [s for s in split_segments(case.context) if s.kind != "header"]
    evidence = {s.index for s in case.evidence}
    answer_digits = _digits_value(case.answer)
    best: tuple[int, str] | None = None
    for first in range(len(segments)):
        chosen: list[Segment] = []
        size = 0
        for segment in segments[first:]:
            if segment.index in evidence:
                break
            chosen.append(segment)
            size += len(segment.text)
            if size >= length:
                break
        text = join_segments(chosen, with_headers=False)
        holds_answer = (
            answer_digits and len(answer_digits) > 2 and answer_digits in _digits_value(text)
        )
        if not chosen or holds_answer:
            continue
        gap = abs(len(text) - length)
        if best is None or gap < best[0]:
            best = (gap, text)
    if best is None or best[0] > length:
        return None
    return best[1]


def graded_compressions(cases: Sequence[GradedCase], *, seed: int = 0) -> list[GradedCompression]:
    """Every keep and lose compression each case can make, in a seeded, reproducible order.

    Example:
        >>> case = GradedCase("c", "Sales were $5,120 million. The CEO is Ann Lee. Costs rose.",
        ...                   "What were sales?", tuple(split_segments(
        ...                   "Sales were $5,120 million. The CEO is Ann Lee. Costs rose.")[:1]))
        >>> sorted({c.kind for c in graded_compressions([case]) if not c.keep})
        ['figures_altered', 'generic_summary', 'query_echo', 'wrong_part']
    """
    out: list[GradedCompression] = []
    for position, case in enumerate(cases):
        rng = random.Random(f"{seed}-{case.case_id}")  # noqa: S311  # seeded, not a secret
        evidence = join_segments(case.evidence, with_headers=False)

        def add(kind: str, text: str | None, case: GradedCase = case) -> None:
            if text and text.strip():
                out.append(GradedCompression(case.case_id, kind, kind in KEEP_KINDS, text))

        add("evidence", evidence)
        with_figures = [s for s in case.evidence if _figures(s.text)]
        add(
            "evidence_figures",
            join_segments(with_figures, with_headers=False) if with_figures else None,
        )
        add("evidence_headers", join_segments(case.evidence, with_headers=True))
        page_values = {_digits_value(case.context[s:e]) for s, e in _figures(case.context)}
        figures = _figures(evidence)
        if figures:
            altered = [_alter(evidence[s:e], rng, page_values) for s, e in figures]
            add("figures_altered", _replace_spans(evidence, figures, altered))
            cut = evidence[: figures[0][0]].rstrip(" $(")
            add("cut_before_figures", cut if len(_words(cut)) >= 3 else None)
        add("figure_swap", _figure_swap(case, evidence, rng))
        others = [c for c in cases if c.group != case.group or not c.group]
        others = [c for c in others if c.case_id != case.case_id]
        if others:
            draw = rng.randrange(len(others))  # a seeded draw, not a secret
            other = others[(position * 7 + draw) % len(others)]
            add("entity_swap", _entity_swap(evidence, case, other))
            add("other_filing", join_segments(other.evidence, with_headers=False))
        add("wrong_part", _wrong_part(case, len(evidence)))
        add("generic_summary", _GENERIC)
        add("query_echo", case.query)
        answer = _digits_value(case.answer)
        rows = sorted(case.evidence, key=lambda s: answer not in _digits_value(s.text))
        for kind, text in next(
            filter(None, (row_paraphrases(s, answer) for s in rows)), {}
        ).items():
            add(kind, text)
    return out

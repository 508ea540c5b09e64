"""What a filing page must keep for its question, and the containment cases built from it.

A label says what the question needs, no more (``needed_figures``): the answer's figures when
the page states them, else the figures of the line items FinanceBench's justification names
and the justification's own figures the page states, else the evidence's figures. Labels read
figures with a fixed pattern of their own (``label_figures``), so they do not move when the
accept rule does. ``containment_cases`` builds calibration v2's cases from them.
"""

from __future__ import annotations

import random
import re
import unicodedata
from pathlib import Path
from typing import Literal

from ib_middleware.lab.data.cases import LabelledCase
from ib_middleware.lab.graded import GradedCase, company_of, load_graded_cases
from ib_middleware.lab.judges import facts_contained, normalize_text
from ib_middleware.segments import split_segments

__all__ = [
    "LabelSource",
    "containment_cases",
    "evidence_window",
    "label_figures",
    "needed_figures",
]


def evidence_window(case: GradedCase, rng: random.Random, share: float = 0.55) -> str:
    """About ``share`` of the page's lines around its evidence, at a seeded offset."""
    lines = case.context.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    first = min(s.start for s in case.evidence)
    last = max(s.end for s in case.evidence)
    low = max(i for i in range(len(lines)) if starts[i] <= first)
    high = min(i for i in range(1, len(starts)) if starts[i] >= last)
    size = max(high - low, round(share * len(lines)))
    begin = rng.randint(max(0, high - size), min(low, len(lines) - size))
    return "".join(lines[begin : begin + size]).strip()


_LINE_ITEM = re.compile(r"line items? named:?\s*(.+?)\.?\s*$", re.IGNORECASE | re.MULTILINE)
_YEAR = re.compile(r"(?:19|20)\d{2}")
_SMALL = re.compile(r"\d{1,2}")
_LABEL_FIGURE = re.compile(
    r"(?<![\w.,])[$\u20ac\u00a3]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\d,]*\w)"
    r"(?:\s?%|\s(?:million|billion|thousand|bn|mn)\b)?",
    re.IGNORECASE,
)
LabelSource = Literal["answer", "line_items", "evidence"]
"""Where a filing page's label comes from (``needed_figures``)."""


def label_figures(text: str) -> list[str]:
    """The figures of ``text`` as written (``$1,577``, ``12.5%``, ``$1.6 billion``; no signs).

    Labels read figures with this fixed pattern (not the support check's span reader, which
    moves with the accept rule), so a label does not change when the accept rule does.

    Example:
        >>> label_figures("Capex (1,577) in FY22; margin 12.5 %; $1.6 billion")
        ['1,577', '12.5 %', '$1.6 billion']
    """
    return [match.group(0) for match in _LABEL_FIGURE.finditer(text)]


def _row_label(text: str) -> str:
    first = _LABEL_FIGURE.search(text)
    # Spacing differs between a justification and a PDF's text ("Inventories,net(Note6)").
    return normalize_text(text[: first.start()] if first else text).replace(" ", "")


def _line_items(justification: str) -> list[str]:
    """The line-item names a FinanceBench justification gives (``... line item named: X.``)."""
    cleaned = unicodedata.normalize("NFKC", justification.replace("\u00c2", ""))
    names = [normalize_text(name).replace(" ", "") for name in _LINE_ITEM.findall(cleaned)]
    return [name for name in names if name and not name.startswith("blank")]


def _justification_figures(justification: str, context: str) -> list[str]:
    """The justification's own figures that the page states (not years, not ``* 100``)."""
    out = []
    for figure in label_figures(justification):
        digits = figure.replace(",", "").strip("$ ")
        # Years, ``* 100`` and bare small integers (``Note 12``, ``Section 12(b)``) are not data.
        if _YEAR.fullmatch(digits) or digits == "100" or _SMALL.fullmatch(digits):
            continue
        if facts_contained(figure, context) and figure not in out:
            out.append(figure)
    return out


def needed_figures(case: GradedCase) -> tuple[LabelSource, tuple[str, ...]]:
    r"""What a filing page must keep for its question, and where that label comes from.

    The answer itself when the page states its figures (or, for an answer without figures,
    the answer's words); else the figures of the line items the justification names (the
    first row of the page labelled with each name) and the justification's own figures the
    page states; else every figure of the evidence's segments.

    Example:
        >>> page = "Cash flows\n(Millions)\n2018\n2017\nCapex\n(1,577)\n(1,373)\nSales\n900\n800"
        >>> case = GradedCase("c", page, "Capex to sales?", (), "1.75",
        ...                   justification="The line item named: Capex.")
        >>> needed_figures(case)
        ('line_items', ('1,577', '1,373'))
    """
    if case.answer and facts_contained(case.answer, case.context):
        return "answer", (case.answer,)
    rows = [s for s in split_segments(case.context) if s.kind == "row"]
    figures: list[str] = []
    for name in _line_items(case.justification):
        row = next((r for r in rows if _row_label(r.text).startswith(name)), None)
        if row is not None:
            figures += label_figures(row.text)
    figures += _justification_figures(case.justification, case.context)
    if figures:
        return "line_items", tuple(dict.fromkeys(figures))
    return "evidence", tuple(f for segment in case.evidence for f in label_figures(segment.text))


def containment_cases(path: str | Path, *, seed: int = 0) -> list[LabelledCase]:
    """Calibration cases labelled by evidence containment, built reproducibly from graded cases.

    Each case whose evidence states figures gives three ``LabelledCase``, one ``group``:

    - ``page``: its evidence page whole;
    - ``window``: about half of that page's lines around the evidence, at a seeded offset (the
      same evidence in a differently cut context);
    - ``distractor``: a seeded page of another company's filing under the same question,
      ``needs_evidence=False`` (nothing on it answers the question: forwarding nothing of it
      loses nothing).

    The label is what the question needs (``needed_figures``): the gold answer when the page
    states its figures (the ``facts`` judge finds them), else the figures of the line items the
    justification names and its own figures found on the page, else every figure of the
    evidence's segments; so the ``facts`` judge labels a compression correct exactly when it
    keeps them.

    Example:
        >>> from ib_middleware.lab.data import financebench_path
        >>> cases = containment_cases(financebench_path())
        >>> len(cases) >= 100, cases[0].answer, [c.case_id.split("/")[1] for c in cases[:3]]
        (True, '$1577.00', ['page', 'window', 'distractor'])
    """
    graded = load_graded_cases(path)
    out = []
    for case in graded:
        if not any(label_figures(segment.text) for segment in case.evidence):
            continue
        source, figures = needed_figures(case)
        label = case.answer if source == "answer" else " ".join(figures)
        rng = random.Random(f"{seed}-{case.case_id}")  # noqa: S311  # a seeded draw, not a secret
        company = company_of(case.group)
        others = sorted(
            {c.context for c in graded if c.group != case.group and company_of(c.group) != company}
        )
        variants = [("page", case.context, True), ("window", evidence_window(case, rng), True)]
        if others:
            variants.append(("distractor", others[rng.randrange(len(others))], False))
        out += [
            LabelledCase(
                context=context,
                query=case.query,
                answer=label if needs else "",
                case_id=f"{case.case_id}/{kind}",
                needs_evidence=needs,
                group=case.case_id,
            )
            for kind, context, needs in variants
        ]
    return out

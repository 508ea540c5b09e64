r"""The support check: every figure and name of a compression is its page's, by table cell.

A compression that states a figure or a name its context does not hold is wrong however much
information it carries, so the accept rule checks each one. The page is read into cells
(``cells``): each figure with its row, its column's year, its scale and sign. A figure of the
compression (``figures``) is

- *stated* when a cell holds it after scale words and suffixes are normalised
  (``$1,577M`` = ``$1.577 billion`` = ``$1.6 billion`` = ``1,577`` in a millions table) within
  the precision written, in a row the compression's words name and a column its years name,
  with a sign its words allow (``placement``);
- *derived* when a difference, sum, growth rate, share or ratio of two cells of the named rows
  gives it (``derive``); it passes unless ``allow_derived`` is off;
- else rejected, as exactly one of ``unsupported figure``, ``wrong column``, ``wrong row``,
  ``wrong unit`` or ``wrong sign``.

A year the compression names must be one the page names. A name (``names``) must be the page's
or the query's, or be spelt out by them (``J&J``, ``IPO``); else it is an ``unknown name``. A
sentence or line copied verbatim from the page always passes: it is where the page puts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ib_middleware.judging.cells import read_page
from ib_middleware.judging.figures import figures, periods
from ib_middleware.judging.names import name_spans, unknown_names
from ib_middleware.judging.verdicts import (
    REJECTIONS,
    Finding,
    Rejection,
    judge_sentence,
    sentences,
)
from ib_middleware.segments import ELISION

__all__ = [
    "REJECTIONS",
    "ContentSpan",
    "Finding",
    "Rejection",
    "content_spans",
    "support_findings",
    "unsupported_content",
]


@dataclass(frozen=True)
class ContentSpan:
    """A figure or a name in a text, or one the support check rejects.

    Attributes:
        kind: ``figure`` or ``entity`` (``content_spans``), or a rejection kind
            (``REJECTIONS``) from the support check.
        start: Character offset where the span starts.
        end: Character offset just past the span.
        text: The span as written.
    """

    kind: Literal["figure", "entity"] | Rejection
    start: int
    end: int
    text: str


def content_spans(text: str) -> list[ContentSpan]:
    """The figures (years included) and names of ``text``, in order.

    Example:
        >>> [span.text for span in content_spans("In FY2018 3M spent $1,577 million at Acme.")]
        ['FY2018', '3M', '$1,577 million', 'Acme']
    """
    spans = [ContentSpan("figure", f.start, f.end, f.text) for f in figures(text)]
    spans += [ContentSpan("figure", p.start, p.end, text[p.start : p.end]) for p in periods(text)]
    taken = [(span.start, span.end) for span in spans]
    spans += [
        ContentSpan("entity", name.start, name.end, name.text)
        for name in name_spans(text)
        if not any(start < name.end and name.start < end for start, end in taken)
    ]
    return sorted(spans, key=lambda span: span.start)


def _flat(text: str) -> str:
    return " ".join(text.split())


def support_findings(
    text: str, context: str, query: str = "", *, allow_derived: bool = True
) -> list[Finding]:
    r"""How the support check judges every figure and name of ``text``, in order.

    Example:
        >>> page = "(Millions)\n2018\n2017\nCapex\n(1,577)\n(1,373)\n"
        >>> [(f.text, f.verdict, f.derivation) for f in support_findings(
        ...     "Capex was $1.6 billion in 2018, up $204M from 2017.", page)]
        [('$1.6 billion', 'stated', None), ('$204M', 'derived', 'difference')]
    """
    page = read_page(context)
    findings: list[Finding] = []
    header_years: list[int] = []
    for start, sentence in sentences(text):
        flat = _flat(sentence)
        found = figures(sentence)
        line_periods = [p.year for p in periods(sentence)]
        if len(line_periods) >= 2 and not found:
            header_years = line_periods  # a header line names the columns of the rows below
        if flat == ELISION or flat in page.flat:
            findings += [Finding("verbatim", start + f.start, start + f.end, f.text) for f in found]
            continue
        findings += judge_sentence(
            start,
            sentence,
            page,
            header_years=header_years,
            query=query,
            allow_derived=allow_derived,
        )
        taken = [(f.start - start, f.end - start) for f in findings if f.start >= start]
        taken += [(p.start, p.end) for p in periods(sentence)]
        findings += [
            Finding("unknown name", start + name.start, start + name.end, name.text)
            for name in unknown_names(sentence, context, query)
            if not any(a < name.end and name.start < b for a, b in taken)
        ]
    return sorted(findings, key=lambda finding: finding.start)


def unsupported_content(
    text: str, context: str, query: str = "", *, allow_derived: bool = True
) -> list[ContentSpan]:
    r"""The figures and names of ``text`` its context does not support, in order.

    Each is named by its kind of rejection (``REJECTIONS``) and position. A name the query
    holds is supported (a compression may say whose filing it is when the page does not).

    Example:
        >>> page = "Cash flows\n(Millions)\n2018\n2017\nPurchases of PP&E\n(1,577)\n(1,373)\n"
        >>> [s.kind for s in unsupported_content("Capex was $1,577M in 2018.", page)]
        []
        >>> [(s.kind, s.text) for s in unsupported_content("Capex was $1,577M in 2017.", page)]
        [('wrong column', '$1,577M')]
        >>> [(s.kind, s.text) for s in unsupported_content("Acme capex was $1,577 billion.", page)]
        [('unknown name', 'Acme'), ('wrong unit', '$1,577 billion')]
    """
    return [
        ContentSpan(finding.verdict, finding.start, finding.end, finding.text)
        for finding in support_findings(text, context, query, allow_derived=allow_derived)
        if finding.verdict in REJECTIONS
    ]

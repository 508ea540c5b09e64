"""The routing rule, in one place: what makes a compression acceptable at a rung.

A ladder of rungs runs cheapest first, each a compressor with a threshold tau_k. For one raw
context:

1. passthrough when it is already within the token budget;
2. otherwise compress with rung k; accept when the compression is valid (not empty, not
   malformed, at least ``min_output_tokens`` long, shorter than the input), states no figure or
   name its context lacks (``reject_unsupported_figures``), and its signal clears tau_k;
3. else escalate to rung k + 1 (an engine error escalates too, and is recorded);
4. after the last rung, forward the context unchanged (full-context fallback).

With a relevance gate (``prune_below``), a valid, supported compression that explains less of
the query than the gate asks is ``pruned``: a one-line note stands in for a context that holds
nothing the query needs. ``route_action`` is the rule; ``judge`` words it; calibration replays it.

The signal (``signal``) is the share of the query-relevant part of the context that z explains
for relevant-information PMI, and bits per token of z for CXMI and contrastive PMI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ib_middleware.compressors import Compression, Compressor
from ib_middleware.judging.online import OnlineEstimate
from ib_middleware.judging.support import ContentSpan, unsupported_content

__all__ = [
    "MIN_OUTPUT_TOKENS",
    "Action",
    "Decision",
    "Rung",
    "Verdict",
    "check_compression",
    "check_support",
    "judge",
    "route_action",
    "signal",
]

Decision = Literal["passthrough", "accepted", "pruned", "fallback"]
Action = Literal["accept", "prune", "escalate"]

_ECHO_MARKERS = ("<document>", "</document>")

MIN_OUTPUT_TOKENS = 4
"""The default configuration's least compression length: shorter outputs (a stray number or
word) are degenerate however high their bits per token, since a per-token signal of a 2-token
output is noise; such outputs were accepted in practice before this rule."""


@dataclass(frozen=True)
class Rung:
    """One step of the ladder.

    Attributes:
        compressor: What compresses at this rung.
        threshold_bits_per_token: tau_k: the least signal to accept (``signal`` gives its
            unit: bits per token of z, or for relevant-information PMI a share from 0 to 1).
        name: Name in decisions; the compressor's name by default.
    """

    compressor: Compressor
    threshold_bits_per_token: float
    name: str = ""

    @property
    def label(self) -> str:
        """The rung's name."""
        return self.name or self.compressor.name


@dataclass(frozen=True)
class Verdict:
    """Whether a rung's compression is accepted (or the context pruned), and why."""

    accepted: bool
    reason: str
    pruned: bool = False


def check_compression(compression: Compression, *, min_output_tokens: int = 1) -> str | None:
    """Why a compression is unusable, or None when it is valid.

    Example:
        >>> from ib_middleware.compressors import ExtractiveCompressor
        >>> empty = ExtractiveCompressor(budget_tokens=1).compress("A long sentence.", "q")
        >>> check_compression(empty)
        'empty compression'
    """
    text = compression.text.strip()
    if not text:
        return "empty compression"
    if any(marker in text for marker in _ECHO_MARKERS):
        return "malformed compression: it echoes the prompt's document delimiters"
    if "\ufffd" in text and text.count("\ufffd") * 4 > len(text):
        return "malformed compression: mostly undecodable bytes"
    if compression.output_tokens < min(min_output_tokens, compression.input_tokens):
        return f"degenerate compression: {compression.output_tokens} tokens"
    if compression.output_tokens >= compression.input_tokens:
        return (
            f"compression not shorter than its input "
            f"({compression.output_tokens} >= {compression.input_tokens} tokens)"
        )
    return None


def _describe(spans: Sequence[ContentSpan], *, capture_content: bool) -> str:
    parts = []
    for span in spans:
        where = f"{span.kind} at characters {span.start}-{span.end}"
        parts.append(f"{where} ({span.text!r})" if capture_content else where)
    return ", ".join(parts)


def check_support(
    compression: str,
    context: str,
    query: str,
    *,
    capture_content: bool = False,
    allow_derived: bool = True,
) -> tuple[tuple[ContentSpan, ...], str | None]:
    """The figures and names of ``compression`` its context does not support, and the reason.

    The reason names each span by its kind (``support.REJECTIONS``) and position; its text
    only with ``capture_content``. A figure derived from stated cells (a difference, sum,
    growth rate, share or ratio) passes unless ``allow_derived`` is off.

    Example:
        >>> spans, reason = check_support("Capex was $1,823 million.", "Capex (1,577).", "q")
        >>> reason
        'unsupported content: unsupported figure at characters 10-24'
    """
    spans = tuple(unsupported_content(compression, context, query, allow_derived=allow_derived))
    if not spans:
        return (), None
    return spans, f"unsupported content: {_describe(spans, capture_content=capture_content)}"


def signal(estimate: OnlineEstimate) -> tuple[float, str]:
    """The value thresholds apply to, and its unit.

    For relevant-information PMI it is, with the whole page as witness, the share of what the
    page tells about the query that z keeps (``retention``: about 1 when z keeps it all; above
    1 when z says it more plainly than the page), or with BM25 segments as witness the share of
    their surprisal that z explains (0 to 1); for CXMI and contrastive PMI, bits per token of z.

    Example:
        >>> from ib_middleware.judging.online import OnlineEstimate
        >>> signal(OnlineEstimate("cxmi", 2.0, 2.9, 0.29, 10, False, None, 0, (), 0.0, "m"))
        (0.29, 'bits/token')
    """
    if estimate.retention is not None:
        return estimate.retention, "of what the page tells about the query kept"
    if estimate.relevant_fraction is not None:
        return estimate.relevant_fraction, "of the relevant part explained"
    return estimate.bits_per_token, "bits/token"


def route_action(
    value: float, query_fraction: float | None, threshold: float, prune_below: float | None
) -> Action:
    """What the ladder does with a valid, supported compression: accept, prune or escalate.

    Prune when a gate is set and the compression explains less than ``prune_below`` of the
    query; else accept when the signal clears the rung's threshold; else escalate.

    Example:
        >>> route_action(0.9, 0.05, 0.5, 0.1), route_action(0.9, 0.3, 0.5, 0.1)
        ('prune', 'accept')
        >>> route_action(0.2, 0.3, 0.5, None)
        'escalate'
    """
    if prune_below is not None and query_fraction is not None and query_fraction < prune_below:
        return "prune"
    return "accept" if value >= threshold else "escalate"


def judge(
    estimate: OnlineEstimate, threshold: float, *, prune_below: float | None = None
) -> Verdict:
    """Accept, prune or reject a valid, supported compression by its signal (``route_action``).

    Example:
        >>> from ib_middleware.judging.online import OnlineEstimate
        >>> estimate = OnlineEstimate("cxmi", 2.0, 2.9, 0.29, 10, False, None, 0, (), 0.0, "m")
        >>> judge(estimate, 0.5).reason
        'low bit efficiency: 0.290 < 0.500 bits/token'
    """
    value, unit = signal(estimate)
    action = route_action(value, estimate.query_fraction, threshold, prune_below)
    if action == "prune":
        reason = (
            f"nothing relevant to the query: it explains {estimate.query_fraction:.3f} "
            f"< {prune_below:.3f} of the query"
        )
        return Verdict(accepted=False, reason=reason, pruned=True)
    if action == "accept":
        reason = f"accepted: {value:.3f} >= {threshold:.3f} {unit}"
        return Verdict(accepted=True, reason=reason)
    what = "low bit efficiency" if unit == "bits/token" else "too little relevant information"
    return Verdict(accepted=False, reason=f"{what}: {value:.3f} < {threshold:.3f} {unit}")

"""The routing rule, in one place: what makes a compression acceptable at a rung.

A ladder of rungs runs cheapest first, each a compressor with a threshold tau_k in bits per
token. For one raw context:

1. passthrough when it is already within the token budget;
2. otherwise compress with rung k and estimate; accept when the compression is valid (not
   empty, not malformed, at least ``min_output_tokens`` long, shorter than the input) and its
   bits per token clear tau_k;
3. else escalate to rung k + 1 (an engine error escalates too, and is recorded);
4. after the last rung, forward the context unchanged (full-context fallback).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ib_middleware.compressors import Compression, Compressor
from ib_middleware.online import OnlineEstimate

__all__ = ["MIN_OUTPUT_TOKENS", "Decision", "Rung", "Verdict", "check_compression", "judge"]

Decision = Literal["passthrough", "accepted", "fallback"]

_ECHO_MARKERS = ("<document>", "</document>")

MIN_OUTPUT_TOKENS = 4
"""The default configuration's least compression length: shorter outputs (a stray number or
word) are degenerate however high their bits per token, since CXMI per token of a 2-token output
is noise; such outputs were accepted in practice before this rule."""


@dataclass(frozen=True)
class Rung:
    """One step of the ladder.

    Attributes:
        compressor: What compresses at this rung.
        threshold_bits_per_token: tau_k: the least bits per token a compression must carry.
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
    """Whether a rung's compression is accepted, and why."""

    accepted: bool
    reason: str


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


def judge(estimate: OnlineEstimate, threshold: float) -> Verdict:
    """Accept or reject a valid compression by its estimated bits per token.

    Example:
        >>> from ib_middleware.online import OnlineEstimate
        >>> estimate = OnlineEstimate("cxmi", 2.0, 2.9, 0.29, 10, False, None, 0, (), 0.0, "m")
        >>> judge(estimate, 0.5).reason
        'low bit efficiency: 0.290 < 0.500 bits/token'
    """
    if estimate.bits_per_token >= threshold:
        reason = f"accepted: {estimate.bits_per_token:.3f} >= {threshold:.3f} bits/token"
        return Verdict(accepted=True, reason=reason)
    reason = f"low bit efficiency: {estimate.bits_per_token:.3f} < {threshold:.3f} bits/token"
    return Verdict(accepted=False, reason=reason)

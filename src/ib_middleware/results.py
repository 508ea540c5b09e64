"""What the stage returns: per-item results and per-rung attempts (plain, JSON-ready data)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ib_middleware.compressors import Compression
from ib_middleware.judging.online import OnlineEstimate
from ib_middleware.judging.routing import Decision
from ib_middleware.judging.support import ContentSpan

__all__ = ["ContextItem", "RungAttempt", "StageResult"]


@dataclass(frozen=True)
class ContextItem:
    """A piece of raw context: a tool output, a retrieved document, a chunk of history.

    Attributes:
        text: The raw text.
        source: Where it came from (a tool name, ``document``, ...), for decisions and spans.
        tokens: Its length under the stage's token counter, when the caller already counted
            it (the stage and its compressors then do not count it again).
        group: Items with the same group are parts of one context (the results of one tool
            output): the token budget applies to the group as a whole, so every item of a
            group over budget is judged, however short it is alone. None: a group of its own.
    """

    text: str
    source: str = "context"
    tokens: int | None = None
    group: str | None = None


@dataclass(frozen=True)
class RungAttempt:
    """What happened at one rung for one item.

    Attributes:
        rung: Index of the rung (0 is the cheapest).
        name: The rung's name.
        threshold_bits_per_token: Its threshold tau_k.
        accepted: Whether this rung's compression was forwarded.
        reason: Why it was accepted or rejected.
        compression: The compression, if one was produced.
        estimate: The online estimate, if one was made.
        error: ``ErrorType: message`` when the compressor or estimator failed.
        wall_s: Seconds spent at this rung.
        estimate_s: Seconds of that spent estimating.
        started_unix_ns: When the rung started (for spans), nanoseconds since the epoch.
        unsupported: Figures and names of the compression its context does not hold (by
            character position in the compression).
        pruned: The relevance gate found nothing the query needs: the item is pruned.
    """

    rung: int
    name: str
    threshold_bits_per_token: float
    accepted: bool
    reason: str
    compression: Compression | None = None
    estimate: OnlineEstimate | None = None
    error: str | None = None
    wall_s: float = 0.0
    estimate_s: float = 0.0
    started_unix_ns: int = 0
    unsupported: tuple[ContentSpan, ...] = ()
    pruned: bool = False


@dataclass(frozen=True)
class StageResult:
    """The stage's answer for one context item.

    Attributes:
        text: What the orchestrator should see: the accepted compression, the pruned note, or
            the original.
        decision: ``passthrough`` (under budget), ``accepted``, ``pruned`` (nothing relevant
            to the query: a one-line note stands in for the item) or ``fallback`` (original).
        rung: The rung whose compression was accepted, else None.
        reason: Human-readable reason for the decision.
        source: The item's source label.
        input_tokens: Tokens of the original.
        output_tokens: Tokens of ``text``.
        attempts: Every rung tried, in order.
        wall_s: Seconds the stage spent on this item.
        started_unix_ns: When the stage started on it, nanoseconds since the epoch.
    """

    text: str
    decision: Decision
    rung: int | None
    reason: str
    source: str
    input_tokens: int
    output_tokens: int
    attempts: tuple[RungAttempt, ...] = field(default_factory=tuple)
    wall_s: float = 0.0
    started_unix_ns: int = 0

    @property
    def compression_ratio(self) -> float:
        """Input tokens over output tokens (1.0 when nothing was compressed)."""
        return self.input_tokens / self.output_tokens if self.output_tokens else 1.0

    @property
    def accepted_attempt(self) -> RungAttempt | None:
        """The attempt whose compression was forwarded, if any."""
        return next((attempt for attempt in self.attempts if attempt.accepted), None)

    @property
    def bits_per_token(self) -> float | None:
        """Estimated bits per token of the forwarded compression, if one was forwarded."""
        attempt = self.accepted_attempt
        return attempt.estimate.bits_per_token if attempt and attempt.estimate else None

    def to_dict(self, *, include_text: bool = True) -> dict[str, Any]:
        """A JSON-ready dict; ``include_text=False`` leaves out every text field."""
        data = asdict(self)
        data["compression_ratio"] = self.compression_ratio
        data["bits_per_token"] = self.bits_per_token
        if not include_text:
            data.pop("text")
            for attempt in data["attempts"]:
                if attempt["compression"] is not None:
                    attempt["compression"].pop("text")
                if attempt["estimate"] is not None:
                    attempt["estimate"].pop("unsupported_text")
                for span in attempt["unsupported"]:
                    span.pop("text")
        return data

"""The compression stage: for each raw context, decide what the orchestrator sees, and why.

``CompressionStage.run`` (and ``arun``) takes raw context items and a query and returns one
``StageResult`` per item: the text to forward (a compression that cleared its rung's threshold,
or the original), the decision, the rung, every rung tried with its compression, estimate,
threshold, timing and error, and a human-readable reason. Whatever fails, the caller gets valid
content: with ``on_failure="passthrough"`` (the default) an engine error escalates to the next
rung and, after the last, the original text is forwarded; with ``on_failure="raise"`` engine and
estimator errors propagate to the caller instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ib_middleware.compressors import ApproximateTokenCounter, Compression
from ib_middleware.engines import TokenCounter
from ib_middleware.online import OnlineEstimate, OnlineEstimator
from ib_middleware.routing import Decision, Rung, check_compression, judge

__all__ = ["CompressionStage", "ContextItem", "RungAttempt", "StageResult"]

OnFailure = Literal["passthrough", "raise"]


@dataclass(frozen=True)
class ContextItem:
    """A piece of raw context: a tool output, a retrieved document, a chunk of history.

    Attributes:
        text: The raw text.
        source: Where it came from (a tool name, ``document``, ...), for decisions and spans.
    """

    text: str
    source: str = "context"


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


@dataclass(frozen=True)
class StageResult:
    """The stage's answer for one context item.

    Attributes:
        text: What the orchestrator should see: the accepted compression or the original.
        decision: ``passthrough`` (under budget), ``accepted`` or ``fallback`` (original).
        rung: The rung whose compression was accepted, else None.
        reason: Human-readable reason for the decision.
        source: The item's source label.
        input_tokens: Tokens of the original.
        output_tokens: Tokens of ``text``.
        attempts: Every rung tried, in order.
        wall_s: Seconds the stage spent on this item.
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
        return data


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class CompressionStage:
    """A ladder of compressors with online estimates and a full-context fallback.

    Example:
        >>> from ib_middleware.compressors import ExtractiveCompressor
        >>> from ib_middleware.online import CXMIEstimator
        >>> from ib_middleware.testing import FakeScorer
        >>> stage = CompressionStage(
        ...     [Rung(ExtractiveCompressor(budget_tokens=12), threshold_bits_per_token=0.5)],
        ...     estimator=CXMIEstimator(FakeScorer(lambda p, z: -1.0 if "Document" in p else -9.0)),
        ...     token_budget=10,
        ... )
        >>> page = "Capex was $1,577 million. " + "Unrelated filler text. " * 20
        >>> [result] = stage.run([page], query="What was capex?")
        >>> result.decision, result.rung, result.text
        ('accepted', 0, 'Capex was $1,577 million.')
    """

    def __init__(
        self,
        rungs: Sequence[Rung],
        *,
        estimator: OnlineEstimator,
        token_budget: int = 256,
        token_counter: TokenCounter | None = None,
        on_failure: OnFailure = "passthrough",
    ) -> None:
        """Configure the stage.

        Args:
            rungs: Compressors with thresholds, cheapest first. May be empty (always fallback).
            estimator: The online estimator (CXMI or contrastive PMI).
            token_budget: Items with at most this many tokens pass through untouched.
            token_counter: Counts tokens for budgets and ratios; the scorer's tokenizer when
                the estimator's scorer has one, otherwise about four characters a token.
            on_failure: ``passthrough`` escalates on errors and falls back to the original;
                ``raise`` lets engine and estimator errors propagate.
        """
        if on_failure not in ("passthrough", "raise"):
            msg = f"on_failure must be 'passthrough' or 'raise', got {on_failure!r}"
            raise ValueError(msg)
        if token_budget < 0:
            msg = f"token_budget must be non-negative, got {token_budget}"
            raise ValueError(msg)
        self.rungs = tuple(rungs)
        self.estimator = estimator
        self.token_budget = token_budget
        self.on_failure: OnFailure = on_failure
        if token_counter is None:
            scorer = getattr(estimator, "scorer", None)
            token_counter = (
                scorer if isinstance(scorer, TokenCounter) else ApproximateTokenCounter()
            )
        self.token_counter = token_counter

    @staticmethod
    def _items(items: Sequence[ContextItem | str]) -> list[ContextItem]:
        return [item if isinstance(item, ContextItem) else ContextItem(item) for item in items]

    def _passthrough(self, item: ContextItem, tokens: int, started: float) -> StageResult:
        return StageResult(
            text=item.text,
            decision="passthrough",
            rung=None,
            reason=f"within the token budget ({tokens} <= {self.token_budget} tokens)",
            source=item.source,
            input_tokens=tokens,
            output_tokens=tokens,
            wall_s=time.perf_counter() - started,
        )

    def _finish(
        self, item: ContextItem, tokens: int, attempts: list[RungAttempt], started: float
    ) -> StageResult:
        accepted = next((attempt for attempt in attempts if attempt.accepted), None)
        if accepted is not None and accepted.compression is not None:
            return StageResult(
                text=accepted.compression.text,
                decision="accepted",
                rung=accepted.rung,
                reason=f"rung {accepted.rung} ({accepted.name}) {accepted.reason}",
                source=item.source,
                input_tokens=tokens,
                output_tokens=self.token_counter.count_tokens(accepted.compression.text),
                attempts=tuple(attempts),
                wall_s=time.perf_counter() - started,
            )
        if attempts:
            why = "; ".join(f"rung {a.rung} ({a.name}): {a.reason}" for a in attempts)
            reason = f"full context forwarded: no rung was good enough ({why})"
        else:
            reason = "full context forwarded: the ladder has no rungs"
        return StageResult(
            text=item.text,
            decision="fallback",
            rung=None,
            reason=reason,
            source=item.source,
            input_tokens=tokens,
            output_tokens=tokens,
            attempts=tuple(attempts),
            wall_s=time.perf_counter() - started,
        )

    @staticmethod
    def _record(
        index: int,
        rung: Rung,
        started: float,
        *,
        accepted: bool,
        reason: str,
        compression: Compression | None = None,
        estimate: OnlineEstimate | None = None,
        error: BaseException | None = None,
    ) -> RungAttempt:
        return RungAttempt(
            rung=index,
            name=rung.label,
            threshold_bits_per_token=rung.threshold_bits_per_token,
            accepted=accepted,
            reason=reason,
            compression=compression,
            estimate=estimate,
            error=_error_text(error) if error is not None else None,
            wall_s=time.perf_counter() - started,
        )

    def _judged(
        self,
        index: int,
        rung: Rung,
        started: float,
        compression: Compression,
        estimate: OnlineEstimate,
    ) -> RungAttempt:
        verdict = judge(estimate, rung.threshold_bits_per_token)
        return self._record(
            index,
            rung,
            started,
            accepted=verdict.accepted,
            reason=verdict.reason,
            compression=compression,
            estimate=estimate,
        )

    def _failed(
        self,
        index: int,
        rung: Rung,
        started: float,
        compression: Compression | None,
        error: Exception,
    ) -> RungAttempt:
        if self.on_failure == "raise":
            raise error
        stage = "estimator" if compression is not None else "compressor"
        return self._record(
            index,
            rung,
            started,
            accepted=False,
            reason=f"{stage} error ({type(error).__name__}), escalated",
            compression=compression,
            error=error,
        )

    def _invalid(
        self, index: int, rung: Rung, started: float, compression: Compression, why: str
    ) -> RungAttempt:
        return self._record(
            index, rung, started, accepted=False, reason=f"rejected: {why}", compression=compression
        )

    def _one(self, item: ContextItem, query: str, references: Sequence[str]) -> StageResult:
        started = time.perf_counter()
        tokens = self.token_counter.count_tokens(item.text)
        if tokens <= self.token_budget:
            return self._passthrough(item, tokens, started)
        attempts: list[RungAttempt] = []
        for index, rung in enumerate(self.rungs):
            rung_started = time.perf_counter()
            compression: Compression | None = None
            try:
                compression = rung.compressor.compress(item.text, query)
                invalid = check_compression(compression)
                if invalid is not None:
                    attempts.append(self._invalid(index, rung, rung_started, compression, invalid))
                    continue
                estimate = self.estimator.estimate(
                    item.text, query, compression.text, references=references
                )
            except Exception as error:  # noqa: BLE001  # any failure escalates; see on_failure
                attempts.append(self._failed(index, rung, rung_started, compression, error))
                continue
            attempt = self._judged(index, rung, rung_started, compression, estimate)
            attempts.append(attempt)
            if attempt.accepted:
                break
        return self._finish(item, tokens, attempts, started)

    async def _aone(self, item: ContextItem, query: str, references: Sequence[str]) -> StageResult:
        started = time.perf_counter()
        tokens = self.token_counter.count_tokens(item.text)
        if tokens <= self.token_budget:
            return self._passthrough(item, tokens, started)
        attempts: list[RungAttempt] = []
        for index, rung in enumerate(self.rungs):
            rung_started = time.perf_counter()
            compression: Compression | None = None
            try:
                compression = await rung.compressor.acompress(item.text, query)
                invalid = check_compression(compression)
                if invalid is not None:
                    attempts.append(self._invalid(index, rung, rung_started, compression, invalid))
                    continue
                estimate = await self.estimator.aestimate(
                    item.text, query, compression.text, references=references
                )
            except Exception as error:  # noqa: BLE001  # any failure escalates; see on_failure
                attempts.append(self._failed(index, rung, rung_started, compression, error))
                continue
            attempt = self._judged(index, rung, rung_started, compression, estimate)
            attempts.append(attempt)
            if attempt.accepted:
                break
        return self._finish(item, tokens, attempts, started)

    def run(self, items: Sequence[ContextItem | str], query: str) -> list[StageResult]:
        """Decide, for each item, what the orchestrator sees. One result per item, in order.

        Args:
            items: Raw context items (plain strings are wrapped as ``ContextItem``).
            query: The query the context should serve.
        """
        normalised = self._items(items)
        texts = [item.text for item in normalised]
        return [
            self._one(item, query, texts[:index] + texts[index + 1 :])
            for index, item in enumerate(normalised)
        ]

    async def arun(self, items: Sequence[ContextItem | str], query: str) -> list[StageResult]:
        """Async twin of ``run``: items are processed concurrently."""
        normalised = self._items(items)
        texts = [item.text for item in normalised]
        return list(
            await asyncio.gather(
                *(
                    self._aone(item, query, texts[:index] + texts[index + 1 :])
                    for index, item in enumerate(normalised)
                )
            )
        )

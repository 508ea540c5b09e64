"""The ladder's step, in one place: one rung compresses one context and the accept rule judges it.

``RungStep.run_rung`` (and ``arun_rung``) is used by the stage's sync and async ladders and by
calibration, so a verdict at run time and in calibration is reached by the same code.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from ib_middleware.compressors import Compression, Compressor
from ib_middleware.engines import TokenCounter
from ib_middleware.errors import is_control_flow
from ib_middleware.judging.online import OnlineEstimate, OnlineEstimator
from ib_middleware.judging.routing import Rung, check_compression, check_support, judge
from ib_middleware.judging.support import ContentSpan
from ib_middleware.results import RungAttempt

__all__ = ["CountingCompressor", "OnFailure", "RungStep", "error_text", "since"]

OnFailure = Literal["passthrough", "raise"]


@runtime_checkable
class CountingCompressor(Compressor, Protocol):
    """A compressor that takes the context's token count when its caller has it.

    The ladder passes ``context_tokens`` only when it was counted with this compressor's own
    ``token_counter``, so a page is tokenised once on its way through the stage.
    """

    @property
    def token_counter(self) -> TokenCounter:
        """What counts this compressor's tokens."""
        ...

    def compress(
        self, context: str, query: str, *, context_tokens: int | None = None
    ) -> Compression:
        """Compress ``context``; ``context_tokens`` is its length, when known."""
        ...

    async def acompress(
        self, context: str, query: str, *, context_tokens: int | None = None
    ) -> Compression:
        """Async twin of ``compress``."""
        ...


def error_text(error: BaseException) -> str:
    """``ErrorType: message``, as decisions record an error."""
    return f"{type(error).__name__}: {error}"


def since(started: float) -> tuple[float, int]:
    """Seconds elapsed since a perf_counter reading, and that moment in epoch nanoseconds."""
    elapsed = time.perf_counter() - started
    return elapsed, time.time_ns() - int(elapsed * 1e9)


class RungStep:
    """The ladder's step, shared by ``CompressionStage`` (its base class) and calibration.

    Attributes:
        rungs: The ladder, cheapest first.
        estimator: The online estimator.
        on_failure: ``passthrough`` records engine errors as rejections; ``raise`` raises them.
        min_output_tokens: Shorter compressions are degenerate.
        reject_unsupported_figures: Reject compressions holding figures or names the context
            does not support (``routing.check_support``).
        prune_below: The relevance gate: a compression explaining less of the query prunes
            the context (``routing.route_action``); None turns the gate off.
        token_counter: Counts tokens for budgets; a context counted with it is not counted
            again by a compressor sharing it.
    """

    rungs: tuple[Rung, ...]
    estimator: OnlineEstimator
    on_failure: OnFailure
    min_output_tokens: int
    reject_unsupported_figures: bool
    prune_below: float | None = None
    token_counter: TokenCounter

    def _known_length(self, rung: Rung, context_tokens: int | None) -> dict[str, Any]:
        """``context_tokens`` for the rung's compressor, when counted with its own counter."""
        compressor = rung.compressor
        if (
            context_tokens is not None
            and isinstance(compressor, CountingCompressor)
            and compressor.token_counter is self.token_counter
        ):
            return {"context_tokens": context_tokens}
        return {}

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
        estimate_s: float = 0.0,
        unsupported: tuple[ContentSpan, ...] = (),
        pruned: bool = False,
    ) -> RungAttempt:
        wall_s, started_unix_ns = since(started)
        return RungAttempt(
            rung=index,
            name=rung.label,
            threshold_bits_per_token=rung.threshold_bits_per_token,
            accepted=accepted,
            reason=reason,
            compression=compression,
            estimate=estimate,
            error=error_text(error) if error is not None else None,
            wall_s=wall_s,
            estimate_s=estimate_s,
            started_unix_ns=started_unix_ns,
            unsupported=unsupported,
            pruned=pruned,
        )

    def _judged(
        self,
        index: int,
        rung: Rung,
        started: float,
        compression: Compression,
        estimate: OnlineEstimate,
    ) -> RungAttempt:
        verdict = judge(estimate, rung.threshold_bits_per_token, prune_below=self.prune_below)
        return self._record(
            index,
            rung,
            started,
            accepted=verdict.accepted,
            pruned=verdict.pruned,
            reason=verdict.reason,
            compression=compression,
            estimate=estimate,
            estimate_s=max(0.0, time.perf_counter() - started - compression.wall_s),
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
        self,
        index: int,
        rung: Rung,
        started: float,
        compression: Compression,
        why: str,
        *,
        unsupported: tuple[ContentSpan, ...] = (),
    ) -> RungAttempt:
        return self._record(
            index,
            rung,
            started,
            accepted=False,
            reason=f"rejected: {why}",
            compression=compression,
            unsupported=unsupported,
        )

    def _screen(
        self,
        index: int,
        started: float,
        compression: Compression,
        context: str,
        query: str,
    ) -> RungAttempt | None:
        """The rejection of an invalid or unsupported compression, or None when it may be scored."""
        rung = self.rungs[index]
        invalid = check_compression(compression, min_output_tokens=self.min_output_tokens)
        if invalid is not None:
            return self._invalid(index, rung, started, compression, invalid)
        if self.reject_unsupported_figures:
            spans, why = check_support(compression.text, context, query)
            if why is not None:
                return self._invalid(index, rung, started, compression, why, unsupported=spans)
        return None

    def run_rung(
        self,
        index: int,
        context: str,
        query: str,
        *,
        references: Sequence[str] = (),
        context_tokens: int | None = None,
    ) -> RungAttempt:
        """The ladder's step: rung ``index`` compresses ``context``, and the accept rule judges it.

        Compress, validate (``routing.check_compression``), check every figure and name against
        the context (``routing.check_support``), estimate, then let the accept rule
        (``routing.judge``) accept, prune (relevance gate) or escalate. The stage's ladders,
        sync and async, and calibration all call this, so a verdict means the same everywhere.
        An engine or estimator error gives a rejected attempt that records it
        (``on_failure="raise"`` raises it instead); control-flow signals always propagate.

        Args:
            index: Which rung.
            context: The raw context, as engines take it.
            query: The query.
            references: The request's other contexts (for contrastive PMI).
            context_tokens: The context's length under ``token_counter``, when counted.
        """
        rung = self.rungs[index]
        started = time.perf_counter()
        compression: Compression | None = None
        known = self._known_length(rung, context_tokens)
        try:
            compression = rung.compressor.compress(context, query, **known)
            rejected = self._screen(index, started, compression, context, query)
            if rejected is not None:
                return rejected
            estimate = self.estimator.estimate(
                context, query, compression.text, references=references
            )
        except Exception as error:  # any failure escalates; see on_failure
            if is_control_flow(error):
                raise
            return self._failed(index, rung, started, compression, error)
        return self._judged(index, rung, started, compression, estimate)

    async def arun_rung(
        self,
        index: int,
        context: str,
        query: str,
        *,
        references: Sequence[str] = (),
        context_tokens: int | None = None,
    ) -> RungAttempt:
        """Async twin of ``run_rung``."""
        rung = self.rungs[index]
        started = time.perf_counter()
        compression: Compression | None = None
        known = self._known_length(rung, context_tokens)
        try:
            compression = await rung.compressor.acompress(context, query, **known)
            rejected = self._screen(index, started, compression, context, query)
            if rejected is not None:
                return rejected
            estimate = await self.estimator.aestimate(
                context, query, compression.text, references=references
            )
        except Exception as error:  # any failure escalates; see on_failure
            if is_control_flow(error):
                raise
            return self._failed(index, rung, started, compression, error)
        return self._judged(index, rung, started, compression, estimate)

"""The compression stage: for each raw context, decide what the orchestrator sees, and why.

``CompressionStage.run`` (and ``arun``) takes raw context items and a query and returns one
``StageResult`` per item: the text to forward (a compression that cleared its rung's threshold,
or the original), the decision, the rung, every rung tried with its compression, estimate,
threshold, timing and error, and a human-readable reason. Whatever fails, the caller gets valid
content: with ``on_failure="passthrough"`` (the default) an engine error escalates to the next
rung and, after the last, the original text is forwarded; with ``on_failure="raise"`` engine and
estimator errors propagate to the caller instead. A failure outside the ladder (a token counter
that raises, say) forwards that item's original too, with the error in the reason.

Bad input has defined outcomes: an empty or whitespace-only item passes through untouched;
``bytes`` are decoded as UTF-8 with U+FFFD for invalid sequences; text that cannot be encoded as
UTF-8 (lone surrogates) reaches the engines with those characters replaced, while a fallback
forwards it unchanged; anything else that is not text raises ``TypeError`` before any work.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
from collections.abc import Sequence
from typing import Any

from ib_middleware.compressors import ApproximateTokenCounter, Compression
from ib_middleware.engines import TokenCounter
from ib_middleware.errors import is_control_flow, redact_quotes
from ib_middleware.judging.online import OnlineEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.ladder import OnFailure, RungStep, error_text, since
from ib_middleware.observers import RunObservation, StageObserver
from ib_middleware.results import ContextItem, RungAttempt, StageResult

__all__ = ["CompressionStage", "ContextItem", "RungAttempt", "StageResult", "pruned_note"]

_SURROGATES = re.compile("[\ud800-\udfff]")


def _engine_text(text: str) -> str:
    """``text`` as engines can take it: lone surrogates (UTF-8 cannot encode them) become U+FFFD."""
    return _SURROGATES.sub("\ufffd", text)


def pruned_note(source: str, tokens: int) -> str:
    """The one line that stands in for a pruned item.

    Example:
        >>> pruned_note("tool:search", 726)
        '[search result: nothing relevant to the question; 726 tokens omitted]'
    """
    label = f"{source.removeprefix('tool:')} result" if source.startswith("tool:") else source
    return f"[{label}: nothing relevant to the question; {tokens} tokens omitted]"


def _timing(started: float) -> dict[str, Any]:
    wall_s, started_unix_ns = since(started)
    return {"wall_s": wall_s, "started_unix_ns": started_unix_ns}


class CompressionStage(RungStep):
    """A ladder of compressors with online estimates and a full-context fallback.

    Example:
        >>> from ib_middleware.compressors import ExtractiveCompressor
        >>> from ib_middleware.judging.online import CXMIEstimator
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
        observers: Sequence[StageObserver] = (),
        min_output_tokens: int = 1,
        reject_unsupported_figures: bool = True,
        prune_below: float | None = None,
    ) -> None:
        """Configure the stage.

        Args:
            rungs: Compressors with thresholds, cheapest first. May be empty (always fallback).
            estimator: The online estimator (CXMI or contrastive PMI).
            token_budget: Items (and groups of items) with at most this many tokens pass
                through untouched.
            token_counter: Counts tokens for budgets and ratios; the scorer's tokenizer when
                the estimator's scorer has one, otherwise about four characters a token.
            on_failure: ``passthrough`` escalates on errors and falls back to the original;
                ``raise`` lets engine and estimator errors propagate.
            observers: Watchers of each invocation (telemetry); they can never break it.
            min_output_tokens: Shorter compressions are rejected as degenerate.
            reject_unsupported_figures: Reject a compression holding a figure or a name its
                context (or, for names, the query) does not hold, before it is scored.
            prune_below: The relevance gate: when a valid, supported compression explains
                less than this share of the query (``OnlineEstimate.query_fraction``), the
                item is ``pruned``: a one-line note (``pruned_note``) is forwarded instead.
                None (the default) turns the gate off.
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
        self.observers = tuple(observers)
        self.min_output_tokens = min_output_tokens
        self.reject_unsupported_figures = reject_unsupported_figures
        self.prune_below = prune_below

    @staticmethod
    def _items(items: Sequence[ContextItem | str | bytes]) -> list[ContextItem]:
        normalised = []
        for item in items:
            text: object = item.text if isinstance(item, ContextItem) else item
            if isinstance(text, bytes):
                text = text.decode("utf-8", "replace")
            if not isinstance(text, str):
                msg = (
                    f"context items must be text (str, bytes or ContextItem), got "
                    f"{type(text).__name__}; pass only the text parts of multimodal content"
                )
                raise TypeError(msg)
            if isinstance(item, ContextItem):
                normalised.append(ContextItem(text, item.source, item.tokens, item.group))
            else:
                normalised.append(ContextItem(text))
        return normalised

    def over_budget(self, tokens: int) -> bool:
        """Whether ``tokens`` of context are over the token budget.

        The one rule, for an item alone and for a group (a tool output's results) as a whole.

        Example:
            >>> from ib_middleware.judging.online import CXMIEstimator
            >>> from ib_middleware.testing import FakeScorer
            >>> stage = CompressionStage([], estimator=CXMIEstimator(FakeScorer()), token_budget=8)
            >>> stage.over_budget(8), stage.over_budget(9)
            (False, True)
        """
        return tokens > self.token_budget

    def _grouped(self, items: list[ContextItem]) -> tuple[list[ContextItem], set[str]]:
        """Items with their groups' members counted (once), and the groups over budget."""
        counted: list[ContextItem] = []
        totals: dict[str, int] = {}
        for given in items:
            item = given
            if given.group is not None:
                if item.tokens is None:
                    try:
                        tokens = self.token_counter.count_tokens(_engine_text(item.text))
                    except Exception as error:  # the item's own guard records the failure
                        if is_control_flow(error):
                            raise
                    else:
                        item = dataclasses.replace(item, tokens=tokens)
                totals[given.group] = totals.get(given.group, 0) + (item.tokens or 0)
            counted.append(item)
        return counted, {group for group, total in totals.items() if self.over_budget(total)}

    def failure_result(
        self, item: ContextItem, error: Exception, started: float | None = None
    ) -> StageResult:
        """The result that forwards ``item`` unchanged after ``error`` outside the ladder.

        The reason names the error; any part of its message that quotes the item is cut out.
        Under ``on_failure="raise"`` the error is raised instead.

        Example:
            >>> from ib_middleware.judging.online import CXMIEstimator
            >>> from ib_middleware.testing import FakeScorer
            >>> stage = CompressionStage([], estimator=CXMIEstimator(FakeScorer()))
            >>> stage.failure_result(ContextItem("text"), RuntimeError("boom")).reason
            'full context forwarded: the stage failed (RuntimeError: boom)'
        """
        if self.on_failure == "raise":
            raise error
        tokens = 0
        with contextlib.suppress(Exception):  # the counter may be what failed
            tokens = self.token_counter.count_tokens(item.text)
        message = redact_quotes(error_text(error), item.text)
        return StageResult(
            text=item.text,
            decision="fallback",
            rung=None,
            reason=f"full context forwarded: the stage failed ({message})",
            source=item.source,
            input_tokens=tokens,
            output_tokens=tokens,
            **_timing(time.perf_counter() if started is None else started),
        )

    def _length(self, item: ContextItem, text: str) -> int:
        """The item's token count: the caller's when it counted it, else counted here."""
        return item.tokens if item.tokens is not None else self.token_counter.count_tokens(text)

    def _output_tokens(self, attempt: RungAttempt, compression: Compression) -> int:
        """Tokens of an accepted compression: its own count when made with the stage's counter."""
        compressor = self.rungs[attempt.rung].compressor
        if getattr(compressor, "token_counter", None) is self.token_counter:
            return compression.output_tokens
        return self.token_counter.count_tokens(compression.text)

    def _passthrough(self, item: ContextItem, tokens: int, started: float) -> StageResult:
        reason = f"within the token budget ({tokens} <= {self.token_budget} tokens)"
        if item.group is not None:
            reason = f"within the token budget, with its group ({self.token_budget} tokens)"
        if not item.text.strip():
            reason = "empty context: nothing to compress"
        return StageResult(
            text=item.text,
            decision="passthrough",
            rung=None,
            reason=reason,
            source=item.source,
            input_tokens=tokens,
            output_tokens=tokens,
            **_timing(started),
        )

    def _finish(
        self, item: ContextItem, tokens: int, attempts: list[RungAttempt], started: float
    ) -> StageResult:
        pruned = next((attempt for attempt in attempts if attempt.pruned), None)
        if pruned is not None:
            note = pruned_note(item.source, tokens)
            return StageResult(
                text=note,
                decision="pruned",
                rung=None,
                reason=f"pruned at rung {pruned.rung} ({pruned.name}): {pruned.reason}",
                source=item.source,
                input_tokens=tokens,
                output_tokens=self.token_counter.count_tokens(note),
                attempts=tuple(attempts),
                **_timing(started),
            )
        accepted = next((attempt for attempt in attempts if attempt.accepted), None)
        if accepted is not None and accepted.compression is not None:
            return StageResult(
                text=accepted.compression.text,
                decision="accepted",
                rung=accepted.rung,
                reason=f"rung {accepted.rung} ({accepted.name}) {accepted.reason}",
                source=item.source,
                input_tokens=tokens,
                output_tokens=self._output_tokens(accepted, accepted.compression),
                attempts=tuple(attempts),
                **_timing(started),
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
            **_timing(started),
        )

    def _one(
        self, item: ContextItem, query: str, references: Sequence[str], routed: bool
    ) -> StageResult:
        started = time.perf_counter()
        try:
            return self._ladder(item, query, references, routed, started)
        except Exception as error:  # a failure outside the ladder; see on_failure
            if is_control_flow(error):
                raise
            return self.failure_result(item, error, started)

    def _ladder(
        self,
        item: ContextItem,
        query: str,
        references: Sequence[str],
        routed: bool,
        started: float,
    ) -> StageResult:
        text = _engine_text(item.text)
        tokens = self._length(item, text)
        if not (routed or self.over_budget(tokens)) or not text.strip():
            return self._passthrough(item, tokens, started)
        attempts: list[RungAttempt] = []
        for index in range(len(self.rungs)):
            attempt = self.run_rung(
                index, text, query, references=references, context_tokens=tokens
            )
            attempts.append(attempt)
            if attempt.accepted or attempt.pruned:
                break
        return self._finish(item, tokens, attempts, started)

    async def _aone(
        self, item: ContextItem, query: str, references: Sequence[str], routed: bool
    ) -> StageResult:
        started = time.perf_counter()
        try:
            return await self._aladder(item, query, references, routed, started)
        except Exception as error:  # a failure outside the ladder; see on_failure
            if is_control_flow(error):
                raise
            return self.failure_result(item, error, started)

    async def _aladder(
        self,
        item: ContextItem,
        query: str,
        references: Sequence[str],
        routed: bool,
        started: float,
    ) -> StageResult:
        text = _engine_text(item.text)
        tokens = self._length(item, text)
        if not (routed or self.over_budget(tokens)) or not text.strip():
            return self._passthrough(item, tokens, started)
        attempts: list[RungAttempt] = []
        for index in range(len(self.rungs)):
            attempt = await self.arun_rung(
                index, text, query, references=references, context_tokens=tokens
            )
            attempts.append(attempt)
            if attempt.accepted or attempt.pruned:
                break
        return self._finish(item, tokens, attempts, started)

    def run(self, items: Sequence[ContextItem | str | bytes], query: str) -> list[StageResult]:
        """Decide, for each item, what the orchestrator sees. One result per item, in order.

        Items of one group (``ContextItem.group``) share the token budget: when their total is
        over it, each of them is judged (kept, compressed or pruned), even one under the budget
        alone.

        Args:
            items: Raw context items (strings are wrapped as ``ContextItem``, bytes decoded).
            query: The query the context should serve.

        Raises:
            TypeError: An item is not text.
        """
        normalised, over = self._grouped(self._items(items))
        texts = [_engine_text(item.text) for item in normalised]
        observation = RunObservation(self.observers, query, normalised)
        try:
            results = [
                self._one(item, query, texts[:index] + texts[index + 1 :], item.group in over)
                for index, item in enumerate(normalised)
            ]
        except BaseException as error:
            observation.failed(error)
            raise
        observation.finished(results)
        return results

    async def arun(
        self, items: Sequence[ContextItem | str | bytes], query: str
    ) -> list[StageResult]:
        """Async twin of ``run``: items are processed concurrently.

        When one item raises (``on_failure="raise"``), the others are cancelled and awaited
        before the error propagates, so nothing keeps running in the background.
        """
        normalised, over = self._grouped(self._items(items))
        texts = [_engine_text(item.text) for item in normalised]
        observation = RunObservation(self.observers, query, normalised)
        tasks = [
            asyncio.ensure_future(
                self._aone(item, query, texts[:index] + texts[index + 1 :], item.group in over)
            )
            for index, item in enumerate(normalised)
        ]
        try:
            results = list(await asyncio.gather(*tasks))
        except BaseException as error:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            observation.failed(error)
            raise
        observation.finished(results)
        return results

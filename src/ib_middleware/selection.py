"""Query-aware selection of whole segments: an evidence-keeping compressor at CPU speed."""

from __future__ import annotations

import asyncio
import time

from ib_middleware.compressors import ApproximateTokenCounter, Compression, copied_compression
from ib_middleware.engines import TokenCounter
from ib_middleware.segments import Segment, bm25_scores, join_segments, split_segments

__all__ = ["SegmentCompressor"]


class SegmentCompressor:
    r"""Query-aware selection of whole sentences, list items and table rows, at CPU speed.

    The page is split by structure (``ib_middleware.segments``): a table row keeps its table's
    header rows (years, units), a sentence stays whole, a list item keeps its marker.
    Segments are ranked by BM25 for the query; the best is always kept, and the next ones while
    they score at least ``relative_score`` of the best, up to ``max_segments`` and the budget:
    ``budget_tokens``, or ``budget_share`` of the page when that is larger (a long page keeps
    proportionally more). A question one row answers gets one row.
    Chosen segments keep source order, and ``[…]`` marks each gap. It copies text, so every
    figure it forwards is on the page. A page with no term of the query gives an empty
    compression (the ladder then escalates).

    Example:
        >>> page = "Cash flows\n(Millions)\n2018\n2017\nCapex\n(1,577)\n(1,373)\nThe logo."
        >>> print(SegmentCompressor().compress(page, "What was capex?").text)
        (Millions) 2018 2017
        Capex (1,577) (1,373)
    """

    def __init__(
        self,
        *,
        budget_tokens: int = 160,
        max_segments: int = 4,
        relative_score: float = 0.6,
        budget_share: float = 0.0,
        token_counter: TokenCounter | None = None,
        name: str | None = None,
    ) -> None:
        """Configure the compressor.

        Args:
            budget_tokens: Most tokens the selection may total (headers included).
            max_segments: Most segments kept.
            relative_score: A segment after the best is kept only while its BM25 score is at
                least this share of the best one's.
            budget_share: The budget grows to this share of the page's tokens on long pages
                (0 keeps it at ``budget_tokens``).
            token_counter: Counts tokens; about four characters a token by default.
            name: Name in decisions; ``segments-<budget>`` by default.
        """
        if budget_tokens < 1 or max_segments < 1:
            msg = "budget_tokens and max_segments must be positive"
            raise ValueError(msg)
        if not 0.0 <= relative_score <= 1.0 or not 0.0 <= budget_share < 1.0:
            msg = "relative_score must be in [0, 1] and budget_share in [0, 1)"
            raise ValueError(msg)
        self._budget = budget_tokens
        self._max_segments = max_segments
        self._relative = relative_score
        self._share = budget_share
        self._counter = token_counter or ApproximateTokenCounter()
        self._name = name or f"segments-{budget_tokens}"

    @property
    def name(self) -> str:
        """The compressor's name."""
        return self._name

    @property
    def token_counter(self) -> TokenCounter:
        """What counts this compressor's tokens."""
        return self._counter

    def budget(self, context_tokens: int) -> int:
        """The token budget for a page of ``context_tokens`` tokens."""
        return max(self._budget, int(self._share * context_tokens))

    def select(
        self, context: str, query: str, *, context_tokens: int | None = None
    ) -> list[Segment]:
        """The segments this compressor keeps for ``query``, in source order.

        ``context_tokens`` is the page's token count when the caller has it (else it is
        counted here when ``budget_share`` needs it).
        """
        if context_tokens is None and self._share:
            context_tokens = self._counter.count_tokens(context)
        budget = self.budget(context_tokens or 0)
        segments = [s for s in split_segments(context) if s.kind != "header"]
        scores = bm25_scores([s.text for s in segments], query)
        ranked = sorted(range(len(segments)), key=lambda i: (-scores[i], i))
        if not ranked or scores[ranked[0]] <= 0.0:
            return []
        best = scores[ranked[0]]
        chosen: list[Segment] = []
        for index in ranked[: self._max_segments]:
            if chosen and scores[index] < self._relative * best:
                break
            candidate = [*chosen, segments[index]]
            if chosen and self._counter.count_tokens(join_segments(candidate)) > budget:
                continue
            chosen = candidate
        return sorted(chosen, key=lambda s: s.index)

    def compress(
        self, context: str, query: str, *, context_tokens: int | None = None
    ) -> Compression:
        """Select the segments that best answer ``query``, with their headers, in source order.

        ``context_tokens`` is the context's length under ``token_counter``, when known.
        """
        started = time.perf_counter()
        if context_tokens is None:
            context_tokens = self._counter.count_tokens(context)
        text = join_segments(self.select(context, query, context_tokens=context_tokens))
        return copied_compression(
            text,
            model=self._name,
            input_tokens=context_tokens,
            counter=self._counter,
            started=started,
        )

    async def acompress(
        self, context: str, query: str, *, context_tokens: int | None = None
    ) -> Compression:
        """Async twin of ``compress`` (runs in a worker thread)."""
        return await asyncio.to_thread(self.compress, context, query, context_tokens=context_tokens)

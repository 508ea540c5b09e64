"""The truncation baseline: keep the first tokens of the context, whatever the query.

It reads nothing and decides nothing, so any compressor worth running should beat it at the same
length; its bits per token show what position alone carries.
"""

from __future__ import annotations

import asyncio
import time

from ib_middleware.compressors import ApproximateTokenCounter, Compression, copied_compression
from ib_middleware.engines import TokenCounter

__all__ = ["TruncationCompressor"]


class TruncationCompressor:
    """Keeps the longest run of leading words that fits ``budget_tokens``.

    Example:
        >>> TruncationCompressor(budget_tokens=4).compress("one two three four five", "?").text
        'one two three'
    """

    def __init__(
        self,
        *,
        budget_tokens: int = 128,
        token_counter: TokenCounter | None = None,
        name: str | None = None,
    ) -> None:
        """Configure the baseline.

        Args:
            budget_tokens: Most tokens kept.
            token_counter: Counts tokens; about four characters a token by default.
            name: Name in results; ``truncation-<budget>`` by default.
        """
        if budget_tokens < 1:
            msg = f"budget_tokens must be positive, got {budget_tokens}"
            raise ValueError(msg)
        self._budget = budget_tokens
        self._counter = token_counter or ApproximateTokenCounter()
        self._name = name or f"truncation-{budget_tokens}"

    @property
    def name(self) -> str:
        """The compressor's name."""
        return self._name

    def compress(self, context: str, query: str) -> Compression:
        """The leading words of ``context`` that fit the budget (``query`` is ignored)."""
        del query
        started = time.perf_counter()
        words = context.split()
        low, high = 0, len(words)
        while low < high:  # the largest prefix of words within the budget
            middle = (low + high + 1) // 2
            if self._counter.count_tokens(" ".join(words[:middle])) <= self._budget:
                low = middle
            else:
                high = middle - 1
        return copied_compression(
            " ".join(words[:low]),
            model=self._name,
            input_tokens=self._counter.count_tokens(context),
            counter=self._counter,
            started=started,
        )

    async def acompress(self, context: str, query: str) -> Compression:
        """Async twin of ``compress``."""
        return await asyncio.to_thread(self.compress, context, query)

"""A bounded cache of stage results, shared by every wrapper of the same stage.

A graph that builds its chat model on every step (as many ReAct templates do) builds a new
``CompressingChatModel`` each time; without a shared cache each one would compress the same
tool outputs again. Results are keyed by the stage's identity and configuration, the item's
source, the query and the text, so a stage that is reconfigured (a new budget, other rungs)
never reuses an answer it would not give.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from ib_middleware.stage import CompressionStage, ContextItem, StageResult

__all__ = ["DEFAULT_CACHE_SIZE", "CompressionCache"]

DEFAULT_CACHE_SIZE = 256
"""Results a shared cache keeps by default (least recently used are dropped first)."""

_SHARED: weakref.WeakKeyDictionary[CompressionStage, CompressionCache] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def _configuration(stage: CompressionStage) -> tuple[Any, ...]:
    # Identity of the stage and of the engines it calls, plus every setting that changes a
    # decision: a result is reused only by the stage (as configured) that made it.
    rungs = tuple(
        (id(rung.compressor), rung.label, rung.threshold_bits_per_token) for rung in stage.rungs
    )
    return (
        id(stage),
        id(stage.estimator),
        id(stage.token_counter),
        stage.token_budget,
        stage.min_output_tokens,
        stage.on_failure,
        stage.reject_unsupported_figures,
        stage.prune_below,
        rungs,
    )


class CompressionCache:
    """A thread-safe LRU of stage results keyed by (stage configuration, sources, query, texts).

    ``CompressionCache.shared(stage)`` is the one cache of a stage: every
    ``CompressingChatModel`` built on that stage uses it unless told otherwise, so a model
    rebuilt on each graph step finds the results of the previous steps. Only a digest of the
    text and query is kept as the key; the results hold the forwarded text.

    Example:
        >>> from ib_middleware.judging.online import CXMIEstimator
        >>> from ib_middleware.testing import FakeScorer
        >>> stage = CompressionStage([], estimator=CXMIEstimator(FakeScorer()), token_budget=8)
        >>> cache = CompressionCache(max_size=2)
        >>> item = ContextItem("short", "tool:search")
        >>> [result] = stage.run([item], "q")
        >>> cache.put(stage, item, "q", result)
        >>> cache.get(stage, item, "q") is result, cache.get(stage, item, "other query")
        (True, None)
        >>> CompressionCache.shared(stage) is CompressionCache.shared(stage)
        True
    """

    def __init__(self, max_size: int = DEFAULT_CACHE_SIZE) -> None:
        """Keep at most ``max_size`` results (0 keeps none).

        Raises:
            ValueError: On a negative size.
        """
        if max_size < 0:
            msg = f"max_size must be non-negative, got {max_size}"
            raise ValueError(msg)
        self.max_size = max_size
        self._results: OrderedDict[tuple[Any, ...], tuple[StageResult, ...]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def shared(
        cls, stage: CompressionStage, max_size: int = DEFAULT_CACHE_SIZE
    ) -> CompressionCache:
        """The cache shared by every wrapper of ``stage``; it grows to the largest size asked."""
        with _SHARED_LOCK:
            cache = _SHARED.get(stage)
            if cache is None:
                cache = _SHARED[stage] = cls(max_size)
            cache.max_size = max(cache.max_size, max_size)
            return cache

    @staticmethod
    def _key(stage: CompressionStage, items: Sequence[ContextItem], query: str) -> tuple[Any, ...]:
        digest = hashlib.sha256(query.encode("utf-8", "surrogatepass"))
        for item in items:
            digest.update(f"\x00{item.source}\x00{item.text}".encode("utf-8", "surrogatepass"))
        return (_configuration(stage), len(items), digest.hexdigest())

    def get(self, stage: CompressionStage, item: ContextItem, query: str) -> StageResult | None:
        """The result remembered for ``item`` and ``query`` under ``stage``, if any."""
        results = self.get_group(stage, [item], query)
        return results[0] if results is not None else None

    def put(
        self, stage: CompressionStage, item: ContextItem, query: str, result: StageResult
    ) -> None:
        """Remember ``result``; the least recently used results go beyond ``max_size``."""
        self.put_group(stage, [item], query, [result])

    def get_group(
        self, stage: CompressionStage, items: Sequence[ContextItem], query: str
    ) -> list[StageResult] | None:
        """The results remembered for the items of one group (one tool output's results).

        A group is remembered whole: an item's decision depends on the group's budget.
        """
        key = self._key(stage, items, query)
        with self._lock:
            results = self._results.get(key)
            if results is not None:
                self._results.move_to_end(key)
            return list(results) if results is not None else None

    def put_group(
        self,
        stage: CompressionStage,
        items: Sequence[ContextItem],
        query: str,
        results: Sequence[StageResult],
    ) -> None:
        """Remember the results of one group, as one entry."""
        if not self.max_size:
            return
        with self._lock:
            self._results[self._key(stage, items, query)] = tuple(results)
            while len(self._results) > self.max_size:
                self._results.popitem(last=False)

    def clear(self) -> None:
        """Forget every result."""
        with self._lock:
            self._results.clear()

    def __len__(self) -> int:
        """How many results are remembered."""
        with self._lock:
            return len(self._results)

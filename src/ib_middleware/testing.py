"""Scriptable fakes, so users can test their own graphs without a model.

Like simonw/llm's MockModel: queue up what the fake should return with ``enqueue`` (values or
exceptions to raise), and read what it was asked in ``history``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ib_middleware.engines import (
    ChatMessage,
    ContinuationScore,
    Generation,
    GenerationSettings,
    ScoreRequest,
)

__all__ = ["FakeCompressor", "FakeScorer"]

ScoreFunction = Callable[[str, str], float | Sequence[float]]


def _words(text: str) -> int:
    return max(1, len(text.split()))


@dataclass
class FakeScorer:
    """A ``Scorer`` that returns queued or computed log-probabilities.

    Each request takes the next queued item if there is one (a float total, a sequence of
    per-token log-probs, or an exception to raise); otherwise ``function(prompt, continuation)``
    decides. A total is spread evenly over the continuation's whitespace-separated words.

    Example:
        >>> scorer = FakeScorer(lambda prompt, z: -2.0)
        >>> scorer.enqueue([-0.5, -0.5])
        >>> [s.total for s in scorer.score([ScoreRequest("x", "a b"), ScoreRequest("x", "c")])]
        [-1.0, -2.0]
        >>> len(scorer.history)
        2
    """

    function: ScoreFunction | None = None
    model_id: str = "fake-scorer"
    history: list[ScoreRequest] = field(default_factory=list)
    _queue: deque[float | Sequence[float] | BaseException] = field(default_factory=deque)

    def enqueue(self, *items: float | Sequence[float] | BaseException) -> None:
        """Queue results (or exceptions) for the next requests, in order."""
        self._queue.extend(items)

    def _one(self, request: ScoreRequest) -> ContinuationScore:
        self.history.append(request)
        if self._queue:
            item = self._queue.popleft()
        elif self.function is not None:
            item = self.function(request.prompt, request.continuation)
        else:
            msg = "FakeScorer has nothing queued and no function; call enqueue() first"
            raise RuntimeError(msg)
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, int | float):
            count = _words(request.continuation)
            values: tuple[float, ...] = (float(item) / count,) * count
        else:
            values = tuple(float(value) for value in item)
        return ContinuationScore(token_logprobs=values, prompt_tokens=_words(request.prompt))

    def score(self, requests: Sequence[ScoreRequest]) -> list[ContinuationScore]:
        """Score each request from the queue or the function."""
        return [self._one(request) for request in requests]

    async def ascore(self, requests: Sequence[ScoreRequest]) -> list[ContinuationScore]:
        """Async twin of ``score``."""
        await asyncio.sleep(0)
        return self.score(requests)


@dataclass
class FakeCompressor:
    """A ``Generator`` that returns queued texts (or raises queued exceptions).

    Example:
        >>> fake = FakeCompressor()
        >>> fake.enqueue("short summary")
        >>> fake.generate([ChatMessage("user", "long context")]).text
        'short summary'
        >>> fake.history[0][0].content
        'long context'
    """

    model_id: str = "fake-compressor"
    default: str | None = None
    history: list[list[ChatMessage]] = field(default_factory=list)
    _queue: deque[str | BaseException] = field(default_factory=deque)

    def enqueue(self, *items: str | BaseException) -> None:
        """Queue replies (or exceptions) for the next calls, in order."""
        self._queue.extend(items)

    def generate(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None
    ) -> Generation:
        """Return the next queued reply."""
        del settings
        self.history.append(list(messages))
        if self._queue:
            item = self._queue.popleft()
        elif self.default is not None:
            item = self.default
        else:
            msg = "FakeCompressor has nothing queued and no default; call enqueue() first"
            raise RuntimeError(msg)
        if isinstance(item, BaseException):
            raise item
        prompt = sum(_words(message.content) for message in messages)
        return Generation(
            text=item,
            model=self.model_id,
            prompt_tokens=prompt,
            completion_tokens=_words(item),
            wall_s=0.0,
            finish_reason="stop",
        )

    async def agenerate(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None
    ) -> Generation:
        """Async twin of ``generate``."""
        await asyncio.sleep(0)
        return self.generate(messages, settings)

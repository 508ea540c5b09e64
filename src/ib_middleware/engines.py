"""The engine contract: small protocols for generation and scoring, and the values they pass.

An engine is anything that implements ``Generator`` (chat generation) and/or ``Scorer``
(teacher-forced log-probabilities of a continuation after a prompt). The core only talks to
these protocols; concrete engines live in ``ib_integrations`` and are found by name through the
registry (``ib_middleware.registry``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "ChatMessage",
    "ContinuationScore",
    "Generation",
    "GenerationSettings",
    "Generator",
    "ScoreRequest",
    "Scorer",
    "TokenCounter",
]

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    """One chat message sent to a generator."""

    role: Role
    content: str


@dataclass(frozen=True)
class GenerationSettings:
    """Sampling settings for one generation.

    Attributes:
        temperature: 0 is greedy decoding.
        max_tokens: Most tokens to generate.
        seed: Sampling seed, for reproducible compressions.
        stop: Strings that end generation.
    """

    temperature: float = 0.0
    max_tokens: int = 256
    seed: int = 0
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Generation:
    """The result of one generation call.

    Attributes:
        text: Generated text.
        model: Model identifier the engine reports.
        prompt_tokens: Tokens in the prompt, as the engine counted them.
        completion_tokens: Tokens generated.
        wall_s: Wall-clock seconds the call took.
        finish_reason: Why generation stopped (``stop``, ``length``, ...), if known.
    """

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    wall_s: float
    finish_reason: str | None = None


@dataclass(frozen=True)
class ScoreRequest:
    """Score ``continuation`` teacher-forced after ``prompt``.

    The two are tokenised separately (never joined as text, which can merge tokens across the
    boundary); the prompt gets the model's BOS token, the continuation none.
    """

    prompt: str
    continuation: str


@dataclass(frozen=True)
class ContinuationScore:
    """Log-probabilities of a continuation's tokens, in nats.

    Attributes:
        token_logprobs: log p(t_k | prompt, t_<k) for every token of the continuation.
        prompt_tokens: Tokens in the prompt.
        cached_tokens: Prompt tokens the engine reused from its cache for this request, when
            the engine reports it (SGLang's ``cached_tokens``); None otherwise.
    """

    token_logprobs: tuple[float, ...]
    prompt_tokens: int
    cached_tokens: int | None = None

    @property
    def total(self) -> float:
        """The sum of the token log-probabilities."""
        return math.fsum(self.token_logprobs)

    @property
    def n_tokens(self) -> int:
        """Number of continuation tokens."""
        return len(self.token_logprobs)


@runtime_checkable
class Generator(Protocol):
    """Chat generation: messages in, text out."""

    @property
    def model_id(self) -> str:
        """The model identifier, for telemetry and reports."""
        ...

    def generate(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None
    ) -> Generation:
        """Generate a reply to ``messages``."""
        ...

    async def agenerate(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None
    ) -> Generation:
        """Async twin of ``generate``."""
        ...


@runtime_checkable
class Scorer(Protocol):
    """Teacher-forced scoring: a batch of (prompt, continuation) pairs to log-probabilities.

    Implementations group requests that share a prompt so each prompt is evaluated once, and
    return the scores in the order of the requests. A failed request raises; it is never
    reported as a zero score.
    """

    @property
    def model_id(self) -> str:
        """The scoring model's identifier."""
        ...

    def score(self, requests: Sequence[ScoreRequest]) -> list[ContinuationScore]:
        """Score every request; results are in request order."""
        ...

    async def ascore(self, requests: Sequence[ScoreRequest]) -> list[ContinuationScore]:
        """Async twin of ``score``."""
        ...


@runtime_checkable
class TokenCounter(Protocol):
    """Counts tokens the way a model's tokenizer does."""

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` encodes to (no special tokens added)."""
        ...

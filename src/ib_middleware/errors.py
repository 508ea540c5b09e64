"""Typed exceptions. Each message says what happened and how to fix it."""

from __future__ import annotations

__all__ = [
    "CompressionRejectedError",
    "ContextWindowExceededError",
    "EngineError",
    "EngineNotFoundError",
    "EngineTimeoutError",
    "IBMiddlewareError",
    "ScoringUnsupportedError",
]


class IBMiddlewareError(Exception):
    """Base class of every error ib-middleware raises on purpose."""


class EngineError(IBMiddlewareError):
    """An inference engine failed: refused, died mid-request, or answered malformed data."""


class EngineTimeoutError(EngineError):
    """An engine did not answer within its timeout."""


class EngineNotFoundError(IBMiddlewareError, LookupError):
    """No engine is registered under the requested name."""


class ScoringUnsupportedError(EngineError):
    """The engine cannot return prompt log-probabilities, so it cannot score.

    OpenAI chat models are the usual case: configure a proxy scorer (an embedded llama.cpp
    model, a vLLM or SGLang server) for the estimates instead.
    """


class ContextWindowExceededError(EngineError, ValueError):
    """A prompt (plus continuation) does not fit the engine's context window."""


class CompressionRejectedError(IBMiddlewareError):
    """A compression was unusable (empty, malformed, or no shorter than its input)."""

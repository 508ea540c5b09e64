"""Typed exceptions. Each message says what happened and how to fix it."""

from __future__ import annotations

import asyncio
import sys

__all__ = [
    "CompressionRejectedError",
    "ContextWindowExceededError",
    "EngineError",
    "EngineNotFoundError",
    "EngineTimeoutError",
    "IBMiddlewareError",
    "PolicyMismatchError",
    "ScoringUnsupportedError",
    "is_control_flow",
    "redact_quotes",
]

_QUOTE_CHARS = 20
_REDACTED = "[...]"
_MAX_MESSAGE_CHARS = 500


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


class PolicyMismatchError(IBMiddlewareError, ValueError):
    """A calibrated policy was fitted for another estimator, scorer, witness or ladder.

    Its thresholds would mean something else on this stage; the message names what differs
    (the policy's value and the stage's) and the two ways out.
    """

    def __init__(self, policy: str, differences: list[str]) -> None:
        """Name the policy and what differs."""
        self.policy = policy
        self.differences = differences
        super().__init__(
            f"{policy} was calibrated for another stage ({'; '.join(differences)}). Recalibrate "
            "for this stage (`ib-middleware calibrate --config <your stage config> --out "
            "policy.json`, then `policy: policy.json`) or set `policy: null` to use the "
            "thresholds written in the config"
        )


class CompressionRejectedError(IBMiddlewareError):
    """A compression was unusable (empty, malformed, or no shorter than its input)."""


def is_control_flow(error: BaseException) -> bool:
    """Whether ``error`` is a control-flow signal that every guard must re-raise untouched.

    LangGraph steers a run by raising ``GraphBubbleUp`` and its subclasses: ``GraphInterrupt``
    (``interrupt()``, human in the loop), ``ParentCommand`` (a ``Command`` for the parent graph)
    and ``GraphDrained``. Task cancellation (``asyncio.CancelledError``), ``KeyboardInterrupt``
    and ``SystemExit`` are signals too. None of them is a failure to fall back from: a guard
    that catches ``Exception`` calls this first and re-raises when it is true. LangGraph is not
    imported here; while it is not loaded, none of its signals can exist.

    Example:
        >>> from langgraph.errors import GraphInterrupt
        >>> is_control_flow(GraphInterrupt()), is_control_flow(asyncio.CancelledError())
        (True, True)
        >>> is_control_flow(RuntimeError("engine died"))
        False
    """
    if isinstance(error, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
        return True
    bubble = getattr(sys.modules.get("langgraph.errors"), "GraphBubbleUp", None)
    return isinstance(bubble, type) and isinstance(error, bubble)


def redact_quotes(message: str, *texts: str, width: int = _QUOTE_CHARS) -> str:
    """``message`` with every run of ``width`` or more characters quoted from ``texts`` cut out.

    Error messages travel where raw context must not (span reasons, recorded decisions, logs):
    an engine that echoes its prompt into an error would otherwise carry the context along.
    Messages longer than 500 characters are cut first.

    Example:
        >>> context = "The secret revenue figure was $5,123 million in fiscal 2018."
        >>> redact_quotes("bad request: The secret revenue figure was $5,123", context)
        'bad request: [...]'
        >>> redact_quotes("HTTP 503: overloaded", context)
        'HTTP 503: overloaded'
    """
    if len(message) > _MAX_MESSAGE_CHARS:
        message = message[:_MAX_MESSAGE_CHARS] + "..."
    sources = [text for text in texts if len(text) >= width]
    if not sources or len(message) < width:
        return message
    quoted = [False] * len(message)
    for start in range(len(message) - width + 1):
        window = message[start : start + width]
        if any(window in text for text in sources):
            quoted[start : start + width] = [True] * width
    if not any(quoted):
        return message
    out: list[str] = []
    for index, char in enumerate(message):
        if not quoted[index]:
            out.append(char)
        elif index == 0 or not quoted[index - 1]:
            out.append(_REDACTED)
    return "".join(out)

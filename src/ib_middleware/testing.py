"""Scriptable fakes, so users can test their own graphs without a model.

Like simonw/llm's MockModel: queue up what the fake should return with ``enqueue`` (values or
exceptions to raise), and read what it was asked in ``history``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field, PrivateAttr

from ib_middleware.engines import (
    ChatMessage,
    ContinuationScore,
    Generation,
    GenerationSettings,
    ScoreRequest,
)

__all__ = ["FakeCompressor", "FakeScorer", "ScriptedChatModel", "tool_call"]

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


def _call_id(name: str) -> str:
    return f"call-{name}-{uuid.uuid4().hex[:8]}"


def tool_call(name: str, call_id: str | None = None, **args: Any) -> AIMessage:
    """An AI message that calls one tool: a step for ``ScriptedChatModel``.

    Each call gets an id of its own (``call-<tool>-<8 hex digits>``) unless ``call_id`` is
    given, so a script may call the same tool twice.

    Example:
        >>> tool_call("search_filings", company="3M").tool_calls[0]["args"]
        {'company': '3M'}
        >>> first, second = tool_call("search"), tool_call("search")
        >>> first.tool_calls[0]["id"] != second.tool_calls[0]["id"]
        True
    """
    call = {"name": name, "args": args, "id": call_id or _call_id(name), "type": "tool_call"}
    return AIMessage("", tool_calls=[call])


class ScriptedChatModel(BaseChatModel):
    """A chat model that replies with a script, in order: a stand-in for a tool-calling model.

    Strings become AI messages; ``tool_call(...)`` steps call tools. ``bind_tools`` returns
    the model itself, so ``create_agent`` and ReAct graphs accept it. After the script's end
    the last step repeats; a tool call replayed that way gets a fresh id.

    ``history`` holds what each call was shown: one list of messages per call, in order, as
    the model received them (after any compression in front of it). A test reads it to check
    what the orchestrator actually saw. A graph that builds its model on every step builds a
    new ``ScriptedChatModel`` (with an empty history) each time: build it once and hand the
    same instance out instead, as in the second example.

    Example:
        >>> model = ScriptedChatModel(script=[tool_call("search", q="capex"), "It was $1,577M."])
        >>> model.invoke("What was capex?").tool_calls[0]["name"]
        'search'
        >>> model.invoke("and then?").content, len(model.history)
        ('It was $1,577M.', 2)
        >>> [message.content for message in model.history[1]]
        ['and then?']

        A model node that "builds" its model on every step, reading one shared script::

            model = ScriptedChatModel(script=[tool_call("search", q="capex"), "$1,577M."])

            def make_model(name: str) -> ScriptedChatModel:
                return model  # in production: init_chat_model(name), built anew each step
    """

    script: list[BaseMessage | str]
    history: list[list[BaseMessage]] = Field(default_factory=list)
    """What each call was shown: one list of messages per call, in order."""

    _call_ids: set[str] = PrivateAttr(default_factory=set)

    @property
    def _llm_type(self) -> str:
        return "ib-middleware-scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        """Accept any tools: the script already says which to call."""
        del tools, kwargs
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        del stop, run_manager, kwargs
        step = self.script[min(len(self.history), len(self.script) - 1)]
        self.history.append(list(messages))
        reply = AIMessage(step) if isinstance(step, str) else step.model_copy(deep=True)
        if isinstance(reply, AIMessage):
            for call in reply.tool_calls:
                if call["id"] in self._call_ids:  # a replayed step: a tool call is answered once
                    call["id"] = _call_id(call["name"])
                self._call_ids.add(str(call["id"]))
        return ChatResult(generations=[ChatGeneration(message=reply)])

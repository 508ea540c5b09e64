"""Shared pieces of the examples: the embedded models as a LangChain predictor, quick mode.

Every example runs offline on the embedded models. The *compressor stage* is the library
default (SmolLM2-135M rung 0, Gemma-3-270M rung 1, CXMI scored by Gemma-3-270M, then the full
context), with compressions capped at 96 tokens as in ``make demo``. The *predictor* is the
embedded SmolLM2-135M-Instruct too, through ``LocalChatModel`` below: a real model, but a tiny
one, so read its answers as plumbing, not accuracy. Where the predictor must call tools, a
135M model cannot do it reliably: ``ScriptedToolCaller`` then makes the tool call from a
script (labelled as such in every output) and lets SmolLM2 write the answer.

Set ``IB_EXAMPLES_QUICK=1`` (the tests do) for a smaller run of every example.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict

from ib_middleware.build import EngineCache, build_stage
from ib_middleware.config import EngineConfig
from ib_middleware.engines import ChatMessage, GenerationSettings, Generator
from ib_middleware.lab.demo import demo_config
from ib_middleware.langgraph import message_text
from ib_middleware.stage import CompressionStage

__all__ = [
    "QUICK",
    "LocalChatModel",
    "ScriptedToolCaller",
    "example_models",
    "quick",
    "timed",
]

QUICK = os.environ.get("IB_EXAMPLES_QUICK", "").lower() in {"1", "true", "yes", "on"}
"""Smaller runs: the examples' tests set IB_EXAMPLES_QUICK=1."""


def quick(full: int, small: int) -> int:
    """``small`` in quick mode, else ``full``."""
    return small if QUICK else full


@contextmanager
def timed(label: str) -> Iterator[None]:
    """Print how long the block took."""
    started = time.perf_counter()
    yield
    print(f"{label}: {time.perf_counter() - started:.1f} s")


def example_models() -> tuple[CompressionStage, Generator]:
    """The default stage (compressions capped at 96 tokens) and the embedded SmolLM2 predictor.

    The predictor and rung 0 share one SmolLM2 instance (engines are created once).
    """
    engines = EngineCache()
    stage = build_stage(demo_config(None), engines=engines)
    predictor = engines.get(EngineConfig(options={"model_path": "smollm2"}))
    assert isinstance(predictor, Generator)
    return stage, predictor


def _turns(messages: Sequence[BaseMessage]) -> list[ChatMessage]:
    """System messages as they are; the rest as one user turn a small model can follow."""
    system = [ChatMessage("system", message_text(m) or "") for m in messages if m.type == "system"]
    parts = []
    for message in messages:
        text = message_text(message) or ""
        if isinstance(message, ToolMessage):
            parts.append(f"Result of {message.name or 'the tool'}:\n{text}")
        elif message.type == "human":
            parts.append(f"Question: {text}")
        elif message.type == "ai" and text:
            parts.append(f"Earlier answer: {text}")
    return [*system, ChatMessage("user", "\n\n".join(parts) + "\n\nAnswer in one sentence.")]


class LocalChatModel(BaseChatModel):
    """A LangChain chat model over an ib-middleware ``Generator`` (the embedded SmolLM2).

    The conversation is shown to the model as one user turn (question, tool results), which a
    135M model follows far better than a multi-turn tool transcript; it cannot call tools.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    generator: Any
    max_tokens: int = quick(96, 32)

    @property
    def _llm_type(self) -> str:
        return "ib-middleware-local"

    def bind_tools(self, tools: Any, **kwargs: Any) -> LocalChatModel:
        """Accept tools (the model will not call them: see ``ScriptedToolCaller``)."""
        del tools, kwargs
        return self

    def _answer(self, messages: Sequence[BaseMessage]) -> AIMessage:
        chat = _turns(messages)
        settings = GenerationSettings(max_tokens=self.max_tokens, temperature=0.0)
        generation = self.generator.generate(chat, settings)
        usage = {
            "input_tokens": generation.prompt_tokens,
            "output_tokens": generation.completion_tokens,
            "total_tokens": generation.prompt_tokens + generation.completion_tokens,
        }
        return AIMessage(generation.text.strip(), usage_metadata=usage)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        del stop, run_manager, kwargs
        return ChatResult(generations=[ChatGeneration(message=self._answer(messages))])


class ScriptedToolCaller(LocalChatModel):
    """SmolLM2 answers; the tool call before it is scripted (a 135M model cannot call tools).

    While the conversation holds no tool result yet, the reply is the scripted ``tool_call``
    (``{"name": ..., "args": ...}``); after it, SmolLM2 writes the answer from what it sees.
    Swap this class for your real tool-calling model (ChatOpenAI, ChatAnthropic, ...).
    """

    tool_call: dict[str, Any]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        if any(isinstance(m, ToolMessage) for m in messages):
            return super()._generate(messages, stop, run_manager, **kwargs)
        call = {**self.tool_call, "id": f"call-{len(messages)}", "type": "tool_call"}
        reply = AIMessage("", tool_calls=[call])
        return ChatResult(generations=[ChatGeneration(message=reply)])


def predictor_input_tokens(messages: Sequence[BaseMessage], counter: Any) -> int:
    """Tokens of what the predictor reads (message texts, by the stage's counter)."""
    return sum(counter.count_tokens(message_text(m) or "") for m in messages)

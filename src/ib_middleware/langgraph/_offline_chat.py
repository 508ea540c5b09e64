"""Any ``Generator`` as a LangChain chat model: an agent that runs offline.

``GeneratorChatModel(generator)`` is the reverse of ``ChatModelGenerator``: it puts an
ib-middleware engine (the embedded SmolLM2-135M-Instruct, Gemma-3-270M, or a server engine) behind
LangChain's ``BaseChatModel``, so ``create_agent``, a LangGraph model node, a chain or
``SummarizationMiddleware`` can run on it with no API key and no network.

It answers in text and never calls tools: ``bind_tools`` accepts the tools (so ``create_agent``
and ``model.bind_tools(tools)`` work) and the reply is the model's answer from what the
conversation holds. A 135M model cannot call tools reliably; for an agent that must call
them, script the calls (``ib_middleware.testing.ScriptedChatModel``) or use a tool-calling
model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.exceptions import ContextOverflowError
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

from ib_middleware.engines import ChatMessage, Generation, GenerationSettings
from ib_middleware.errors import ContextWindowExceededError
from ib_middleware.langgraph._common import message_text

__all__ = ["GeneratorChatModel", "Layout"]

Layout = Literal["roles", "single_turn"]
"""How a conversation is shown to the generator: one chat turn per message, or all in one."""

_ROLES: dict[str, Literal["system", "user", "assistant"]] = {
    "system": "system",
    "ai": "assistant",
}


def _labelled(message: BaseMessage) -> str:
    """A message's text, a tool result labelled with its tool's name."""
    text = message_text(message) or ""
    if isinstance(message, ToolMessage):
        return f"Result of {message.name or 'the tool'}:\n{text}"
    return text


def role_turns(messages: Sequence[BaseMessage]) -> list[ChatMessage]:
    """One chat turn per message: system, user (human and tool results) and assistant.

    Example:
        >>> from langchain_core.messages import HumanMessage, SystemMessage
        >>> [m.role for m in role_turns([SystemMessage("Be brief."), HumanMessage("Hi")])]
        ['system', 'user']
    """
    return [ChatMessage(_ROLES.get(m.type, "user"), _labelled(m)) for m in messages]


def single_turn(messages: Sequence[BaseMessage], instruction: str = "") -> list[ChatMessage]:
    """System messages as they are; the rest as one user turn, which a small model follows.

    Example:
        >>> from langchain_core.messages import HumanMessage
        >>> [turn] = single_turn([HumanMessage("What was capex?")], "Answer in one sentence.")
        >>> print(turn.content)
        Question: What was capex?
        <BLANKLINE>
        Answer in one sentence.
    """
    system = [ChatMessage("system", message_text(m) or "") for m in messages if m.type == "system"]
    parts = []
    for message in messages:
        text = message_text(message) or ""
        if isinstance(message, ToolMessage):
            parts.append(_labelled(message))
        elif message.type == "human":
            parts.append(f"Question: {text}")
        elif message.type == "ai" and text:
            parts.append(f"Earlier answer: {text}")
    if instruction:
        parts.append(instruction)
    return [*system, ChatMessage("user", "\n\n".join(parts))]


def _cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to its first stop sequence (for engines that do not stop by themselves)."""
    ends = [text.find(sequence) for sequence in stop if sequence and sequence in text]
    return text[: min(ends)] if ends else text


class GeneratorChatModel(BaseChatModel):
    """A LangChain chat model over an ib-middleware ``Generator``; it answers, never calls tools.

    Attributes:
        generator: Any ``Generator`` (``LlamaCppEngine.smollm2()``, a server engine, a fake).
        max_tokens: Most tokens per reply.
        temperature: Sampling temperature (0: greedy, the same reply every time).
        seed: Sampling seed.
        layout: ``roles`` (one chat turn per message; tool results as user turns) or
            ``single_turn`` (the question, tool results and earlier answers in one user turn,
            which a 135M model follows far better than a multi-turn transcript).
        instruction: Appended to the single turn (``single_turn`` only), e.g. ``Answer in one
            sentence.``.

    Generation errors propagate, except a prompt that does not fit the engine's window,
    which raises LangChain's ``ContextOverflowError`` so that middleware with an overflow
    path (``SummarizationMiddleware``) takes it.

    Example:
        >>> from ib_middleware.testing import FakeCompressor
        >>> model = GeneratorChatModel(generator=FakeCompressor(default="$1,577 million."))
        >>> model.invoke("What was 3M's capex in 2018?").content
        '$1,577 million.'
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    generator: Any
    max_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    seed: int = 0
    layout: Layout = "roles"
    instruction: str = ""

    @property
    def _llm_type(self) -> str:
        return "ib-middleware-generator"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model_id,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
            "layout": self.layout,
        }

    @property
    def model_id(self) -> str:
        """The generator's model name."""
        return str(getattr(self.generator, "model_id", type(self.generator).__name__))

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Accept ``tools`` so agents can be built; the replies never call them.

        Example:
            >>> from langchain_core.tools import tool
            >>> from ib_middleware.testing import FakeCompressor
            >>> @tool
            ... def search(company: str) -> str:
            ...     '''The pages on file for a company.'''
            ...     return "..."
            >>> model = GeneratorChatModel(generator=FakeCompressor(default="No call."))
            >>> reply = model.bind_tools([search]).invoke("What was capex?")
            >>> reply.content, reply.tool_calls
            ('No call.', [])
        """
        del tool_choice  # never calls a tool, so no choice can be honoured
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        return self.bind(tools=formatted, **kwargs)

    def _chat(self, messages: Sequence[BaseMessage]) -> list[ChatMessage]:
        if self.layout == "single_turn":
            return single_turn(messages, self.instruction)
        return role_turns(messages)

    def _settings(self, stop: list[str] | None) -> GenerationSettings:
        return GenerationSettings(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            seed=self.seed,
            stop=tuple(stop or ()),
        )

    def _result(self, generation: Generation, stop: list[str] | None) -> ChatResult:
        usage = {
            "input_tokens": generation.prompt_tokens,
            "output_tokens": generation.completion_tokens,
            "total_tokens": generation.prompt_tokens + generation.completion_tokens,
        }
        metadata = {
            "model_name": generation.model or self.model_id,
            "finish_reason": generation.finish_reason,
            "wall_s": generation.wall_s,
        }
        text = _cut_at_stop(generation.text, stop or ()).strip()
        reply = AIMessage(text, usage_metadata=usage, response_metadata=metadata)
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        del run_manager, kwargs  # bound tools are accepted, never called
        try:
            generation = self.generator.generate(self._chat(messages), self._settings(stop))
        except ContextWindowExceededError as error:
            raise ContextOverflowError(str(error)) from error
        return self._result(generation, stop)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        del run_manager, kwargs
        chat, settings = self._chat(messages), self._settings(stop)
        agenerate = getattr(self.generator, "agenerate", None)
        try:
            if agenerate is not None:
                generation = await agenerate(chat, settings)
            else:  # a sync-only generator: off the event loop
                generation = await asyncio.to_thread(self.generator.generate, chat, settings)
        except ContextWindowExceededError as error:
            raise ContextOverflowError(str(error)) from error
        return self._result(generation, stop)

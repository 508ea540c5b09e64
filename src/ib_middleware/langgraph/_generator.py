"""Use any LangChain chat model as a compressor's generator.

Users already have ``ChatOpenAI`` pointed at vLLM or SGLang, ``ChatOllama`` and the like; wrap one
in ``ChatModelGenerator`` and give it to ``AbstractiveCompressor``. The compressor's own calls
are tagged ``nostream`` (LangGraph leaves such calls out of ``stream_mode="messages"``, so
compressor tokens never reach the user's stream) and ``ib_middleware:compressor`` (so they still
show, labelled, in traces).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig

from ib_middleware.engines import ChatMessage, Generation, GenerationSettings

__all__ = ["COMPRESSOR_TAGS", "ChatModelGenerator"]

COMPRESSOR_TAGS = ("nostream", "ib_middleware:compressor")
"""Tags on every compressor call: hidden from message streams, visible in traces."""


def _to_langchain(messages: Sequence[ChatMessage]) -> list[AnyMessage]:
    converted: list[AnyMessage] = []
    for message in messages:
        if message.role == "system":
            converted.append(SystemMessage(content=message.content))
        elif message.role == "assistant":
            converted.append(AIMessage(content=message.content))
        else:
            converted.append(HumanMessage(content=message.content))
    return converted


def _text(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            block.get("text", "") if isinstance(block, dict) else str(block) for block in content
        ]
        return "".join(part for part in parts if isinstance(part, str))
    return str(content)


class ChatModelGenerator:
    """A ``Generator`` over a LangChain ``BaseChatModel``.

    Sampling settings are passed as call keywords only where the model accepts them; a chat
    model fixes its own temperature and token limit at construction.

    Example:
        >>> from langchain_core.language_models.fake_chat_models import FakeListChatModel
        >>> generator = ChatModelGenerator(FakeListChatModel(responses=["Capex: $1,577M."]))
        >>> generator.generate([ChatMessage("user", "compress this")]).text
        'Capex: $1,577M.'
    """

    def __init__(
        self, model: BaseChatModel, *, model_id: str | None = None, tags: Sequence[str] = ()
    ) -> None:
        """Wrap ``model``; ``tags`` are added to the compressor tags on every call."""
        self._model = model
        self._model_id = model_id or str(
            getattr(model, "model_name", None) or getattr(model, "model", None) or model.get_name()
        )
        self._config: RunnableConfig = {
            "tags": [*COMPRESSOR_TAGS, *tags],
            "metadata": {"ib_middleware_role": "compressor"},
            "run_name": "ib_middleware.compressor",
        }

    @property
    def model_id(self) -> str:
        """The wrapped model's name."""
        return self._model_id

    def _generation(self, message: Any, started: float) -> Generation:
        usage = getattr(message, "usage_metadata", None) or {}
        metadata = getattr(message, "response_metadata", None) or {}
        return Generation(
            text=_text(message),
            model=self._model_id,
            prompt_tokens=int(usage.get("input_tokens", 0)),
            completion_tokens=int(usage.get("output_tokens", 0)),
            wall_s=time.perf_counter() - started,
            finish_reason=metadata.get("finish_reason"),
        )

    def generate(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None
    ) -> Generation:
        """Invoke the chat model with the compressor tags."""
        stop = list(settings.stop) if settings and settings.stop else None
        started = time.perf_counter()
        reply = self._model.invoke(_to_langchain(messages), config=self._config, stop=stop)
        return self._generation(reply, started)

    async def agenerate(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None
    ) -> Generation:
        """Async twin of ``generate``."""
        stop = list(settings.stop) if settings and settings.stop else None
        started = time.perf_counter()
        reply = await self._model.ainvoke(_to_langchain(messages), config=self._config, stop=stop)
        return self._generation(reply, started)

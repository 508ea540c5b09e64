"""A chat model that compresses long messages before delegating to the model it wraps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, PrivateAttr

from ib_middleware.langgraph._cache import DEFAULT_CACHE_SIZE, CompressionCache
from ib_middleware.langgraph._common import DECISIONS_KEY, MessageKind
from ib_middleware.langgraph._messages import CompressedMessages, MessageCompressor
from ib_middleware.langgraph._originals import OriginalStore
from ib_middleware.langgraph._publish import publish_decisions
from ib_middleware.stage import CompressionStage

__all__ = ["CompressingChatModel"]


def _with_decisions(message: Any, decisions: list[dict[str, Any]]) -> Any:
    # A copy: the wrapped model may still hold (and stream) the object it returned.
    if decisions and isinstance(message, BaseMessage):
        metadata = {**message.response_metadata, DECISIONS_KEY: decisions}
        return message.model_copy(update={"response_metadata": metadata})
    return message


def _shown(out: CompressedMessages) -> CompressedMessages:
    """Show the fresh decisions in the running graph's streams (``publish_decisions``)."""
    publish_decisions(out.decisions, out.fresh)
    return out


class CompressingChatModel(BaseChatModel):
    """Wraps a chat model: long messages are compressed by the stage, then the model answers.

    Any agent that takes a chat model takes the middleware this way. Tool messages and older
    human messages over the stage's token budget are compressed for the latest human message
    (a tool message's query adds its tool call's arguments); system messages and the latest
    human message are kept, and no message is dropped or moved. The wrapped model's own run is
    what streams and what traces show, after a run named ``ib_middleware.compression_stage``
    tagged ``nostream``. ``bind_tools`` and ``with_structured_output`` pass through.

    The decisions made for one call are on the reply's ``response_metadata["ib_decisions"]``
    (on the first chunk when streaming). Inside a graph they also go to
    ``stream_mode="custom"`` (``{"ib_decisions": [...]}``), and the compressed copies the
    model reads are pushed to ``stream_mode="messages"`` just before its tokens (the state
    keeps the originals). Results are cached by (stage, text, query) in
    ``CompressionCache.shared(stage)``, shared by every wrapper of the same stage: a graph
    that builds its model on every step (``CompressingChatModel(make_model(), stage)``
    inside the node) compresses each tool output once, as long as the stage itself is built
    once, outside the node. ``cache_size=0`` turns caching off; ``shared_cache=False`` gives
    the wrapper a cache of its own.

    Example:
        ::

            from langchain.agents import create_agent
            from ib_middleware.build import build_stage
            from ib_middleware.langgraph import CompressingChatModel

            model = CompressingChatModel(ChatOpenAI(model="gpt-4.1"), build_stage())
            agent = create_agent(model, tools=[search])
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: Runnable[Any, Any]
    """The wrapped chat model (or a binding of it, after ``bind_tools``)."""
    stage: CompressionStage
    """The compression stage."""
    kinds: tuple[MessageKind, ...] = ("tool", "human")
    """Message kinds to compress."""
    cache_size: int = DEFAULT_CACHE_SIZE
    """How many results to remember by (text, query); 0 turns the cache off."""
    shared_cache: bool = True
    """Share the stage's cache (``CompressionCache.shared``) with its other wrappers."""
    originals: OriginalStore | None = None
    """Where the originals of compressed messages are kept, for ``expand_context_tool``
    (the state keeps the messages as they were, so without a store the tool finds them there)."""
    expandable: bool = False
    """Show the model each changed output's id, for ``expand_context_tool``."""

    _compressor: MessageCompressor = PrivateAttr()

    def __init__(
        self,
        model: Runnable[Any, Any] | None = None,
        stage: CompressionStage | None = None,
        **kwargs: Any,
    ) -> None:
        """Wrap ``model`` with ``stage``; other fields are keywords (``kinds``, ``cache_size``).

        Raises:
            TypeError: When the model or the stage is missing.
        """
        model = kwargs.pop("model", model)
        stage = kwargs.pop("stage", stage)
        if model is None or stage is None:
            msg = "CompressingChatModel needs a chat model and a CompressionStage"
            raise TypeError(msg)
        super().__init__(model=model, stage=stage, **kwargs)  # type: ignore[call-arg]

    def model_post_init(self, context: Any, /) -> None:
        """Build the message compressor once, on the stage's shared cache unless told not to."""
        super().model_post_init(context)
        cache = None
        if self.cache_size and self.shared_cache:
            cache = CompressionCache.shared(self.stage, self.cache_size)
        elif self.cache_size:
            cache = CompressionCache(self.cache_size)
        self._compressor = MessageCompressor(
            self.stage,
            kinds=self.kinds,
            cache=cache,
            originals=self.originals,
            expandable=self.expandable,
        )

    @property
    def _llm_type(self) -> str:
        return "ib-middleware-compressing"

    def _messages(self, input: LanguageModelInput) -> list[BaseMessage]:
        return self._convert_input(input).to_messages()

    def compress(
        self, input: LanguageModelInput, config: RunnableConfig | None = None
    ) -> CompressedMessages:
        """What the wrapped model would see for ``input``, with the decisions."""
        return self._compressor.compress(self._messages(input), config=config)

    async def acompress(
        self, input: LanguageModelInput, config: RunnableConfig | None = None
    ) -> CompressedMessages:
        """Async twin of ``compress``."""
        return await self._compressor.acompress(self._messages(input), config=config)

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Compress, then invoke the wrapped model with the same config."""
        out = _shown(self.compress(input, config))
        if stop is not None:
            kwargs["stop"] = stop
        reply = self.model.invoke(out.messages, config, **kwargs)
        return _with_decisions(reply, out.decisions)  # type: ignore[no-any-return]

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Async twin of ``invoke``."""
        out = _shown(await self.acompress(input, config))
        if stop is not None:
            kwargs["stop"] = stop
        reply = await self.model.ainvoke(out.messages, config, **kwargs)
        return _with_decisions(reply, out.decisions)  # type: ignore[no-any-return]

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        """Compress, then stream the wrapped model's chunks; the first carries the decisions."""
        out = _shown(self.compress(input, config))
        if stop is not None:
            kwargs["stop"] = stop
        decisions = out.decisions
        for chunk in self.model.stream(out.messages, config, **kwargs):
            yield _with_decisions(chunk, decisions)
            decisions = []

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        """Async twin of ``stream``."""
        out = _shown(await self.acompress(input, config))
        if stop is not None:
            kwargs["stop"] = stop
        decisions = out.decisions
        async for chunk in self.model.astream(out.messages, config, **kwargs):
            yield _with_decisions(chunk, decisions)
            decisions = []

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # Reached only through the legacy ``generate`` path; ``invoke`` is overridden.
        del run_manager
        reply = self.invoke(messages, stop=stop, **kwargs)
        return ChatResult(generations=[ChatGeneration(message=reply)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        del run_manager
        reply = await self.ainvoke(messages, stop=stop, **kwargs)
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools on the wrapped model; compression still runs first."""
        bind = getattr(self.model, "bind_tools", None)
        if bind is None:
            msg = f"{type(self.model).__name__} does not support bind_tools"
            raise NotImplementedError(msg)
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.model_copy(update={"model": bind(tools, **kwargs)})

    def with_structured_output(
        self, schema: dict[str, Any] | type, *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """The wrapped model's structured output, reading the compressed messages."""
        structured = getattr(self.model, "with_structured_output", None)
        if structured is None:
            msg = f"{type(self.model).__name__} does not support with_structured_output"
            raise NotImplementedError(msg)

        def messages(input: LanguageModelInput, config: RunnableConfig) -> list[BaseMessage]:
            return list(_shown(self.compress(input, config)).messages)

        async def amessages(input: LanguageModelInput, config: RunnableConfig) -> list[BaseMessage]:
            return list(_shown(await self.acompress(input, config)).messages)

        compress = RunnableLambda(messages, afunc=amessages, name="ib_middleware.compress")
        parser: Runnable[Any, Any] = structured(schema, include_raw=include_raw, **kwargs)
        return compress | parser

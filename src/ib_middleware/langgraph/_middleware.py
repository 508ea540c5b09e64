"""``IBMiddleware``: the compression stage as LangChain v1 ``create_agent`` middleware.

Two modes, chosen on purpose:

- ``tool`` (persistent): ``wrap_tool_call`` compresses each tool output as it arrives, for the
  tool call's arguments plus the latest human message, and the compressed tool message is
  what the agent's state keeps. Each output is compressed once.
- ``call`` (per call): ``wrap_model_call`` compresses what one model call sees; the messages
  in state stay as they were. Results are cached by (text, query), so the same history is not
  compressed again on the next step.

Either way system messages and the latest human message are kept, no message is dropped or
moved (a tool call never loses its tool message), a failing compressor forwards the original
content, and decisions are appended to the state key ``ib_decisions``. While the agent streams,
the decisions go to ``stream_mode="custom"`` as ``{"ib_decisions": [...]}`` and ride on the
compressed message in ``stream_mode="messages"``: the tool message itself in ``tool`` mode,
the copy the model reads (pushed just before its tokens) in ``call`` mode. LangGraph's control
flow (an interrupt inside a compressor, say) passes through untouched. The stage's runs, and
any chat model inside them, are tagged ``nostream`` and ``ib_middleware:compressor`` and marked
as internal calls: they show in traces, never in ``agent.stream()`` output.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, NotRequired, cast

from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain.agents.middleware.internal_call_transformer import (
    InternalCallTransformer,
    internal_call_metadata,
)
from langchain.agents.middleware.types import ExtendedModelResponse
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command

from ib_middleware.langgraph import (
    DECISIONS_KEY,
    CompressedMessages,
    Decisions,
    MessageCompressor,
    MessageKind,
    latest_human_text,
    publish_decisions,
)
from ib_middleware.langgraph._originals import OriginalStore, expand_context_tool
from ib_middleware.stage import CompressionStage

__all__ = ["IBMiddleware", "IBState", "Mode"]

Mode = Literal["tool", "call"]


class IBState(AgentState[Any]):
    """The agent state with the decisions key (appended, one JSON-ready dict per decision)."""

    ib_decisions: NotRequired[Decisions]


def _history(state: Any) -> list[BaseMessage]:
    messages = state.get("messages") if isinstance(state, dict) else getattr(state, "messages", [])
    return list(messages or [])


class IBMiddleware(AgentMiddleware[IBState, Any, Any]):
    """Compresses tool outputs (``mode="tool"``) or each model call's view (``mode="call"``).

    Example:
        ::

            from langchain.agents import create_agent
            from ib_middleware.langgraph import IBMiddleware
            from ib_middleware.build import build_stage

            agent = create_agent(model, tools=[search], middleware=[IBMiddleware(build_stage())])
            state = agent.invoke({"messages": [("user", "What was 3M's 2018 capex?")]})
            print(state["ib_decisions"])
    """

    state_schema = IBState
    transformers = (InternalCallTransformer,)

    def __init__(
        self,
        stage: CompressionStage,
        *,
        mode: Mode = "tool",
        kinds: Sequence[MessageKind] = ("tool",),
        cache_size: int = 256,
        originals: OriginalStore | None = None,
        expand_tool: bool = False,
    ) -> None:
        """Configure the middleware.

        Args:
            stage: The compression stage.
            mode: ``tool`` compresses each tool output once and keeps the compression in
                state; ``call`` compresses only what each model call sees.
            kinds: In ``call`` mode, the message kinds to compress: ``tool``, ``human``
                (never the latest), ``ai``.
            cache_size: In ``call`` mode, results remembered by (text, query).
            originals: Where originals are kept (``InMemoryOriginalStore``,
                ``LangGraphOriginalStore``); None keeps them on the tool messages (``tool``
                mode) or finds them in state (``call`` mode keeps the messages as they were).
            expand_tool: Give the agent ``expand_context`` (``expand_context_tool``) and show
                the model each changed output's id, so it can read an original in full.

        Raises:
            ValueError: On an unknown mode or kind.
        """
        super().__init__()
        if mode not in ("tool", "call"):
            msg = f"mode must be 'tool' or 'call', got {mode!r}"
            raise ValueError(msg)
        self.stage = stage
        self.mode: Mode = mode
        metadata = internal_call_metadata()
        kept: dict[str, Any] = {"originals": originals, "expandable": expand_tool}
        self._tools = MessageCompressor(stage, kinds=("tool",), metadata=metadata, **kept)
        self._calls = MessageCompressor(
            stage, kinds=kinds, cache_size=cache_size, metadata=metadata, **kept
        )
        self.tools = [expand_context_tool(originals)] if expand_tool else []

    # --- mode "tool": compress each tool output as it arrives -------------------------------

    def _tool_view(self, request: ToolCallRequest, result: Any) -> list[BaseMessage] | None:
        """The messages to compress for one tool result: its call, the question, the result."""
        if self.mode != "tool" or not isinstance(result, ToolMessage):
            return None
        # Whether it is long enough is decided (and its tokens counted, once) by the compressor.
        # The query needs only the question and the call, so the full history is not passed.
        return [*_question(request), _call_message(request), result]

    def _tool_result(
        self, result: ToolMessage, out: CompressedMessages
    ) -> ToolMessage | Command[Any]:
        # The tool node's output streams the compressed message: only the custom event here.
        publish_decisions(out.decisions)
        if not out.replaced:
            return result
        update: dict[str, Any] = {"messages": [out.replaced[-1]]}
        if out.decisions:
            update[DECISIONS_KEY] = out.decisions
        return Command(update=update)

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolMessage | Command[Any]],
    ) -> ToolMessage | Command[Any]:
        """Run the tool, then compress its output for the call's arguments and the question."""
        result = handler(request)
        view = self._tool_view(request, result)
        if view is None:
            return result
        out = self._tools.compress(view)
        return self._tool_result(cast("ToolMessage", result), out)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        """Async twin of ``wrap_tool_call``."""
        result = await handler(request)
        view = self._tool_view(request, result)
        if view is None:
            return result
        out = await self._tools.acompress(view)
        return self._tool_result(cast("ToolMessage", result), out)

    # --- mode "call": compress what one model call sees, state untouched ------------------

    @staticmethod
    def _call_result(
        response: ModelResponse[Any], out: CompressedMessages
    ) -> ModelResponse[Any] | ExtendedModelResponse[Any]:
        if not out.decisions:
            return response
        command: Command[Any] = Command(update={DECISIONS_KEY: out.decisions})
        return ExtendedModelResponse(model_response=response, command=command)

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any] | ExtendedModelResponse[Any]:
        """In ``call`` mode, hand the model compressed copies of the long messages."""
        if self.mode != "call":
            return handler(request)
        out = self._calls.compress(request.messages)
        if not out.replaced:
            return handler(request)
        publish_decisions(out.decisions, out.fresh)
        response = handler(request.override(messages=cast("list[AnyMessage]", out.messages)))
        return self._call_result(response, out)

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | ExtendedModelResponse[Any]:
        """Async twin of ``wrap_model_call``."""
        if self.mode != "call":
            return await handler(request)
        out = await self._calls.acompress(request.messages)
        if not out.replaced:
            return await handler(request)
        publish_decisions(out.decisions, out.fresh)
        messages = cast("list[AnyMessage]", out.messages)
        response = await handler(request.override(messages=messages))
        return self._call_result(response, out)


def _question(request: ToolCallRequest) -> list[BaseMessage]:
    question = latest_human_text(_history(request.state))
    return [HumanMessage(question)] if question else []


def _call_message(request: ToolCallRequest) -> AIMessage:
    return AIMessage("", tool_calls=[request.tool_call])

"""The adapters: every drop-in for LangGraph and LangChain.

- ``compression_node(stage)``: a node to place before the orchestrator; it compresses the tool
  messages (and optionally documents) in state and writes them back in place.
- ``add_compression(builder, stage, after="tools")``: your builder, with the named nodes
  compressing their tool outputs on every way out of them.
- ``with_compression(graph, stage)``: a compiled graph, copied so that its tool nodes
  compress their outputs (the tool outputs produced inside its loops) and the history it is
  given is compressed at its start.
- ``CompressingChatModel(model, stage)``: a chat model that compresses long messages before
  delegating, so any agent that takes a model takes the middleware.
- ``IBMiddleware(stage)``: LangChain v1 ``create_agent`` middleware (needs the ``langchain``
  extra: ``pip install "ib-middleware[langchain]"``; loaded on first use).
- ``ChatModelGenerator(model)``: any LangChain chat model as a compressor's generator.

Tool outputs are read as agents return them: JSON (a dict or list ``ToolNode`` dumped), a list
of content blocks, or text with an ``artifact`` is judged result by result, within the
output's budget as a whole, and shown in its own shape (valid JSON stays valid JSON). The
original of every compressed or pruned output stays one call away: on the message
(``response_metadata["ib_middleware"]["original"]``) or in an ``OriginalStore``
(``InMemoryOriginalStore``, ``LangGraphOriginalStore``), and ``expand_context_tool(store)``
gives the model a way to read it (every drop-in takes ``originals=`` and ``expandable=``).
- ``GeneratorChatModel(generator=...)``: the reverse, any engine (the embedded SmolLM2) as a
  LangChain chat model, so an agent runs offline; it answers and never calls tools.

Decisions are recorded under the state key ``ib_decisions`` (``DECISIONS_KEY``; declare it as
``ib_decisions: Decisions``): one JSON-ready dict per decision (``StageResult.to_dict(
include_text=False)`` plus the message id, tool-call id or document index), never the raw text.
While a graph streams they show in ``stream_mode="custom"`` (``{"ib_decisions": [...]}``) and
on the compressed messages in ``stream_mode="messages"``. The compressor's own runs are tagged
``nostream`` and ``ib_middleware:compressor``: they show in traces, not in message streams.
"""

from typing import TYPE_CHECKING

from ib_middleware.langgraph._cache import DEFAULT_CACHE_SIZE, CompressionCache
from ib_middleware.langgraph._chat_model import CompressingChatModel
from ib_middleware.langgraph._common import (
    DECISIONS_KEY,
    MARKER_KEY,
    STAGE_RUN_NAME,
    Decisions,
    MessageKind,
    compression_query,
    decision_record,
    latest_human_text,
    message_text,
)
from ib_middleware.langgraph._generator import COMPRESSOR_TAGS, ChatModelGenerator
from ib_middleware.langgraph._messages import CompressedMessages, MessageCompressor
from ib_middleware.langgraph._node import CompressionState, compression_node
from ib_middleware.langgraph._offline_chat import GeneratorChatModel
from ib_middleware.langgraph._originals import (
    EXPAND_TOOL_NAME,
    InMemoryOriginalStore,
    LangGraphOriginalStore,
    OriginalStore,
    decision_id,
    expand_context_tool,
    find_original,
)
from ib_middleware.langgraph._publish import publish_decisions
from ib_middleware.langgraph._runs import RecordedRun, RunRecorder
from ib_middleware.langgraph._stage_run import arun_stage, run_stage
from ib_middleware.langgraph._wrap import add_compression, with_compression

if TYPE_CHECKING:
    from ib_middleware.langgraph._middleware import IBMiddleware, IBState

__all__ = [
    "COMPRESSOR_TAGS",
    "DECISIONS_KEY",
    "DEFAULT_CACHE_SIZE",
    "EXPAND_TOOL_NAME",
    "MARKER_KEY",
    "STAGE_RUN_NAME",
    "ChatModelGenerator",
    "CompressedMessages",
    "CompressingChatModel",
    "CompressionCache",
    "CompressionState",
    "Decisions",
    "GeneratorChatModel",
    "IBMiddleware",
    "IBState",
    "InMemoryOriginalStore",
    "LangGraphOriginalStore",
    "MessageCompressor",
    "MessageKind",
    "OriginalStore",
    "RecordedRun",
    "RunRecorder",
    "add_compression",
    "arun_stage",
    "compression_node",
    "compression_query",
    "decision_id",
    "decision_record",
    "expand_context_tool",
    "find_original",
    "latest_human_text",
    "message_text",
    "publish_decisions",
    "run_stage",
    "with_compression",
]

_AGENT_MIDDLEWARE = frozenset({"IBMiddleware", "IBState"})


def __getattr__(name: str) -> object:
    # IBMiddleware needs LangChain v1 itself (the `langchain` extra), not only langchain-core:
    # it is loaded when first asked for, and a missing extra is named.
    if name in _AGENT_MIDDLEWARE:
        try:
            from ib_middleware.langgraph import _middleware  # noqa: PLC0415
        except ModuleNotFoundError as error:
            if (error.name or "").partition(".")[0] != "langchain":
                raise
            msg = f'{name} needs LangChain v1: pip install "ib-middleware[langchain]"'
            raise ModuleNotFoundError(msg, name=error.name) from error
        return getattr(_middleware, name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)

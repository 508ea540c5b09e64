"""LangGraph entry points: a node, a builder helper, a graph wrapper and a chat-model wrapper.

- ``compression_node(stage)``: a node to place before the orchestrator; it compresses the tool
  messages (and optionally documents) in state and writes them back in place.
- ``add_compression(builder, stage, after="tools")``: your builder, with the named nodes
  compressing their tool outputs on every way out of them.
- ``with_compression(graph, stage)``: a compiled graph, copied so that its tool nodes
  compress their outputs (the tool outputs produced inside its loops) and the history it is
  given is compressed at its start.
- ``CompressingChatModel(model, stage)``: a chat model that compresses long messages before
  delegating, so any agent that takes a model takes the middleware.

Decisions are recorded under the state key ``ib_decisions`` (``DECISIONS_KEY``; declare it as
``ib_decisions: Decisions``): one JSON-ready dict per decision (``StageResult.to_dict(
include_text=False)`` plus the message id, tool-call id or document index), never the raw text.
While a graph streams they show in ``stream_mode="custom"`` (``{"ib_decisions": [...]}``) and
on the compressed messages in ``stream_mode="messages"``. The compressor's own runs are tagged
``nostream`` and ``ib_middleware:compressor``: they show in traces, not in message streams.
"""

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
from ib_middleware.langgraph._messages import CompressedMessages, MessageCompressor
from ib_middleware.langgraph._node import CompressionState, compression_node
from ib_middleware.langgraph._publish import publish_decisions
from ib_middleware.langgraph._runs import RecordedRun, RunRecorder
from ib_middleware.langgraph._stage_run import arun_stage, run_stage
from ib_middleware.langgraph._wrap import add_compression, with_compression

__all__ = [
    "DECISIONS_KEY",
    "DEFAULT_CACHE_SIZE",
    "MARKER_KEY",
    "STAGE_RUN_NAME",
    "CompressedMessages",
    "CompressingChatModel",
    "CompressionCache",
    "CompressionState",
    "Decisions",
    "MessageCompressor",
    "MessageKind",
    "RecordedRun",
    "RunRecorder",
    "add_compression",
    "arun_stage",
    "compression_node",
    "compression_query",
    "decision_record",
    "latest_human_text",
    "message_text",
    "publish_decisions",
    "run_stage",
    "with_compression",
]

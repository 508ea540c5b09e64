"""LangGraph entry points: a node, a graph wrapper and a chat-model wrapper.

- ``compression_node(stage)``: a node to place before the orchestrator; it compresses the tool
  messages (and optionally documents) in state and writes them back in place.
- ``with_compression(graph, stage)``: a compiled graph with that node in front of yours.
- ``CompressingChatModel(model, stage)``: a chat model that compresses long messages before
  delegating, so any agent that takes a model takes the middleware.

Decisions are recorded under the state key ``ib_decisions`` (``DECISIONS_KEY``): one
JSON-ready dict per decision (``StageResult.to_dict(include_text=False)`` plus the message id,
tool-call id or document index), never the raw text. The compressor's own runs are tagged
``nostream`` and ``ib_middleware:compressor``: they show in traces, not in message streams.
"""

from ib_middleware.langgraph._chat_model import CompressingChatModel
from ib_middleware.langgraph._common import (
    DECISIONS_KEY,
    MARKER_KEY,
    STAGE_RUN_NAME,
    MessageKind,
    compression_query,
    decision_record,
    latest_human_text,
    message_text,
)
from ib_middleware.langgraph._messages import CompressedMessages, MessageCompressor
from ib_middleware.langgraph._node import CompressionState, compression_node, with_compression
from ib_middleware.langgraph._runs import RecordedRun, RunRecorder
from ib_middleware.langgraph._stage_run import arun_stage, run_stage

__all__ = [
    "DECISIONS_KEY",
    "MARKER_KEY",
    "STAGE_RUN_NAME",
    "CompressedMessages",
    "CompressingChatModel",
    "CompressionState",
    "MessageCompressor",
    "MessageKind",
    "RecordedRun",
    "RunRecorder",
    "arun_stage",
    "compression_node",
    "compression_query",
    "decision_record",
    "latest_human_text",
    "message_text",
    "run_stage",
    "with_compression",
]

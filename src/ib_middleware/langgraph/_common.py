"""Shared rules: which text a message has, the query a context is compressed for, records.

No message is ever dropped or reordered by this package; the helpers here only read messages
and turn stage results into JSON-ready records.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage

from ib_middleware.errors import redact_quotes
from ib_middleware.stage import StageResult

__all__ = [
    "DECISIONS_KEY",
    "KIND_TYPES",
    "MARKER_KEY",
    "STAGE_RUN_NAME",
    "Decisions",
    "MessageKind",
    "compression_query",
    "decision_record",
    "latest_human_index",
    "latest_human_text",
    "marker",
    "message_text",
]

DECISIONS_KEY = "ib_decisions"
"""State key under which every decision is recorded (JSON-ready dicts, no text)."""

Decisions = Annotated[list[dict[str, Any]], operator.add]
"""The type of the decisions key, with its reducer (appends), for any kind of state.

Declare it in your state and every drop-in appends its decisions there::

    class State(TypedDict):                     # TypedDict
        messages: Annotated[list[AnyMessage], add_messages]
        ib_decisions: Decisions

    @dataclass
    class State:                                # dataclass
        messages: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)
        ib_decisions: Decisions = field(default_factory=list)

    class State(BaseModel):                     # pydantic
        messages: Annotated[list[AnyMessage], add_messages] = []
        ib_decisions: Decisions = []
"""

MARKER_KEY = "ib_middleware"
"""Key in a message's ``response_metadata`` (or a document's metadata) once it was processed."""

STAGE_RUN_NAME = "ib_middleware.compression_stage"
"""Name of the traced run that wraps one stage invocation."""

MessageKind = Literal["tool", "human", "ai"]

KIND_TYPES: dict[MessageKind, type[BaseMessage]] = {
    "tool": ToolMessage,
    "human": HumanMessage,
    "ai": AIMessage,
}


def message_text(message: BaseMessage) -> str | None:
    """The text of a message, or None when its content is not only text.

    Example:
        >>> message_text(HumanMessage(content=[{"type": "text", "text": "hi"}]))
        'hi'
        >>> message_text(HumanMessage(content=[{"type": "image", "url": "x"}])) is None
        True
    """
    content = message.content
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, Mapping) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        else:
            return None
    return "".join(parts)


def latest_human_text(messages: Sequence[BaseMessage]) -> str:
    """The text of the latest human message, or ``""`` when there is none.

    Example:
        >>> latest_human_text([HumanMessage("first"), AIMessage("ok"), HumanMessage("second")])
        'second'
    """
    index = latest_human_index(messages)
    return "" if index is None else (message_text(messages[index]) or "")


def latest_human_index(messages: Sequence[BaseMessage]) -> int | None:
    """Position of the latest human message, or None."""
    return next(
        (i for i in range(len(messages) - 1, -1, -1) if isinstance(messages[i], HumanMessage)),
        None,
    )


def compression_query(question: str, tool_call: ToolCall | None = None) -> str:
    """The query a context is compressed for: the question, plus the tool call that fetched it.

    Example:
        >>> call = ToolCall(name="search", args={"q": "3M capex"}, id="call-1")
        >>> print(compression_query("What was capex in 2018?", call))
        What was capex in 2018?
        (tool call: search({"q": "3M capex"}))
    """
    if tool_call is None:
        return question
    args = json.dumps(tool_call.get("args", {}), ensure_ascii=False, sort_keys=True, default=str)
    call = f"{tool_call.get('name', 'tool')}({args})"
    return f"{question}\n(tool call: {call})" if question else f"tool call: {call}"


def decision_record(result: StageResult, *, quoting: str = "", **extra: Any) -> dict[str, Any]:
    """A decision as recorded in state: ``StageResult.to_dict`` without any text, plus extras.

    ``quoting`` is the item's raw text: any part of an attempt's error message (or of the
    reason) that quotes it is cut out, so an engine echoing its prompt leaks nothing here.

    Example:
        >>> result = StageResult("t", "passthrough", None, "within budget", "tool:search", 3, 3)
        >>> record = decision_record(result, tool_call_id="call-1")
        >>> record["decision"], record["tool_call_id"], "text" in record
        ('passthrough', 'call-1', False)
    """
    record = result.to_dict(include_text=False)
    originals = (quoting, result.text) if result.decision == "fallback" else (quoting,)
    record["reason"] = redact_quotes(record["reason"], *originals)
    for attempt in record["attempts"]:
        if attempt.get("estimate"):
            attempt["estimate"].pop("unsupported_text", None)
        if attempt.get("error"):
            attempt["error"] = redact_quotes(attempt["error"], *originals)
        attempt["reason"] = redact_quotes(attempt["reason"], *originals)
    record.update(extra)
    return record


def marker(result: StageResult, *, quoting: str = "", original: Any = None) -> dict[str, Any]:
    """What a processed message or document carries under ``MARKER_KEY``: its decision.

    The decision, rung, token counts, bits per token and the reason (with any quote of
    ``quoting``, the item's raw text, cut out); the full record is in the decisions. An
    ``accepted`` or ``pruned`` item keeps its original here under ``original`` (``original``
    when given, the content as it was, else ``quoting``): what stands in for it loses nothing
    for good.

    Example:
        >>> result = StageResult("t", "passthrough", None, "within budget", "tool:search", 3, 3)
        >>> marker(result)["decision"], marker(result)["reason"]
        ('passthrough', 'within budget')
        >>> accepted = StageResult("t", "accepted", 0, "ok", "tool:search", 9, 1)
        >>> marker(accepted, quoting="raw")["original"]
        'raw'
    """
    originals = (quoting, result.text) if result.decision == "fallback" else (quoting,)
    record = {
        "decision": result.decision,
        "rung": result.rung,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "bits_per_token": result.bits_per_token,
        "reason": redact_quotes(result.reason, *originals),
    }
    if result.decision in ("accepted", "pruned"):
        record["original"] = quoting if original is None else original
    return record

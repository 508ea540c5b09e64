"""Decisions a user can see: in the graph's streams, and a warning when state drops them.

Inside a running graph, every drop-in hands its fresh decisions to ``publish_decisions``:

- ``stream_mode="custom"`` receives one event ``{"ib_decisions": [record, ...]}`` through
  LangGraph's stream writer;
- ``stream_mode="messages"`` receives each compressed message (its decision under
  ``response_metadata["ib_middleware"]``) through ``langgraph.graph.message.push_message``,
  without writing it to state.

Outside a graph (a chat model called on its own, say) ``publish_decisions`` does nothing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.channels import BinaryOperatorAggregate, Topic
from langgraph.config import get_config, get_stream_writer
from langgraph.graph.message import push_message
from pydantic import BaseModel

from ib_middleware.langgraph._common import DECISIONS_KEY

__all__ = ["StateKeyCheck", "publish_decisions"]

_log = logging.getLogger("ib_middleware.langgraph")

_HOW = (
    "declare it with its reducer, `{key}: Decisions` (from ib_middleware.langgraph), as a "
    "field of the TypedDict, dataclass or pydantic state; until then the decisions are on "
    "each compressed message's response_metadata['ib_middleware'] and in stream_mode='custom'"
)


def _graph_config() -> RunnableConfig | None:
    """The config of the graph task this code runs in, or None outside a graph."""
    try:
        config = get_config()
    except RuntimeError:  # not inside a runnable at all
        return None
    metadata = config.get("metadata") or {}
    return config if "langgraph_checkpoint_ns" in metadata else None


def publish_decisions(
    decisions: Sequence[dict[str, Any]], messages: Sequence[BaseMessage] = ()
) -> None:
    """Show fresh decisions in the running graph's custom and messages streams.

    For your own nodes too: call it with the records (and the compressed messages) of a
    compression you ran yourself. Outside a graph, or in a graph that is not streaming, it
    costs a lookup and does nothing.

    Args:
        decisions: The decision records just made (nothing is sent when empty).
        messages: The compressed messages they belong to, for ``stream_mode="messages"``.
    """
    if not decisions:
        return
    config = _graph_config()
    if config is None:
        return
    get_stream_writer()({DECISIONS_KEY: list(decisions)})
    if config.get("callbacks") is None:  # no handler, so no messages stream to feed
        return
    for message in messages:
        if message.id is not None:
            push_message(message, state_key=None)


def _has_field(state: Any, key: str) -> bool | None:
    if isinstance(state, Mapping):
        return key in state
    if isinstance(state, BaseModel):
        return key in type(state).model_fields
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        return key in {item.name for item in dataclasses.fields(state)}
    return None


class StateKeyCheck:
    """Warns once (logging) when a graph's state cannot keep the decisions under ``key``.

    Example:
        >>> check = StateKeyCheck("ib_decisions")
        >>> check.state({"messages": [], "ib_decisions": []})
        True
        >>> check.state({"messages": []})  # logs one warning
        False
    """

    def __init__(self, key: str | None) -> None:
        """Check for ``key`` (None: decisions are not recorded, nothing to check)."""
        self.key = key
        self._warned = False

    def _warn(self, problem: str) -> None:
        if not self._warned:
            self._warned = True
            _log.warning("%s; %s", problem, _HOW.format(key=self.key))

    def state(self, state: Any) -> bool:
        """Whether a node's input ``state`` has the key (a reducer-declared list always does)."""
        if self.key is None:
            return False
        present = _has_field(state, self.key)
        if present is False:
            self._warn(f"the graph's state has no {self.key!r} key, so decisions are dropped")
        return present is not False

    def channels(self, channels: Mapping[str, Any]) -> bool:
        """Whether a graph with these channels keeps every decision (the key appends)."""
        if self.key is None:
            return False
        channel = channels.get(self.key)
        if channel is None:
            self._warn(f"the graph's state has no {self.key!r} key, so decisions are dropped")
            return False
        if not isinstance(channel, BinaryOperatorAggregate | Topic):
            self._warn(f"the state's {self.key!r} key has no reducer: each write replaces the last")
        return True

"""Record the runs of a LangChain / LangGraph invocation, the way a tracer sees them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage

__all__ = ["RecordedRun", "RunRecorder"]


@dataclass
class RecordedRun:
    """One run: a chain (graph, node, the compression stage) or a model call.

    Attributes:
        run_id: The run's id.
        parent_run_id: Its parent's id, if any.
        kind: ``chain`` or ``chat_model``.
        name: The run name.
        tags: Its tags (``nostream`` and ``ib_middleware:compressor`` on compressor runs).
        node: The LangGraph node it ran in, if any.
        start_s: Start time (seconds since the epoch).
        end_s: End time, once finished.
        error: ``ErrorType: message`` when it failed.
        decisions: The compression stage's decisions, for its own runs (no text).
    """

    run_id: str
    parent_run_id: str | None
    kind: str
    name: str
    tags: list[str]
    node: str | None
    start_s: float
    end_s: float | None = None
    error: str | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration_s(self) -> float | None:
        """Seconds the run took, once finished."""
        return None if self.end_s is None else self.end_s - self.start_s


class RunRecorder(BaseCallbackHandler):
    """A callback handler that keeps every run's name, tags, parent and timing, no content.

    Pass it in ``config["callbacks"]``; ``runs`` lists what a tracer (LangSmith, Phoenix,
    OpenTelemetry) would receive, and ``write`` saves it as JSON Lines.

    Example:
        >>> from langchain_core.runnables import RunnableLambda
        >>> recorder = RunRecorder()
        >>> RunnableLambda(lambda x: x + 1, name="add").invoke(1, {"callbacks": [recorder]})
        2
        >>> [(run.kind, run.name) for run in recorder.runs]
        [('chain', 'add')]
    """

    def __init__(self) -> None:
        """Start with no runs."""
        super().__init__()
        self._runs: dict[UUID, RecordedRun] = {}
        self._lock = threading.Lock()

    @property
    def runs(self) -> list[RecordedRun]:
        """The runs in the order they started."""
        with self._lock:
            return list(self._runs.values())

    def tagged(self, tag: str) -> list[RecordedRun]:
        """The runs carrying ``tag``."""
        return [run for run in self.runs if tag in run.tags]

    def _start(
        self,
        kind: str,
        name: str,
        run_id: UUID,
        *,
        parent_run_id: UUID | None,
        tags: Sequence[str] | None,
        metadata: dict[str, Any] | None,
    ) -> None:
        run = RecordedRun(
            run_id=str(run_id),
            parent_run_id=str(parent_run_id) if parent_run_id else None,
            kind=kind,
            name=name,
            tags=list(tags or []),
            node=(metadata or {}).get("langgraph_node"),
            start_s=time.time(),
        )
        with self._lock:
            self._runs[run_id] = run

    def _end(self, run_id: UUID, error: BaseException | None = None) -> RecordedRun | None:
        with self._lock:
            run = self._runs.get(run_id)
        if run is not None:
            run.end_s = time.time()
            if error is not None:
                run.error = f"{type(error).__name__}: {error}"
        return run

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a chain run."""
        name = kwargs.get("name") or (serialized or {}).get("name") or "chain"
        self._start(
            "chain", str(name), run_id, parent_run_id=parent_run_id, tags=tags, metadata=metadata
        )

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a chat-model run."""
        name = kwargs.get("name") or (serialized or {}).get("name") or "chat_model"
        self._start(
            "chat_model",
            str(name),
            run_id,
            parent_run_id=parent_run_id,
            tags=tags,
            metadata=metadata,
        )

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Close a chain run; keep the stage's decisions."""
        run = self._end(run_id)
        if run is not None and "ib_middleware:compressor" in run.tags and isinstance(outputs, list):
            run.decisions = [item for item in outputs if isinstance(item, dict)]

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Close a model run."""
        self._end(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Close a failed chain run."""
        self._end(run_id, error)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Close a failed model run."""
        self._end(run_id, error)

    def write(self, path: Path) -> None:
        """Write one JSON object per run to ``path``."""
        with path.open("w", encoding="utf-8") as handle:
            for run in self.runs:
                record = {**asdict(run), "duration_s": run.duration_s}
                handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")

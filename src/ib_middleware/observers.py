"""Hooks that watch the stage without being able to break it.

An observer (telemetry is the main one) is told when a stage invocation starts, and when it
finishes with its results or fails. Observers never raise into the stage: an observer error is
logged and ignored, and the stage's own errors always propagate unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ib_middleware.errors import is_control_flow

if TYPE_CHECKING:
    from ib_middleware.results import ContextItem, StageResult

__all__ = ["RunObservation", "StageObserver"]

_log = logging.getLogger(__name__)


@runtime_checkable
class StageObserver(Protocol):
    """Watches stage invocations.

    ``run_started`` runs in the caller's context before any compression (so a span it makes
    current becomes the parent of the compressors' own spans); its return value is handed back
    to ``run_finished`` or ``run_failed``, which run in the same context.
    """

    def run_started(self, query: str, items: Sequence[ContextItem]) -> Any:
        """A stage invocation begins."""
        ...

    def run_finished(self, handle: Any, results: Sequence[StageResult]) -> None:
        """It ended with one result per item."""
        ...

    def run_failed(self, handle: Any, error: BaseException) -> None:
        """It raised ``error`` (which the stage re-raises)."""
        ...


class RunObservation:
    """One invocation as seen by every observer; swallows (and logs) observer errors."""

    def __init__(
        self, observers: Sequence[StageObserver], query: str, items: Sequence[ContextItem]
    ) -> None:
        """Tell every observer the invocation started."""
        self._handles: list[tuple[StageObserver, Any]] = []
        for observer in observers:
            try:
                self._handles.append((observer, observer.run_started(query, items)))
            except Exception as error:  # an observer must never break the stage
                if is_control_flow(error):
                    raise
                _log.warning("stage observer %r failed to start", observer, exc_info=True)

    def finished(self, results: Sequence[StageResult]) -> None:
        """Tell every observer the invocation finished (in reverse order of starting)."""
        for observer, handle in reversed(self._handles):
            try:
                observer.run_finished(handle, results)
            except Exception as error:
                if is_control_flow(error):
                    raise
                _log.warning("stage observer %r failed to finish", observer, exc_info=True)

    def failed(self, error: BaseException) -> None:
        """Tell every observer the invocation failed (in reverse order of starting)."""
        for observer, handle in reversed(self._handles):
            try:
                observer.run_failed(handle, error)
            except Exception as problem:
                if is_control_flow(problem):
                    raise
                _log.warning(
                    "stage observer %r failed to record a failure", observer, exc_info=True
                )

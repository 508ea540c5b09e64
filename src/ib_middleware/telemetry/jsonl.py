"""JSON Lines exporters for the OpenTelemetry SDK: one JSON object per span (or metrics export).

This module needs the OpenTelemetry SDK (``pip install 'ib-middleware[otel]'``); the rest of
``ib_middleware.telemetry`` needs only the API. Each span becomes one line::

    {"type": "span", "name": "ib_middleware.stage", "kind": "INTERNAL",
     "trace_id": "<32 hex>", "span_id": "<16 hex>", "parent_span_id": "<16 hex>" | null,
     "start_time": <ns since epoch>, "end_time": <ns>, "duration_s": <float>,
     "status": {"code": "UNSET" | "OK" | "ERROR", "description": <str> | null},
     "attributes": {...}, "events": [{"name", "time", "attributes"}],
     "resource": {...}, "scope": {"name", "version"}}

Files are opened for appending, so one file can collect many runs.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = ["JsonlMetricExporter", "JsonlSpanExporter", "span_record"]


def _value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    if isinstance(value, tuple | list):
        return [_value(item) for item in value]
    return value


def _attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {str(key): _value(value) for key, value in (attributes or {}).items()}


def _hex(number: int, width: int) -> str:
    return format(number, f"0{width}x")


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """The JSON-ready record of one finished span (the line ``JsonlSpanExporter`` writes).

    Example:
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> span = TracerProvider().get_tracer("t").start_span("work", attributes={"n": 1})
        >>> span.end()
        >>> record = span_record(span)
        >>> record["name"], record["attributes"], record["parent_span_id"], len(record["trace_id"])
        ('work', {'n': 1}, None, 32)
    """
    context = span.get_span_context()
    parent = span.parent
    start = span.start_time or 0
    end = span.end_time or start
    return {
        "type": "span",
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": _hex(context.trace_id, 32) if context else None,
        "span_id": _hex(context.span_id, 16) if context else None,
        "parent_span_id": _hex(parent.span_id, 16) if parent else None,
        "start_time": start,
        "end_time": end,
        "duration_s": (end - start) / 1e9,
        "status": {"code": span.status.status_code.name, "description": span.status.description},
        "attributes": _attributes(span.attributes),
        "events": [
            {"name": e.name, "time": e.timestamp, "attributes": _attributes(e.attributes)}
            for e in span.events
        ],
        "resource": _attributes(span.resource.attributes),
        "scope": {
            "name": span.instrumentation_scope.name if span.instrumentation_scope else None,
            "version": span.instrumentation_scope.version if span.instrumentation_scope else None,
        },
    }


class _LineWriter:
    """Appends lines to a file, opened on first use, safe across the processor's threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._closed = False

    def write(self, lines: Sequence[str]) -> bool:
        with self._lock:
            if self._closed:
                return False
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.writelines(line + "\n" for line in lines)
            self._file.flush()
            return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._file is not None:
                self._file.close()
                self._file = None


class JsonlSpanExporter(SpanExporter):
    """Writes each finished span as one JSON line (see the module docstring for the fields).

    Example:
        >>> import tempfile, pathlib
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "spans.jsonl"
        >>> provider = TracerProvider()
        >>> provider.add_span_processor(SimpleSpanProcessor(JsonlSpanExporter(path)))
        >>> provider.get_tracer("t").start_span("work").end()
        >>> provider.shutdown()
        >>> json.loads(path.read_text())["name"]
        'work'
    """

    def __init__(self, path: str | Path) -> None:
        """Append to ``path`` (created, with its folder, on the first export)."""
        self._writer = _LineWriter(path)

    @property
    def path(self) -> Path:
        """The file spans are appended to."""
        return self._writer.path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Append one line per span."""
        try:
            lines = [
                json.dumps(span_record(span), ensure_ascii=False, allow_nan=False, default=str)
                for span in spans
            ]
            written = self._writer.write(lines)
        except (OSError, ValueError, TypeError):
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS if written else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        """Close the file; later exports fail."""
        self._writer.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Lines are flushed as they are written."""
        del timeout_millis
        return True


class JsonlMetricExporter(MetricExporter):
    """Writes each metrics export (all instruments, all points) as one JSON line.

    Example:
        >>> import tempfile, pathlib
        >>> from opentelemetry.sdk.metrics import MeterProvider
        >>> from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "metrics.jsonl"
        >>> reader = PeriodicExportingMetricReader(JsonlMetricExporter(path), 60_000)
        >>> provider = MeterProvider(metric_readers=[reader])
        >>> provider.get_meter("m").create_counter("calls").add(2)
        >>> provider.shutdown()
        >>> line = json.loads(path.read_text().splitlines()[0])
        >>> line["resource_metrics"][0]["scope_metrics"][0]["metrics"][0]["name"]
        'calls'
    """

    def __init__(self, path: str | Path) -> None:
        """Append to ``path`` (created, with its folder, on the first export)."""
        super().__init__()
        self._writer = _LineWriter(path)

    @property
    def path(self) -> Path:
        """The file exports are appended to."""
        return self._writer.path

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        """Append one line holding the whole export."""
        del timeout_millis, kwargs
        try:
            written = self._writer.write([metrics_data.to_json(indent=None)])
        except (OSError, ValueError, TypeError):
            return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS if written else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Lines are flushed as they are written."""
        del timeout_millis
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Close the file; later exports fail."""
        del timeout_millis, kwargs
        self._writer.close()

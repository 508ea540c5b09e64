"""``configure_span_file``: SDK providers that write spans (and metrics) to JSON Lines files.

For command lines and scripts that want a trace file without a collector. It builds its own
``TracerProvider`` and ``MeterProvider`` and never touches the global ones. The OpenTelemetry SDK
is imported only here, when called, and a missing SDK is reported with the install command.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ib_middleware.errors import IBMiddlewareError
from ib_middleware.telemetry.observer import StageTelemetry

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["SpanFile", "configure_span_file", "metrics_path_for", "span_file_or_none"]

_MISSING_SDK = (
    "writing spans to a file needs the OpenTelemetry SDK: "
    "pip install 'ib-middleware[otel]' (or uv add 'ib-middleware[otel]')"
)


def metrics_path_for(spans_path: str | Path) -> Path:
    """Where metrics go next to a span file: ``spans.jsonl`` -> ``spans.metrics.jsonl``.

    Example:
        >>> metrics_path_for("out/spans.jsonl").as_posix()
        'out/spans.metrics.jsonl'
    """
    path = Path(spans_path)
    return path.with_name(f"{path.stem}.metrics.jsonl")


class SpanFile:
    """The providers writing to a span file; shut it down (or use ``with``) to flush.

    Attributes:
        path: The span file.
        metrics_path: The metrics file.
        tracer_provider: Hand it to other instrumentation (OpenInference's LangChain
            instrumentor, say) so their spans land in the same file.
        meter_provider: The meter provider writing to ``metrics_path``.
    """

    def __init__(
        self,
        path: Path,
        metrics_path: Path,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
    ) -> None:
        """Wrap providers made by ``configure_span_file``."""
        self.path = path
        self.metrics_path = metrics_path
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self._closed = False

    def telemetry(self, **options: Any) -> StageTelemetry:
        """A ``StageTelemetry`` on these providers (``options`` as its keywords)."""
        return StageTelemetry(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **options
        )

    def shutdown(self) -> None:
        """Flush every pending span and the metrics, and close the files (once)."""
        if self._closed:
            return
        self._closed = True
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()

    def __enter__(self) -> SpanFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown()


def configure_span_file(
    path: str | Path,
    *,
    metrics_path: str | Path | None = None,
    service_name: str = "ib-middleware",
    resource_attributes: Mapping[str, str] | None = None,
) -> SpanFile:
    """Providers that append spans to ``path`` and metrics to ``metrics_path``, as JSON Lines.

    Spans go through a ``BatchSpanProcessor``; metrics are collected when the file is shut
    down (and every minute before that). ``OTEL_RESOURCE_ATTRIBUTES`` is honoured.

    Args:
        path: The span file (one JSON object per span; see ``ib_middleware.telemetry.jsonl``).
        metrics_path: The metrics file; ``<stem>.metrics.jsonl`` next to ``path`` by default.
        service_name: The resource's ``service.name``.
        resource_attributes: More resource attributes.

    Raises:
        IBMiddlewareError: When the OpenTelemetry SDK is not installed.

    Example:
        ::

            with configure_span_file("spans.jsonl") as sink:
                stage = sink.telemetry().instrument(build_stage())
                stage.run([context], query)
            # then: ib-middleware report spans.jsonl -o report.html
    """
    # The SDK is an optional extra: import it only when a file is asked for.
    try:
        from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader  # noqa: PLC0415
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

        from ib_middleware.telemetry.jsonl import (  # noqa: PLC0415
            JsonlMetricExporter,
            JsonlSpanExporter,
        )
    except ImportError as error:
        raise IBMiddlewareError(_MISSING_SDK) from error
    spans = Path(path)
    metrics_file = Path(metrics_path) if metrics_path is not None else metrics_path_for(spans)
    resource = Resource.create({"service.name": service_name, **(resource_attributes or {})})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(JsonlSpanExporter(spans)))
    reader = PeriodicExportingMetricReader(
        JsonlMetricExporter(metrics_file), export_interval_millis=60_000
    )
    meter_provider = MeterProvider(metric_readers=[reader], resource=resource)
    return SpanFile(spans, metrics_file, tracer_provider, meter_provider)


@contextmanager
def span_file_or_none(path: str | Path | None) -> Iterator[SpanFile | None]:
    """``configure_span_file(path)`` as a context manager, or nothing when ``path`` is None.

    Example:
        >>> with span_file_or_none(None) as sink:
        ...     sink is None
        True
    """
    if path is None:
        yield None
        return
    with configure_span_file(path) as sink:
        yield sink

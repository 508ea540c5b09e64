"""In-memory providers for testing telemetry: spans and metrics you can assert on.

Needs the OpenTelemetry SDK (the ``otel`` extra). The providers are private to each
``InMemoryTelemetry``; the global ones are never touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ib_middleware.telemetry.observer import StageTelemetry

__all__ = ["InMemoryTelemetry"]


@dataclass
class InMemoryTelemetry:
    """A tracer provider and a meter provider that keep everything in memory.

    Example:
        >>> from ib_middleware import CompressionStage, CXMIEstimator
        >>> from ib_middleware.testing import FakeScorer
        >>> memory = InMemoryTelemetry()
        >>> stage = CompressionStage(
        ...     [], estimator=CXMIEstimator(FakeScorer()), observers=[memory.telemetry()]
        ... )
        >>> _ = stage.run(["short"], "q")
        >>> [span.attributes["ib_middleware.route.decision"] for span in memory.spans()]
        ['passthrough']
        >>> memory.metric("ib_middleware.route.decisions").unit
        '{decision}'
    """

    exporter: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)
    reader: InMemoryMetricReader = field(default_factory=InMemoryMetricReader)
    tracer_provider: TracerProvider = field(init=False)
    meter_provider: MeterProvider = field(init=False)

    def __post_init__(self) -> None:
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def telemetry(self, **options: Any) -> StageTelemetry:
        """A ``StageTelemetry`` on these providers (``options`` as its keywords)."""
        return StageTelemetry(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **options
        )

    def spans(self) -> tuple[ReadableSpan, ...]:
        """Every finished span so far, in the order they ended."""
        return tuple(self.exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name``; raises if there are none or several."""
        found = [span for span in self.spans() if span.name == name]
        if len(found) != 1:
            msg = f"expected one span named {name!r}, found {len(found)}"
            raise LookupError(msg)
        return found[0]

    def metrics(self) -> dict[str, Metric]:
        """Every metric collected now, by name (cumulative since the start)."""
        return {metric.name: metric for metric in self._collect()}

    def metric(self, name: str) -> Metric:
        """The metric called ``name``, collected now; raises if it has no data."""
        found = self.metrics()
        if name not in found:
            msg = f"no data for metric {name!r}; have {sorted(found)}"
            raise LookupError(msg)
        return found[name]

    def _collect(self) -> Iterator[Metric]:
        data = self.reader.get_metrics_data()
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                yield from scope_metrics.metrics

    def clear(self) -> None:
        """Forget the spans recorded so far (metrics are cumulative and stay)."""
        self.exporter.clear()

    def shutdown(self) -> None:
        """Shut both providers down."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()

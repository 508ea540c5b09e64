"""``StageTelemetry``: the stage observer that turns each invocation into spans and metrics.

Span shape, per ``CompressionStage.run`` / ``arun``::

    ib_middleware.stage                      INTERNAL, CHAIN, current while the stage runs
    └── ib_middleware.route                  one per item: decision, rung, reason, tokens, MI
        ├── chat {model}                     one per attempt: the compressor call (gen_ai.*)
        └── score_compression {scorer}       one per estimate: the ``ib_middleware.mi.*`` values

With a single item the stage span carries the route attributes itself and the attempt spans
are its children: every span with ``ib_middleware.route.decision`` is exactly one decision.

The stage span is made current in the caller's context before anything is compressed, so spans
of the compressors' own instrumentation (LangChain, HTTP clients) nest under it. Item and
attempt spans are created when the invocation ends, with the start and end times the stage
recorded. Telemetry never raises into the stage: every failure here is logged and swallowed.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from contextvars import Token
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from ib_estimators import ModelSpec
from opentelemetry import context, metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from ib_middleware.errors import is_control_flow
from ib_middleware.results import ContextItem, RungAttempt, StageResult
from ib_middleware.telemetry import attributes as names
from ib_middleware.telemetry.helpers import (
    Attributes,
    attempt_attributes,
    capture_content_enabled,
    compression_attributes,
    compression_flops,
    error_type,
    estimate_attributes,
    route_attributes,
    stage_attributes,
    totals_attributes,
)
from ib_middleware.telemetry.instruments import StageMetrics

if TYPE_CHECKING:
    from ib_middleware.compressors import Compression
    from ib_middleware.stage import CompressionStage

__all__ = ["StageTelemetry"]

_log = logging.getLogger(__name__)
try:
    _VERSION = version("ib-middleware")
except PackageNotFoundError:  # running from a source tree that was never installed
    _VERSION = "0.0.0"
_NOT_COPIED = frozenset({names.GEN_AI_OPERATION_NAME, names.INPUT_VALUE})


@dataclass
class _Run:
    """One invocation in flight: the stage span, the context token, the items if captured."""

    span: trace.Span
    token: Token[context.Context]
    started_ns: int
    items: Sequence[ContextItem] | None


def _start_time(span: trace.Span) -> int | None:
    value = getattr(span, "start_time", None)  # SDK spans have one; the API does not promise it
    return value if isinstance(value, int) else None


def _langchain_span() -> trace.Span | None:
    """The span of the current LangChain run, when OpenInference instruments LangChain.

    OpenInference does not make its LangChain spans current in the OpenTelemetry context, so
    we ask it, and only when the application has already imported and turned it on.
    """
    module = sys.modules.get("openinference.instrumentation.langchain")
    if module is None:
        return None
    try:
        if not getattr(module.LangChainInstrumentor(), "is_instrumented_by_opentelemetry", False):
            return None
        span = module.get_current_span()
    except Exception as error:  # a foreign library must never break the stage
        if is_control_flow(error):
            raise
        return None
    return span if isinstance(span, trace.Span) and span.get_span_context().is_valid else None


class StageTelemetry:
    """Spans and metrics for every stage invocation, following the GenAI conventions v1.41.0.

    Pass it as an observer; the stage calls it, and it can never break the stage.

    Example:
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        >>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        ...     InMemorySpanExporter)
        >>> from ib_middleware import CompressionStage, CXMIEstimator, ExtractiveCompressor, Rung
        >>> from ib_middleware.testing import FakeScorer
        >>> exporter = InMemorySpanExporter()
        >>> provider = TracerProvider()
        >>> provider.add_span_processor(SimpleSpanProcessor(exporter))
        >>> stage = CompressionStage(
        ...     [Rung(ExtractiveCompressor(budget_tokens=12), threshold_bits_per_token=0.5)],
        ...     estimator=CXMIEstimator(FakeScorer(lambda p, z: -1.0 if "Doc" in p else -9.0)),
        ...     token_budget=10,
        ...     observers=[StageTelemetry(tracer_provider=provider)],
        ... )
        >>> _ = stage.run(["Capex was $1,577 million. " + "Filler. " * 40], "What was capex?")
        >>> for span in exporter.get_finished_spans():
        ...     print(span.name, "->", span.attributes.get("ib_middleware.route.decision"))
        extract_context extractive-12 -> None
        score_compression fake-scorer -> None
        ib_middleware.stage -> accepted
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        capture_content: bool | None = None,
        provider_name: str = names.PROVIDER_DEFAULT,
        model_specs: Mapping[str, ModelSpec] | None = None,
    ) -> None:
        """Configure the telemetry.

        Args:
            tracer_provider: Where spans go; the global provider when None.
            meter_provider: Where metrics go; the global provider when None.
            capture_content: Record query, context and compression text on spans. When None,
                ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` turns it on.
            provider_name: ``gen_ai.provider.name`` of the compressor calls (``openai``,
                ``vllm``, ...); ``ib_middleware`` when they are mixed or local.
            model_specs: Architecture figures per compressor model id, for the
                ``ib_middleware.flops`` attribute (an engine's ``model_spec()`` gives them).
        """
        self._tracer = trace.get_tracer(names.INSTRUMENTATION_NAME, _VERSION, tracer_provider)
        meter = metrics.get_meter(names.INSTRUMENTATION_NAME, _VERSION, meter_provider)
        if capture_content is None:
            capture_content = capture_content_enabled(os.environ.get(names.CAPTURE_CONTENT_ENV))
        self.capture_content = capture_content
        self.provider_name = provider_name
        self._specs = dict(model_specs or {})
        self._metrics = StageMetrics(meter, provider_name=provider_name)

    # Turning it on -------------------------------------------------------------------------

    def instrument(self, stage: CompressionStage) -> CompressionStage:
        """Add this telemetry to an existing stage's observers (once); returns the stage.

        Example:
            >>> from ib_middleware import CompressionStage, CXMIEstimator
            >>> from ib_middleware.testing import FakeScorer
            >>> stage = CompressionStage([], estimator=CXMIEstimator(FakeScorer()))
            >>> telemetry = StageTelemetry()
            >>> telemetry.instrument(telemetry.instrument(stage)).observers == (telemetry,)
            True
        """
        if self not in stage.observers:
            stage.observers = (*stage.observers, self)
        return stage

    def uninstrument(self, stage: CompressionStage) -> CompressionStage:
        """Remove this telemetry from a stage's observers; returns the stage."""
        stage.observers = tuple(o for o in stage.observers if o is not self)
        return stage

    # The observer protocol ------------------------------------------------------------------

    def run_started(self, query: str, items: Sequence[ContextItem]) -> _Run | None:
        """Start the stage span and make it current in the caller's context."""
        try:
            parent = context.get_current()
            foreign = _langchain_span()
            if foreign is not None:
                current = trace.get_current_span(parent)
                mine, theirs = _start_time(current), _start_time(foreign)
                # Prefer whichever open span started last: it is the innermost caller.
                if not current.get_span_context().is_valid or (
                    mine is not None and theirs is not None and theirs >= mine
                ):
                    parent = trace.set_span_in_context(foreign, parent)
            span = self._tracer.start_span(
                names.SPAN_STAGE,
                context=parent,
                kind=SpanKind.INTERNAL,
                attributes=stage_attributes(query, items, capture_content=self.capture_content),
            )
            token = context.attach(trace.set_span_in_context(span, parent))
            captured = tuple(items) if self.capture_content else None
            return _Run(span, token, time.time_ns(), captured)
        except Exception as error:  # telemetry never raises into the agent
            if is_control_flow(error):
                raise
            _log.warning("telemetry could not start the stage span", exc_info=True)
            return None

    def run_finished(self, handle: _Run | None, results: Sequence[StageResult]) -> None:
        """Record the items' spans and metrics, then end the stage span."""
        if handle is None:
            return
        context.detach(handle.token)  # logs, never raises, on a context mismatch
        try:
            self._record(handle, results)
        except Exception as error:
            if is_control_flow(error):
                raise
            _log.warning("telemetry could not record the stage's results", exc_info=True)
        finally:
            handle.span.end()

    def run_failed(self, handle: _Run | None, error: BaseException) -> None:
        """Mark the stage span as failed (``error.type``, status ERROR) and end it."""
        if handle is None:
            return
        context.detach(handle.token)
        try:
            span = handle.span
            kind = error_type(error)
            span.set_attribute(names.ERROR_TYPE, kind)
            if self.capture_content:
                span.set_status(Status(StatusCode.ERROR, f"{kind}: {error}"))
                span.record_exception(error)
            else:
                span.set_status(Status(StatusCode.ERROR, kind))
                span.add_event(names.EXCEPTION_EVENT, {names.EXCEPTION_TYPE: kind})
        except Exception as problem:
            if is_control_flow(problem):
                raise
            _log.warning("telemetry could not record the stage's failure", exc_info=True)
        finally:
            handle.span.end()

    # Recording ------------------------------------------------------------------------------

    def _flops(self, compression: Compression | None) -> float | None:
        spec = self._specs.get(compression.model) if compression is not None else None
        return compression_flops(compression, spec) if spec and compression else None

    def _record(self, handle: _Run, results: Sequence[StageResult]) -> None:
        single = len(results) == 1
        recording = handle.span.is_recording()
        stage = trace.set_span_in_context(handle.span)
        for index, result in enumerate(results):
            self._metrics.record(result)
            if not recording:
                continue
            spent = [self._flops(attempt.compression) for attempt in result.attempts]
            known = [value for value in spent if value is not None]
            original = handle.items[index].text if handle.items is not None else None
            attributes = route_attributes(
                result,
                flops=sum(known) if known else None,
                original=original,
                capture_content=self.capture_content,
            )
            if single:  # the stage span is the route span: one span per decision, always
                handle.span.set_attributes(
                    {k: v for k, v in attributes.items() if k not in _NOT_COPIED}
                )
                for attempt in result.attempts:
                    self._record_attempt(attempt, stage, handle.started_ns)
                continue
            start = result.started_unix_ns or handle.started_ns
            route = self._tracer.start_span(
                names.SPAN_ROUTE, stage, SpanKind.INTERNAL, attributes, start_time=start
            )
            inner = trace.set_span_in_context(route)
            for attempt in result.attempts:
                self._record_attempt(attempt, inner, start)
            route.end(end_time=start + int(result.wall_s * 1e9))
        if recording and not single:
            handle.span.set_attributes(totals_attributes(results))

    def _fail(self, span: trace.Span, attempt: RungAttempt) -> None:
        kind = error_type(attempt.error or "")
        span.set_attribute(names.ERROR_TYPE, kind)
        described = attempt.error if self.capture_content else attempt.reason
        span.set_status(Status(StatusCode.ERROR, described))

    def _record_attempt(self, attempt: RungAttempt, parent: context.Context, origin: int) -> None:
        start = attempt.started_unix_ns or origin
        end = start + int(attempt.wall_s * 1e9)
        compression = attempt.compression
        shared = attempt_attributes(attempt)
        if compression is None and attempt.error is None:
            return
        attributes: Attributes
        if compression is not None:
            attributes = compression_attributes(
                compression,
                provider=self.provider_name,
                flops=self._flops(compression),
                capture_content=self.capture_content,
            )
            abstractive = compression.method == "abstractive"
            operation = names.OPERATION_CHAT if abstractive else names.OPERATION_EXTRACT
            kind = SpanKind.CLIENT if abstractive else SpanKind.INTERNAL  # extraction is local
            name = f"{operation} {compression.model}"
            compressed_at = min(end, start + int(compression.wall_s * 1e9))
        else:  # the compressor itself failed: its model is known only by the rung's name
            attributes = {
                names.GEN_AI_OPERATION_NAME: names.OPERATION_CHAT,
                names.GEN_AI_PROVIDER_NAME: self.provider_name,
                names.GEN_AI_REQUEST_MODEL: attempt.name,
                names.OPENINFERENCE_SPAN_KIND: names.SPAN_KIND_LLM,
            }
            name = f"{names.OPERATION_CHAT} {attempt.name}"
            kind = SpanKind.CLIENT
            compressed_at = end
        attributes.update(shared)
        span = self._tracer.start_span(name, parent, kind, attributes, start_time=start)
        if compression is None:
            self._fail(span, attempt)
        span.end(end_time=compressed_at)
        if attempt.estimate is not None:
            scored_at = max(compressed_at, end - int(attempt.estimate_s * 1e9))
            self._record_score(attempt, parent, shared, scored_at, end)
        elif compression is not None and attempt.error is not None:  # the estimator failed
            self._record_score(attempt, parent, shared, compressed_at, end)

    def _record_score(
        self,
        attempt: RungAttempt,
        parent: context.Context,
        shared: Attributes,
        start: int,
        end: int,
    ) -> None:
        estimate = attempt.estimate
        attributes: Attributes = {
            names.GEN_AI_OPERATION_NAME: names.OPERATION_SCORE,
            names.OPENINFERENCE_SPAN_KIND: names.SPAN_KIND_EVALUATOR,
            **shared,
        }
        name = names.OPERATION_SCORE
        if estimate is not None:
            name = f"{names.OPERATION_SCORE} {estimate.scorer_model}"
            attributes[names.GEN_AI_REQUEST_MODEL] = estimate.scorer_model
            attributes.update(estimate_attributes(estimate))
        span = self._tracer.start_span(
            name, parent, SpanKind.INTERNAL, attributes, start_time=start
        )
        if estimate is None:
            self._fail(span, attempt)
        span.end(end_time=end)

"""The stage's metric instruments, created once per meter, and how a result is recorded.

``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration`` follow the GenAI
conventions v1.41.0 (their bucket boundaries included) for compressor model calls; our three
instruments count decisions and describe compressions. Attributes are low-cardinality: a
decision, a rung index, an estimator, a model id, a token type, an error type; never text.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.metrics import Meter

from ib_middleware.results import RungAttempt, StageResult
from ib_middleware.telemetry import attributes as names
from ib_middleware.telemetry.helpers import decision_metric_attributes, error_type

__all__ = ["StageMetrics"]


class StageMetrics:
    """The five instruments of the stage on one meter.

    Example:
        >>> from opentelemetry.sdk.metrics import MeterProvider
        >>> from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        >>> reader = InMemoryMetricReader()
        >>> meter = MeterProvider(metric_readers=[reader]).get_meter("demo")
        >>> StageMetrics(meter).record(StageResult("t", "passthrough", None, "r", "s", 3, 3))
        >>> scope = reader.get_metrics_data().resource_metrics[0].scope_metrics[0]
        >>> sorted(metric.name for metric in scope.metrics)
        ['ib_middleware.compression.ratio', 'ib_middleware.route.decisions']
    """

    def __init__(self, meter: Meter, *, provider_name: str = names.PROVIDER_DEFAULT) -> None:
        """Create the instruments on ``meter``; ``provider_name`` labels compressor calls."""
        self._provider = provider_name
        self._bits_per_token = meter.create_histogram(
            names.METRIC_BITS_PER_TOKEN,
            unit=names.UNIT_BITS_PER_TOKEN,
            description="Estimated bits of information per token of each scored compression.",
            explicit_bucket_boundaries_advisory=list(names.BITS_PER_TOKEN_BUCKETS),
        )
        self._ratio = meter.create_histogram(
            names.METRIC_RATIO,
            unit=names.UNIT_RATIO,
            description="Input tokens over forwarded tokens, per context item.",
            explicit_bucket_boundaries_advisory=list(names.RATIO_BUCKETS),
        )
        self._decisions = meter.create_counter(
            names.METRIC_DECISIONS,
            unit=names.UNIT_DECISION,
            description="Routing decisions, by decision and rung.",
        )
        self._token_usage = meter.create_histogram(
            names.METRIC_TOKEN_USAGE,
            unit=names.UNIT_TOKEN,
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(names.TOKEN_USAGE_BUCKETS),
        )
        self._duration = meter.create_histogram(
            names.METRIC_OPERATION_DURATION,
            unit=names.UNIT_SECONDS,
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(names.DURATION_BUCKETS),
        )

    def record(self, result: StageResult) -> None:
        """Count the decision, record its ratio, its estimates and its compressor calls."""
        labels = decision_metric_attributes(result)
        self._decisions.add(1, labels)
        self._ratio.record(result.compression_ratio, labels)
        for attempt in result.attempts:
            if attempt.estimate is not None:
                self._bits_per_token.record(
                    attempt.estimate.bits_per_token,
                    {
                        names.ROUTE_RUNG: attempt.rung,
                        names.MI_ESTIMATOR: attempt.estimate.estimator,
                        names.ATTEMPT_ACCEPTED: attempt.accepted,
                    },
                )
            self._record_call(attempt)

    def _record_call(self, attempt: RungAttempt) -> None:
        compression = attempt.compression
        if compression is not None and compression.method != "abstractive":
            return  # no model call, nothing for the gen_ai.client metrics
        model = compression.model if compression is not None else attempt.name
        labels: dict[str, Any] = {
            names.GEN_AI_OPERATION_NAME: names.OPERATION_CHAT,
            names.GEN_AI_PROVIDER_NAME: self._provider,
            names.GEN_AI_REQUEST_MODEL: model,
        }
        if compression is None:
            if attempt.error is None:
                return
            labels[names.ERROR_TYPE] = error_type(attempt.error)
            self._duration.record(attempt.wall_s, labels)
            return
        self._duration.record(compression.wall_s, labels)
        for kind, count in (
            (names.TOKEN_TYPE_INPUT, compression.prompt_tokens),
            (names.TOKEN_TYPE_OUTPUT, compression.completion_tokens),
        ):
            self._token_usage.record(count, {**labels, names.GEN_AI_TOKEN_TYPE: kind})

"""Every telemetry name in one place: span names, attribute keys, metric names, units, buckets.

Names follow the OpenTelemetry GenAI semantic conventions v1.41.0 (``gen_ai.*``, ``error.type``),
OpenInference (``openinference.span.kind``, ``input.value``, ``output.value``, read by Phoenix)
and our own ``ib_middleware.*`` namespace. docs/telemetry.md lists each with its type, unit and
meaning; nothing else in the package spells a telemetry name out.
"""

# ruff: noqa: S105  # "token" in these names is about LM tokens, not secrets

from __future__ import annotations

from typing import Final

__all__ = [
    "ATTEMPT_ACCEPTED",
    "ATTEMPT_REASON",
    "BITS_PER_TOKEN_BUCKETS",
    "CAPTURE_CONTENT_ENV",
    "COMPRESSION_CALLS",
    "COMPRESSION_CHUNKS",
    "COMPRESSION_INPUT_TOKENS",
    "COMPRESSION_METHOD",
    "COMPRESSION_OUTPUT_TOKENS",
    "COMPRESSION_RATIO",
    "CONTENT_CONTEXT",
    "CONTEXT_SOURCE",
    "DURATION_BUCKETS",
    "ERROR_TYPE",
    "EXCEPTION_EVENT",
    "EXCEPTION_TYPE",
    "FLOPS",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_OUTPUT_MESSAGES",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_RESPONSE_MODEL",
    "GEN_AI_TOKEN_TYPE",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "INPUT_VALUE",
    "INSTRUMENTATION_NAME",
    "METRIC_BITS_PER_TOKEN",
    "METRIC_DECISIONS",
    "METRIC_OPERATION_DURATION",
    "METRIC_RATIO",
    "METRIC_TOKEN_USAGE",
    "MI_BITS",
    "MI_BITS_PER_TOKEN",
    "MI_ESTIMATOR",
    "MI_NATS",
    "MI_N_TOKENS",
    "MI_QUERY_FRACTION",
    "MI_REFERENCE_COUNT",
    "MI_RELEVANT_FRACTION",
    "MI_SATURATED",
    "MI_UNSUPPORTED_FRACTION",
    "OPENINFERENCE_SPAN_KIND",
    "OPERATION_CHAT",
    "OPERATION_EXTRACT",
    "OPERATION_ROUTE",
    "OPERATION_SCORE",
    "OPERATION_STAGE",
    "OUTPUT_VALUE",
    "PROVIDER_DEFAULT",
    "RATIO_BUCKETS",
    "ROUTE_DECISION",
    "ROUTE_REASON",
    "ROUTE_RUNG",
    "RUNG_NAME",
    "SPAN_KIND_CHAIN",
    "SPAN_KIND_EVALUATOR",
    "SPAN_KIND_LLM",
    "SPAN_ROUTE",
    "SPAN_STAGE",
    "STAGE_ITEMS",
    "SUPPORT_UNSUPPORTED_COUNT",
    "SUPPORT_UNSUPPORTED_SPANS",
    "THRESHOLD_BITS_PER_TOKEN",
    "TOKEN_TYPE_INPUT",
    "TOKEN_TYPE_OUTPUT",
    "TOKEN_USAGE_BUCKETS",
    "UNIT_BITS_PER_TOKEN",
    "UNIT_DECISION",
    "UNIT_RATIO",
    "UNIT_SECONDS",
    "UNIT_TOKEN",
]

INSTRUMENTATION_NAME: Final = "ib_middleware"
"""Name of our tracer and meter (the instrumentation scope)."""

CAPTURE_CONTENT_ENV: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""Set to ``true`` to record message content (query, context, compressions) on spans."""

# Span names and gen_ai.operation.name values. The stage, route and score operations have no
# predefined value in the conventions, which allow custom ones; ``chat`` is the predefined one.
SPAN_STAGE: Final = "ib_middleware.stage"
SPAN_ROUTE: Final = "ib_middleware.route"
OPERATION_STAGE: Final = "compress_context"
OPERATION_ROUTE: Final = "route_context"
OPERATION_CHAT: Final = "chat"
OPERATION_EXTRACT: Final = "extract_context"
OPERATION_SCORE: Final = "score_compression"
PROVIDER_DEFAULT: Final = "ib_middleware"

# OpenTelemetry GenAI semantic conventions v1.41.0.
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"
ERROR_TYPE: Final = "error.type"
EXCEPTION_EVENT: Final = "exception"
EXCEPTION_TYPE: Final = "exception.type"

# OpenInference (Arize Phoenix reads these to type and display spans).
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"
SPAN_KIND_CHAIN: Final = "CHAIN"
SPAN_KIND_LLM: Final = "LLM"
SPAN_KIND_EVALUATOR: Final = "EVALUATOR"
INPUT_VALUE: Final = "input.value"
OUTPUT_VALUE: Final = "output.value"

# Our own attributes.
STAGE_ITEMS: Final = "ib_middleware.stage.items"
CONTEXT_SOURCE: Final = "ib_middleware.context.source"
CONTENT_CONTEXT: Final = "ib_middleware.content.context"
ROUTE_DECISION: Final = "ib_middleware.route.decision"
ROUTE_RUNG: Final = "ib_middleware.route.rung"
ROUTE_REASON: Final = "ib_middleware.route.reason"
RUNG_NAME: Final = "ib_middleware.rung.name"
ATTEMPT_ACCEPTED: Final = "ib_middleware.attempt.accepted"
ATTEMPT_REASON: Final = "ib_middleware.attempt.reason"
COMPRESSION_INPUT_TOKENS: Final = "ib_middleware.compression.input_tokens"
COMPRESSION_OUTPUT_TOKENS: Final = "ib_middleware.compression.output_tokens"
COMPRESSION_RATIO: Final = "ib_middleware.compression.ratio"
COMPRESSION_METHOD: Final = "ib_middleware.compression.method"
COMPRESSION_CALLS: Final = "ib_middleware.compression.calls"
COMPRESSION_CHUNKS: Final = "ib_middleware.compression.chunks"
MI_ESTIMATOR: Final = "ib_middleware.mi.estimator"
MI_NATS: Final = "ib_middleware.mi.nats"
MI_BITS: Final = "ib_middleware.mi.bits"
MI_BITS_PER_TOKEN: Final = "ib_middleware.mi.bits_per_token"
MI_N_TOKENS: Final = "ib_middleware.mi.n_tokens"
MI_SATURATED: Final = "ib_middleware.mi.saturated"
MI_REFERENCE_COUNT: Final = "ib_middleware.mi.reference_count"
MI_UNSUPPORTED_FRACTION: Final = "ib_middleware.mi.unsupported_fraction"
MI_RELEVANT_FRACTION: Final = "ib_middleware.mi.relevant_fraction"
MI_QUERY_FRACTION: Final = "ib_middleware.mi.query_fraction"
SUPPORT_UNSUPPORTED_COUNT: Final = "ib_middleware.judging.support.unsupported_count"
SUPPORT_UNSUPPORTED_SPANS: Final = "ib_middleware.judging.support.unsupported_spans"
THRESHOLD_BITS_PER_TOKEN: Final = "ib_middleware.threshold.bits_per_token"
FLOPS: Final = "ib_middleware.flops"

# Metrics.
METRIC_BITS_PER_TOKEN: Final = "ib_middleware.compression.bits_per_token"
METRIC_RATIO: Final = "ib_middleware.compression.ratio"
METRIC_DECISIONS: Final = "ib_middleware.route.decisions"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
UNIT_BITS_PER_TOKEN: Final = "bit/{token}"
UNIT_RATIO: Final = "1"
UNIT_DECISION: Final = "{decision}"
UNIT_TOKEN: Final = "{token}"
UNIT_SECONDS: Final = "s"

TOKEN_USAGE_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
"""The conventions' explicit bucket boundaries for ``gen_ai.client.token.usage``."""

DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
"""The conventions' explicit bucket boundaries for ``gen_ai.client.operation.duration``."""

BITS_PER_TOKEN_BUCKETS: Final = (
    -1.0, -0.5, 0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
)  # fmt: skip
"""Bucket boundaries for bits per token (CXMI can be negative; thresholds sit near 0.1-1)."""

RATIO_BUCKETS: Final = (1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 55.0, 89.0, 144.0)
"""Bucket boundaries for the compression ratio (input over output tokens)."""

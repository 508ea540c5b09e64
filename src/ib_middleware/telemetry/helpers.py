"""Pure helpers: stage inputs and results in, attribute dicts out. No spans, no providers.

Every function here is deterministic and side-effect free, so the observer stays a thin layer
that owns span lifecycles, and tests can check attribute names and types directly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from ib_estimators import ModelSpec, flops_per_generation
from opentelemetry.util.types import AttributeValue

from ib_middleware.compressors import Compression
from ib_middleware.judging.online import OnlineEstimate
from ib_middleware.results import ContextItem, RungAttempt, StageResult
from ib_middleware.telemetry import attributes as names

__all__ = [
    "Attributes",
    "attempt_attributes",
    "capture_content_enabled",
    "compression_attributes",
    "compression_flops",
    "decision_metric_attributes",
    "error_type",
    "estimate_attributes",
    "route_attempt",
    "route_attributes",
    "stage_attributes",
    "totals_attributes",
]

Attributes = dict[str, AttributeValue]

_TRUE = frozenset({"true", "1", "yes", "on"})


def capture_content_enabled(value: str | None) -> bool:
    """Whether an environment value turns content capture on (``true``, ``1``, ``yes``, ``on``).

    Example:
        >>> capture_content_enabled("True"), capture_content_enabled(None)
        (True, False)
    """
    return value is not None and value.strip().lower() in _TRUE


def error_type(error: BaseException | str) -> str:
    """The low-cardinality ``error.type``: the exception's class name.

    Accepts an exception or a recorded ``"ErrorType: message"`` string.

    Example:
        >>> error_type(TimeoutError("slow")), error_type("EngineError: refused")
        ('TimeoutError', 'EngineError')
    """
    if isinstance(error, BaseException):
        return type(error).__qualname__
    head = error.split(":", 1)[0].strip()
    return head or "_OTHER"


def stage_attributes(
    query: str, items: Sequence[ContextItem], *, capture_content: bool = False
) -> Attributes:
    """Attributes of the stage span at its start.

    Example:
        >>> stage_attributes("q", [ContextItem("x")])["ib_middleware.stage.items"]
        1
    """
    attributes: Attributes = {
        names.GEN_AI_OPERATION_NAME: names.OPERATION_STAGE,
        names.OPENINFERENCE_SPAN_KIND: names.SPAN_KIND_CHAIN,
        names.STAGE_ITEMS: len(items),
    }
    if capture_content:
        attributes[names.INPUT_VALUE] = query
    return attributes


def route_attempt(result: StageResult) -> RungAttempt | None:
    """The attempt whose estimate describes the decision.

    That is the accepted attempt, else the last one that was estimated (for a fallback: the
    last rung's rejected estimate).

    Example:
        >>> route_attempt(StageResult("t", "passthrough", None, "r", "s", 3, 3)) is None
        True
    """
    accepted = result.accepted_attempt
    if accepted is not None:
        return accepted
    return next((a for a in reversed(result.attempts) if a.estimate is not None), None)


def estimate_attributes(estimate: OnlineEstimate) -> Attributes:
    """The ``ib_middleware.mi.*`` attributes of one estimate.

    Example:
        >>> estimate = OnlineEstimate("cxmi", 2.0, 2.9, 0.29, 10, False, None, 0, (), 0.0, "m")
        >>> estimate_attributes(estimate)["ib_middleware.mi.bits_per_token"]
        0.29
    """
    attributes: Attributes = {
        names.MI_ESTIMATOR: estimate.estimator,
        names.MI_NATS: float(estimate.nats),
        names.MI_BITS: float(estimate.bits),
        names.MI_BITS_PER_TOKEN: float(estimate.bits_per_token),
        names.MI_N_TOKENS: estimate.n_tokens,
        names.MI_SATURATED: estimate.saturated,
        names.MI_REFERENCE_COUNT: estimate.reference_count,
        names.MI_UNSUPPORTED_FRACTION: float(estimate.unsupported_fraction),
    }
    if estimate.relevant_fraction is not None:
        attributes[names.MI_RELEVANT_FRACTION] = float(estimate.relevant_fraction)
    if estimate.query_fraction is not None:
        attributes[names.MI_QUERY_FRACTION] = float(estimate.query_fraction)
    return attributes


def route_attributes(
    result: StageResult,
    *,
    flops: float | None = None,
    original: str | None = None,
    capture_content: bool = False,
) -> Attributes:
    """Attributes of a route span: the decision, its reason, tokens and the deciding estimate.

    Args:
        result: The stage's result for one item.
        flops: FLOPs its compressor calls spent, when the models' specs are known.
        original: The item's raw text (recorded only with ``capture_content``).
        capture_content: Record the raw text (``ib_middleware.content.context`` and
            ``input.value``) and the forwarded text (``output.value``).

    Example:
        >>> result = StageResult("t", "passthrough", None, "within budget", "tool", 3, 3)
        >>> attributes = route_attributes(result)
        >>> attributes["ib_middleware.route.decision"], "ib_middleware.route.rung" in attributes
        ('passthrough', False)
    """
    attributes: Attributes = {
        names.GEN_AI_OPERATION_NAME: names.OPERATION_ROUTE,
        names.OPENINFERENCE_SPAN_KIND: names.SPAN_KIND_CHAIN,
        names.ROUTE_DECISION: result.decision,
        names.ROUTE_REASON: result.reason,
        names.CONTEXT_SOURCE: result.source,
        names.COMPRESSION_INPUT_TOKENS: result.input_tokens,
        names.COMPRESSION_OUTPUT_TOKENS: result.output_tokens,
        names.COMPRESSION_RATIO: float(result.compression_ratio),
    }
    if result.rung is not None:
        attributes[names.ROUTE_RUNG] = result.rung
    attempt = route_attempt(result)
    if attempt is not None and attempt.estimate is not None:
        attributes[names.RUNG_NAME] = attempt.name
        attributes[names.THRESHOLD_BITS_PER_TOKEN] = float(attempt.threshold_bits_per_token)
        attributes.update(estimate_attributes(attempt.estimate))
    if flops is not None:
        attributes[names.FLOPS] = float(flops)
    if capture_content:
        if original is not None:
            attributes[names.CONTENT_CONTEXT] = original
            attributes[names.INPUT_VALUE] = original
        attributes[names.OUTPUT_VALUE] = result.text
    return attributes


def totals_attributes(results: Sequence[StageResult]) -> Attributes:
    """Token totals over every item, for the stage span of a multi-item invocation.

    Example:
        >>> results = [StageResult("a", "passthrough", None, "r", "s", 10, 10),
        ...            StageResult("b", "accepted", 0, "r", "s", 90, 10)]
        >>> totals_attributes(results)["ib_middleware.compression.ratio"]
        5.0
    """
    total_in = sum(result.input_tokens for result in results)
    total_out = sum(result.output_tokens for result in results)
    return {
        names.COMPRESSION_INPUT_TOKENS: total_in,
        names.COMPRESSION_OUTPUT_TOKENS: total_out,
        names.COMPRESSION_RATIO: total_in / total_out if total_out else 1.0,
    }


def attempt_attributes(attempt: RungAttempt) -> Attributes:
    """The rung-level attributes shared by an attempt's compressor and scoring spans.

    Example:
        >>> attempt = RungAttempt(1, "big", 0.4, True, "accepted")
        >>> attempt_attributes(attempt)["ib_middleware.route.rung"]
        1
    """
    return {
        names.ROUTE_RUNG: attempt.rung,
        names.RUNG_NAME: attempt.name,
        names.THRESHOLD_BITS_PER_TOKEN: float(attempt.threshold_bits_per_token),
        names.ATTEMPT_ACCEPTED: attempt.accepted,
        names.ATTEMPT_REASON: attempt.reason,
        # Positions and kinds only: the spans' text is content, never an attribute.
        names.SUPPORT_UNSUPPORTED_COUNT: len(attempt.unsupported),
        names.SUPPORT_UNSUPPORTED_SPANS: [
            f"{span.kind}@{span.start}-{span.end}" for span in attempt.unsupported
        ],
    }


def compression_flops(compression: Compression, spec: ModelSpec) -> float | None:
    """Forward-pass FLOPs of a compression's generator calls, or None when it made none.

    Only totals are recorded for chunked (map-reduce) compressions, so each of the ``calls``
    is counted as an equal share of the prompt and completion tokens.

    Example:
        >>> from ib_middleware.compressors import Compression
        >>> spec = ModelSpec(n_params=1e6, n_layers=2, d_attn=64)
        >>> compression = Compression("z", "m", "abstractive", 9, 1, 3, 1, 1, 1, 0.1)
        >>> compression_flops(compression, spec)
        8002560.0
    """
    if compression.calls < 1:
        return None
    prompt = round(compression.prompt_tokens / compression.calls)
    completion = round(compression.completion_tokens / compression.calls)
    return compression.calls * flops_per_generation(spec, prompt, completion)


def compression_attributes(
    compression: Compression,
    *,
    provider: str,
    flops: float | None = None,
    capture_content: bool = False,
) -> Attributes:
    """Attributes of a compressor span: ``gen_ai.*`` usage for model calls, and our own counts.

    Example:
        >>> from ib_middleware.compressors import Compression
        >>> compression = Compression("z", "m", "abstractive", 90, 9, 120, 9, 1, 1, 0.5)
        >>> attributes = compression_attributes(compression, provider="local")
        >>> attributes["gen_ai.operation.name"], attributes["gen_ai.usage.input_tokens"]
        ('chat', 120)
    """
    produced = compression.output_tokens
    ratio = compression.input_tokens / produced if produced else 1.0
    attributes: Attributes = {
        names.COMPRESSION_METHOD: compression.method,
        names.COMPRESSION_INPUT_TOKENS: compression.input_tokens,
        names.COMPRESSION_OUTPUT_TOKENS: compression.output_tokens,
        names.COMPRESSION_RATIO: float(ratio),
        names.COMPRESSION_CALLS: compression.calls,
        names.COMPRESSION_CHUNKS: compression.chunks,
    }
    if compression.method == "abstractive":
        attributes.update(
            {
                names.GEN_AI_OPERATION_NAME: names.OPERATION_CHAT,
                names.GEN_AI_PROVIDER_NAME: provider,
                names.GEN_AI_REQUEST_MODEL: compression.model,
                names.GEN_AI_RESPONSE_MODEL: compression.model,
                names.GEN_AI_USAGE_INPUT_TOKENS: compression.prompt_tokens,
                names.GEN_AI_USAGE_OUTPUT_TOKENS: compression.completion_tokens,
                names.OPENINFERENCE_SPAN_KIND: names.SPAN_KIND_LLM,
            }
        )
    else:
        attributes[names.GEN_AI_OPERATION_NAME] = names.OPERATION_EXTRACT
        attributes[names.OPENINFERENCE_SPAN_KIND] = names.SPAN_KIND_CHAIN
    if flops is not None:
        attributes[names.FLOPS] = float(flops)
    if capture_content:
        message = {"role": "assistant", "parts": [{"type": "text", "content": compression.text}]}
        attributes[names.GEN_AI_OUTPUT_MESSAGES] = json.dumps([message], ensure_ascii=False)
        attributes[names.OUTPUT_VALUE] = compression.text
    return attributes


def decision_metric_attributes(result: StageResult) -> Mapping[str, AttributeValue]:
    """Low-cardinality attributes of the decision counter and ratio histogram.

    Example:
        >>> result = StageResult("t", "accepted", 0, "r", "s", 90, 10)
        >>> dict(decision_metric_attributes(result))
        {'ib_middleware.route.decision': 'accepted', 'ib_middleware.route.rung': 0}
    """
    if result.rung is None:
        return {names.ROUTE_DECISION: result.decision}
    return {names.ROUTE_DECISION: result.decision, names.ROUTE_RUNG: result.rung}

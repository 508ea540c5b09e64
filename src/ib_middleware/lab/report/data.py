"""From a JSON Lines span file to the figures' data: decisions, attempts, calls, savings.

Pure and standard-library only: plotting lives in ``plots`` and HTML in ``page``. Records that
are not spans, or spans from other instrumentation, are skipped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ib_estimators import DEFAULT_PRICES, Price, api_cost

from ib_middleware.telemetry import attributes as names

__all__ = [
    "Attempt",
    "Call",
    "Decision",
    "ReportData",
    "load_spans",
    "summarise",
]

_CALL_OPERATIONS = frozenset({names.OPERATION_CHAT, names.OPERATION_EXTRACT, names.OPERATION_SCORE})


@dataclass(frozen=True)
class Decision:
    """One routing decision (a span carrying ``ib_middleware.route.decision``)."""

    time_s: float
    decision: str
    rung: int | None
    input_tokens: int
    output_tokens: int
    ratio: float
    bits_per_token: float | None


@dataclass(frozen=True)
class Attempt:
    """One scored rung attempt: its estimate, threshold, verdict and compression ratio."""

    rung: int
    rung_name: str
    bits_per_token: float
    threshold: float
    accepted: bool
    ratio: float | None


@dataclass(frozen=True)
class Call:
    """One compressor or scoring call, for the slowest-calls view."""

    name: str
    duration_s: float
    failed: bool
    model: str
    input_tokens: int
    output_tokens: int


@dataclass
class ReportData:
    """Everything the report shows, computed once."""

    decisions: list[Decision] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    invocations: int = 0
    failed_invocations: int = 0
    invocation_durations_s: list[float] = field(default_factory=list)
    price_model: str = "gpt-4o-mini"
    prices: Mapping[str, Price] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    @property
    def counts(self) -> dict[str, int]:
        """Decisions by kind."""
        counts = {"passthrough": 0, "accepted": 0, "fallback": 0}
        for decision in self.decisions:
            counts[decision.decision] = counts.get(decision.decision, 0) + 1
        return counts

    @property
    def fallback_rate(self) -> float | None:
        """Share of compressed items (accepted or fallback) that fell back to the original."""
        counts = self.counts
        tried = counts["accepted"] + counts["fallback"]
        return counts["fallback"] / tried if tried else None

    @property
    def tokens_saved(self) -> int:
        """Input tokens the orchestrator did not have to read."""
        return sum(d.input_tokens - d.output_tokens for d in self.decisions)

    @property
    def cost_saved(self) -> float | None:
        """What the saved tokens would have cost at the orchestrator's input price."""
        if self.price_model not in self.prices:
            return None
        return api_cost(self.price_model, max(0, self.tokens_saved), 0, prices=self.prices)

    @property
    def compressor_cost(self) -> float:
        """What the compressor calls cost, for models in the price table (others count 0)."""
        return sum(
            api_cost(call.model, call.input_tokens, call.output_tokens, prices=self.prices)
            for call in self.calls
            if call.model in self.prices and call.name.startswith(names.OPERATION_CHAT)
        )


def load_spans(path: str | Path) -> list[dict[str, Any]]:
    r"""The span records of a JSON Lines span file (other records and blank lines skipped).

    Raises:
        FileNotFoundError: When the file does not exist.
        ValueError: When a line is not JSON (the message gives the line number).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "spans.jsonl"
        >>> _ = path.write_text('{"type": "span", "name": "a"}\n\n{"type": "metrics"}\n')
        >>> [span["name"] for span in load_spans(path)]
        ['a']
    """
    spans = []
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                msg = f"{path}:{number} is not a JSON span record ({error.msg})"
                raise ValueError(msg) from None
            if not isinstance(record, dict) or "name" not in record:
                continue
            # Our span lines say so; other JSON Lines (metrics, run logs) are skipped.
            if record.get("type") == "span" or ("type" not in record and "span_id" in record):
                spans.append(record)
    return spans


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _int(value: Any) -> int:
    number = _number(value)
    return int(number) if number is not None else 0


def _duration(span: Mapping[str, Any]) -> float:
    return max(0, _int(span.get("end_time")) - _int(span.get("start_time"))) / 1e9


def _decision(span: Mapping[str, Any], attributes: Mapping[str, Any]) -> Decision:
    rung = attributes.get(names.ROUTE_RUNG)
    return Decision(
        time_s=_int(span.get("start_time")) / 1e9,
        decision=str(attributes[names.ROUTE_DECISION]),
        rung=int(rung) if isinstance(rung, int) else None,
        input_tokens=_int(attributes.get(names.COMPRESSION_INPUT_TOKENS)),
        output_tokens=_int(attributes.get(names.COMPRESSION_OUTPUT_TOKENS)),
        ratio=_number(attributes.get(names.COMPRESSION_RATIO)) or 1.0,
        bits_per_token=_number(attributes.get(names.MI_BITS_PER_TOKEN)),
    )


def _call(span: Mapping[str, Any], attributes: Mapping[str, Any]) -> Call:
    return Call(
        name=str(span.get("name", "")),
        duration_s=_duration(span),
        failed=(span.get("status") or {}).get("code") == "ERROR",
        model=str(attributes.get(names.GEN_AI_REQUEST_MODEL, "")),
        input_tokens=_int(attributes.get(names.GEN_AI_USAGE_INPUT_TOKENS)),
        output_tokens=_int(attributes.get(names.GEN_AI_USAGE_OUTPUT_TOKENS)),
    )


def _attempts(spans: Iterable[Mapping[str, Any]]) -> list[Attempt]:
    """Join each scoring span with its compressor span (same parent, same rung)."""
    ratios: dict[tuple[Any, Any, Any], float] = {}
    scores = []
    for span in spans:
        attributes = span.get("attributes") or {}
        operation = attributes.get(names.GEN_AI_OPERATION_NAME)
        key = (span.get("trace_id"), span.get("parent_span_id"), attributes.get(names.ROUTE_RUNG))
        ratio = _number(attributes.get(names.COMPRESSION_RATIO))
        if operation in (names.OPERATION_CHAT, names.OPERATION_EXTRACT) and ratio is not None:
            ratios[key] = ratio
        elif operation == names.OPERATION_SCORE:
            scores.append((key, attributes))
    attempts = []
    for key, attributes in scores:
        bits = _number(attributes.get(names.MI_BITS_PER_TOKEN))
        rung = attributes.get(names.ROUTE_RUNG)
        if bits is None or not isinstance(rung, int):
            continue  # a failed scoring has no estimate
        attempts.append(
            Attempt(
                rung=rung,
                rung_name=str(attributes.get(names.RUNG_NAME, rung)),
                bits_per_token=bits,
                threshold=_number(attributes.get(names.THRESHOLD_BITS_PER_TOKEN)) or 0.0,
                accepted=bool(attributes.get(names.ATTEMPT_ACCEPTED)),
                ratio=ratios.get(key),
            )
        )
    return attempts


def summarise(
    spans: Iterable[Mapping[str, Any]],
    *,
    price_model: str = "gpt-4o-mini",
    prices: Mapping[str, Price] | None = None,
) -> ReportData:
    """Extract the report's data from span records.

    Args:
        spans: Records as ``load_spans`` returns them.
        price_model: The orchestrator model whose input price values the saved tokens.
        prices: Price table; ``ib_estimators.DEFAULT_PRICES`` when None.

    Example:
        >>> span = {"name": "ib_middleware.stage", "start_time": 0, "end_time": 2_000_000_000,
        ...         "status": {"code": "UNSET"}, "attributes": {
        ...             "ib_middleware.route.decision": "accepted", "ib_middleware.route.rung": 0,
        ...             "ib_middleware.compression.input_tokens": 1_000_000,
        ...             "ib_middleware.compression.output_tokens": 0}}
        >>> data = summarise([span])
        >>> data.counts["accepted"], data.tokens_saved, data.cost_saved
        (1, 1000000, 0.15)
    """
    records = list(spans)
    data = ReportData(price_model=price_model, prices=dict(prices or DEFAULT_PRICES))
    for span in records:
        attributes = span.get("attributes") or {}
        if names.ROUTE_DECISION in attributes:
            data.decisions.append(_decision(span, attributes))
        if span.get("name") == names.SPAN_STAGE:
            data.invocations += 1
            data.invocation_durations_s.append(_duration(span))
            if (span.get("status") or {}).get("code") == "ERROR":
                data.failed_invocations += 1
        if attributes.get(names.GEN_AI_OPERATION_NAME) in _CALL_OPERATIONS:
            data.calls.append(_call(span, attributes))
    data.decisions.sort(key=lambda decision: decision.time_s)
    data.attempts = _attempts(records)
    return data

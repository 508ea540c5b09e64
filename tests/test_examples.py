"""Smoke tests: every example in examples/ runs offline, in quick mode, and says what it did.

Each runs as a newcomer would run it (``python examples/NAME.py``) in a temporary folder with
``IB_EXAMPLES_QUICK=1`` (fewer questions, sub-queries, rounds or cases). Examples that need a
server are run when one can be started here on 127.0.0.1, and skipped with the reason when not.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from local_servers import free_port, stop_process

from ib_middleware.config import StageConfig

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
pytestmark = pytest.mark.slow


def run_example(name: str, *args: str, cwd: Path, timeout: int = 540) -> str:
    env = {**os.environ, "IB_EXAMPLES_QUICK": "1"}
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, f"{name} failed:\n{completed.stderr[-4000:]}"
    return completed.stdout


def test_every_example_is_tested_and_states_its_runtime():
    tested = Path(__file__).read_text(encoding="utf-8")
    for path in EXAMPLES.glob("*.py"):
        if path.name.startswith("_"):
            continue
        assert f'"{path.name}"' in tested, f"{path.name} has no smoke test"
        doc = path.read_text(encoding="utf-8")
        assert "Runtime" in doc or "runtime" in doc, f"{path.name} should state its runtime"


@pytest.mark.timeout(600)
def test_wrap_langgraph_agent(tmp_path):
    out = run_example("wrap_langgraph_agent.py", cwd=tmp_path)
    assert "before: the predictor read" in out
    assert "after: the predictor read" in out
    assert "decision: " in out
    assert "predictor input:" in out


def check_wrap_react_loop(out: str) -> None:
    """Each drop-in ran the loop; every one but the baseline made one decision per question."""
    drop_ins = ["none", "compression_node", "add_compression", "with_compression"]
    for drop_in in [*drop_ins, "CompressingChatModel"]:
        assert f"  [{drop_in}]" in out
    assert out.count("model call 2 received") == 5
    assert out.count("decision on tool:search_filings: ") == 4, "one compression per drop-in"
    assert "tokens of tool output the model read on its last call" in out


@pytest.mark.timeout(600)
def test_wrap_react_loop(tmp_path):
    check_wrap_react_loop(run_example("wrap_react_loop.py", cwd=tmp_path))


def test_wrap_react_loop_scripted(tmp_path):
    check_wrap_react_loop(
        run_example("wrap_react_loop.py", "--scripted", cwd=tmp_path, timeout=300)
    )


@pytest.mark.timeout(600)
def test_create_agent_middleware(tmp_path):
    out = run_example("create_agent_middleware.py", cwd=tmp_path)
    assert "decision on call-" in out
    assert "why: " in out


@pytest.mark.timeout(600)
def test_deep_research(tmp_path):
    out = run_example("deep_research.py", cwd=tmp_path)
    assert "corpus: " in out
    assert out.count(" -> ") >= 2, "each sub-query searched and compressed"
    assert "report:" in out
    assert "uncompressed" in out
    assert "predictor cost at gpt-4o prices" in out


@pytest.mark.timeout(600)
def test_multi_turn(tmp_path):
    out = run_example("multi_turn.py", cwd=tmp_path)
    assert "round 1: compressor" in out
    assert "MI " in out
    assert "answer after" in out


@pytest.mark.timeout(600)
def test_calibrate_and_serve(tmp_path):
    out = run_example("calibrate_and_serve.py", cwd=tmp_path)
    policy = tmp_path / "policy.json"
    assert policy.is_file()
    assert "policy written to policy.json" in out
    assert "served " in out
    config = StageConfig(policy=policy)
    assert config.policy == policy


@pytest.mark.timeout(600)
def test_phoenix_watch(tmp_path):
    pytest.importorskip("phoenix", reason="Arize Phoenix is not installed")
    out = run_example("phoenix_watch.py", "--start-phoenix", cwd=tmp_path)
    spans_line = next(line for line in out.splitlines() if line.startswith("spans in Phoenix"))
    assert "'EVALUATOR'" in spans_line
    assert "'LLM'" in spans_line
    assert "ib_middleware.route" in out or "ib_middleware.stage" in out


@pytest.mark.parametrize("name", ["sglang", "vllm", "openai", "llamacpp_server"])
def test_engine_configs_load(name):
    config = StageConfig.load(EXAMPLES / "engines" / f"{name}.yaml")
    assert config.rungs
    assert config.policy is None, "a server config must not reuse the embedded models' policy"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("sglang", "needs SGLang servers on 127.0.0.1:30000 and :30001"),
        ("vllm", "needs vLLM servers on 127.0.0.1:8000 and :8001"),
        ("openai", "needs OPENAI_API_KEY"),
    ],
)
def test_serve_on_a_server_without_the_server(name, reason, tmp_path):
    out = run_example(
        "serve_on_a_server.py", str(EXAMPLES / "engines" / f"{name}.yaml"), cwd=tmp_path
    )
    if out.startswith("not run:"):
        pytest.skip(f"{name}.yaml {reason}: the example said so and exited 0")
    assert "tokens:" in out


@pytest.mark.timeout(600)
def test_serve_on_llamacpp_server(tmp_path):
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
    model = run_example("serve_on_a_server.py", "--smollm2-path", cwd=tmp_path).strip()
    port = free_port()
    config = (EXAMPLES / "engines" / "llamacpp_server.yaml").read_text(encoding="utf-8")
    (tmp_path / "stage.yaml").write_text(config.replace("8080", str(port)), encoding="utf-8")
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ib_integrations.serve_llamacpp",
            "--model",
            model,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "4096",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        deadline = time.monotonic() + 120
        while True:
            with (
                contextlib.suppress(OSError),
                opener.open(f"http://127.0.0.1:{port}/v1/models", timeout=2),
            ):
                break
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "llama-cpp-python's server did not start"
            time.sleep(0.5)
        out = run_example("serve_on_a_server.py", "stage.yaml", cwd=tmp_path)
    finally:
        stop_process(server, timeout=20)
        log.close()
    assert "not run" not in out
    assert "tokens:" in out
    assert "rung" in out


def test_react_agent_openai_without_an_endpoint(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"OPENAI_BASE_URL", "OPENAI_API_KEY", "IB_DEMO_MODEL"}
    }
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "react_agent_openai.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0
    assert "OPENAI_BASE_URL" in completed.stderr
    if not os.environ.get("OPENAI_API_KEY"):
        pytest.skip("the tool-calling run needs an OpenAI-compatible endpoint (OPENAI_API_KEY)")

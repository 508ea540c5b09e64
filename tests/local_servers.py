"""Loopback servers for tests: free ports, llama-cpp-python's server, stopping by pid.

Shared by the engine, reliability, example and telemetry tests (``tests`` is on pytest's
``pythonpath``). Every process started here is stopped by its own pid.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def smollm2_gguf() -> Path:
    """The embedded SmolLM2 GGUF; the test is skipped when its wheel is missing."""
    from ib_integrations._embedded import smollm2_path  # skip, not fail

    try:
        return smollm2_path()
    except FileNotFoundError as error:
        pytest.skip(str(error))


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Stop a process a test started, by its pid: resume it if paused, terminate, then kill."""
    if proc.poll() is None:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(proc.pid).resume()  # a test may have paused it
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@dataclass
class Server:
    """A running ``llama_cpp.server``: its ``/v1`` URL and process."""

    url: str
    proc: subprocess.Popen[bytes]

    @property
    def root(self) -> str:
        """The URL without ``/v1``."""
        return self.url.removesuffix("/v1")


@contextlib.contextmanager
def llama_server(log_dir: Path, *extra: str) -> Iterator[Server]:
    """Run ``python -m llama_cpp.server`` with SmolLM2 on a free loopback port (2048 tokens)."""
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
    port = free_port()
    log = log_dir / f"server-{port}.log"
    args = [sys.executable, "-m", "ib_integrations.serve_llamacpp", "--model", str(smollm2_gguf())]
    args += ["--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--n_ctx", "2048", "--n_threads", "1", *extra]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited early:\n{log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/v1/models", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server was not ready within 120 s")
            time.sleep(0.25)
        yield Server(f"{base}/v1", proc)
    finally:
        stop_process(proc)

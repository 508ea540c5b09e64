"""Engine faults against real loopback servers: the agent always gets valid content.

A llama-cpp-python server (SmolLM2) runs on 127.0.0.1; the fault proxy in front of it answers
5xx, truncates bodies, corrupts JSON, drips bytes, stalls, drops the connection or echoes the
request. Another server is killed mid-request, and the shared one is paused past the timeout.
For each fault: the original is forwarded (``fallback``), the decision names the fault, no
exception escapes unless ``on_failure="raise"``, and no thread or socket is left behind.
"""

from __future__ import annotations

import threading
import time

import psutil
import pytest
from ib_integrations.openai_compat import OpenAICompatEngine

from ib_middleware.compressors import AbstractiveCompressor, ApproximateTokenCounter
from ib_middleware.errors import EngineError
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.stage import CompressionStage
from ib_middleware.testing import FakeScorer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CONTEXT = (
    "Revenue for fiscal 2018 was $32.8 billion. Capital expenditure was $1,577 million. "
    "The company employs 93,000 people in 70 countries. Dividends rose for the 60th year."
)
QUERY = "What was capital expenditure?"
FAST_S = 2.0  # the timeout of faults that never answer
SLOW_S = 60.0  # the timeout of faults that forward to the real server first

# fault -> (what the decision's error must say, error class name in the reason, timeout)
FAULTS: dict[str, tuple[str, str, float]] = {
    "500": ("answered HTTP 500", "StatusError", FAST_S),
    "502": ("answered HTTP 502", "StatusError", FAST_S),
    "503": ("answered HTTP 503", "StatusError", FAST_S),
    "truncate": ("peer closed connection", "EngineError", SLOW_S),
    "malformed": ("malformed JSON", "EngineError", SLOW_S),
    "slow": ("did not answer within", "EngineTimeoutError", FAST_S),
    "stall": ("did not answer within", "EngineTimeoutError", FAST_S),
    "drop": ("disconnected", "EngineError", SLOW_S),
    "echo": ("answered HTTP 500", "StatusError", FAST_S),
}


def make_stage(url, timeout_s, *, server_tokens=False, **options):
    """A one-rung stage compressing with the server at ``url``.

    The compressor counts tokens locally unless ``server_tokens``: the faults then hit the
    chat completion itself, not the tokenize calls before it.
    """
    engine = OpenAICompatEngine(model="smollm2", base_url=url, timeout_s=timeout_s, max_retries=0)
    counter = None if server_tokens else ApproximateTokenCounter()
    compressor = AbstractiveCompressor(
        engine, max_tokens=16, window_tokens=1500, token_counter=counter
    )
    stage = CompressionStage(
        [Rung(compressor, threshold_bits_per_token=0.0)],
        estimator=CXMIEstimator(FakeScorer(lambda prompt, z: -1.0)),
        token_budget=10,
        min_output_tokens=1,
        **options,
    )
    return stage, engine


def check_fallback(result, says, kind):
    assert result.decision == "fallback"
    assert result.text == CONTEXT
    [attempt] = result.attempts
    assert attempt.error is not None
    assert says in attempt.error
    assert f"compressor error ({kind})" in attempt.reason
    assert kind in result.reason


def test_the_proxy_forwards_when_asked(proxy):
    stage, _ = make_stage(proxy.url("pass"), SLOW_S, server_tokens=True)
    [result] = stage.run([CONTEXT], QUERY)
    assert result.decision == "accepted"
    assert result.text
    assert result.text != CONTEXT


@pytest.mark.parametrize("fault", ["503", "truncate", "slow"])
def test_fault_while_tokenizing_falls_back(proxy, leaks, fault):
    """The same faults on the tokenize calls that come before the completion."""
    says, kind, timeout_s = FAULTS[fault]
    before = leaks.snapshot(proxy.port)
    stage, _ = make_stage(proxy.url(fault), timeout_s, server_tokens=True)
    [result] = stage.run([CONTEXT], QUERY)
    check_fallback(result, says, kind)
    assert leaks.settled(before, proxy.port) == before


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_falls_back_sync(proxy, leaks, fault):
    says, kind, timeout_s = FAULTS[fault]
    before = leaks.snapshot(proxy.port)
    stage, _ = make_stage(proxy.url(fault), timeout_s)
    [result] = stage.run([CONTEXT], QUERY)
    check_fallback(result, says, kind)
    assert leaks.settled(before, proxy.port) == before


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_fault_falls_back_async(proxy, leaks, fault):
    says, kind, timeout_s = FAULTS[fault]
    before = leaks.snapshot(proxy.port)
    stage, engine = make_stage(proxy.url(fault), timeout_s)
    [result] = await stage.arun([CONTEXT], QUERY)
    await engine.aclose()
    check_fallback(result, says, kind)
    assert leaks.settled(before, proxy.port) == before


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_raises_when_asked(proxy, leaks, fault):
    says, _, timeout_s = FAULTS[fault]
    before = leaks.snapshot(proxy.port)
    stage, _ = make_stage(proxy.url(fault), timeout_s, on_failure="raise")
    with pytest.raises(EngineError, match=says):
        stage.run([CONTEXT], QUERY)
    assert leaks.settled(before, proxy.port) == before


def test_stalled_server_times_out_and_recovers(llama, leaks):
    """The real server, paused (SIGSTOP) past the timeout, then resumed."""
    port = int(llama.root.rsplit(":", 1)[1])
    before = leaks.snapshot(port)
    stage, _ = make_stage(llama.url, FAST_S)
    process = psutil.Process(llama.proc.pid)
    process.suspend()
    try:
        [result] = stage.run([CONTEXT], QUERY)
    finally:
        process.resume()
    check_fallback(result, "did not answer within", "EngineTimeoutError")
    assert leaks.settled(before, port) == before
    recovered, _ = make_stage(llama.url, SLOW_S)
    assert recovered.run([CONTEXT], QUERY)[0].decision == "accepted"


def kill_when_busy(server, port, leaks):
    """Kill the server once our request is in flight and it is computing the answer."""
    process = psutil.Process(server.proc.pid)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if leaks.snapshot(port).connections and process.cpu_percent(interval=0.1) > 20:
            break
    server.proc.kill()  # this suite started it; killed by its own pid


def killing_stage(server):
    engine = OpenAICompatEngine(
        model="smollm2", base_url=server.url, timeout_s=SLOW_S, max_retries=0
    )
    # A long answer keeps the server busy long enough to be killed while it writes it.
    compressor = AbstractiveCompressor(engine, max_tokens=1500, window_tokens=400)
    stage = CompressionStage(
        [Rung(compressor, threshold_bits_per_token=0.0)],
        estimator=CXMIEstimator(FakeScorer(lambda prompt, z: -1.0)),
        token_budget=10,
    )
    return stage, engine


def check_killed(result):
    assert result.decision == "fallback"
    assert result.text == CONTEXT
    [attempt] = result.attempts
    assert attempt.error is not None
    assert attempt.error.startswith("EngineError: request to")
    assert "check that the server is up" in attempt.error


def test_server_killed_mid_request_sync(fresh_llama, leaks):
    port = int(fresh_llama.root.rsplit(":", 1)[1])
    before = leaks.snapshot(port)
    stage, _ = killing_stage(fresh_llama)
    killer = threading.Thread(target=kill_when_busy, args=(fresh_llama, port, leaks))
    killer.start()
    [result] = stage.run([CONTEXT], QUERY)
    killer.join()
    check_killed(result)
    assert leaks.settled(before, port) == before


async def test_server_killed_mid_request_async(fresh_llama, leaks):
    port = int(fresh_llama.root.rsplit(":", 1)[1])
    before = leaks.snapshot(port)
    stage, engine = killing_stage(fresh_llama)
    killer = threading.Thread(target=kill_when_busy, args=(fresh_llama, port, leaks))
    killer.start()
    [result] = await stage.arun([CONTEXT], QUERY)
    await engine.aclose()
    killer.join()
    check_killed(result)
    assert leaks.settled(before, port) == before

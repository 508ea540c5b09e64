"""Scoring throughput against the engine's raw prefill speed on the same tokens, same run.

Ours: ``LlamaCppEngine.score`` on P prompts of ~500 tokens with C continuations of ~50 tokens
each (prefix reuse, logits read at continuation positions, log-softmax). Raw: the same model's
``llama_decode`` over exactly the tokens our scorer evaluated, in the same batches, with no
logits read. Prints one JSON object as its last line; target ``throughput_ratio`` >= 0.85.

Run: uv run python bench/scoring_throughput.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

from ib_integrations.llamacpp import LlamaCppEngine

from ib_middleware import ScoreRequest
from ib_middleware.lab.data import load_financebench


def raw_prefill_seconds(engine: LlamaCppEngine, requests: list[ScoreRequest]) -> tuple[float, int]:
    """Decode the scorer's tokens with plain Llama.eval: prompt once, then each continuation."""
    llm = engine.llama  # the very same loaded model
    tokens = 0
    started = time.perf_counter()
    current_prompt: list[int] | None = None
    for request in requests:
        prompt = engine.tokenize(request.prompt, add_bos=True)
        continuation = engine.tokenize(request.continuation)
        if prompt != current_prompt:
            llm.n_tokens = 0
            llm.eval(prompt)
            tokens += len(prompt)
            current_prompt = prompt
        llm.n_tokens = len(prompt)
        llm.eval(continuation[:-1])
        tokens += len(continuation) - 1
    llm.n_tokens = 0
    return time.perf_counter() - started, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["smollm2", "gemma"], default="smollm2")
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--continuations", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    factory = LlamaCppEngine.smollm2 if args.model == "smollm2" else LlamaCppEngine.gemma3_270m
    engine = factory(n_ctx=2048)
    cases = load_financebench()[: args.prompts]
    requests = []
    for case in cases:
        prompt = engine.detokenize(engine.tokenize(case.context)[:500])
        words = case.context.split()
        for k in range(args.continuations):
            continuation = " " + " ".join(words[40 * k : 40 * k + 35])
            requests.append(ScoreRequest(prompt, continuation))
    engine.score(requests[:1])  # warm up
    raw_runs, our_runs = [], []
    raw_tokens = our_tokens = 0
    for _ in range(args.rounds):  # alternate, and keep each side's best round
        raw_s, raw_tokens = raw_prefill_seconds(engine, requests)
        raw_runs.append(raw_s)
        engine.clear_cache()  # start ours from an empty cache too
        before = engine.counters.total_tokens
        started = time.perf_counter()
        engine.score(requests)
        our_runs.append(time.perf_counter() - started)
        our_tokens = engine.counters.total_tokens - before
    raw_s, ours_s = min(raw_runs), min(our_runs)
    ours_tps = our_tokens / ours_s
    raw_tps = raw_tokens / raw_s
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()} {os.cpu_count()} cores",
                "model": engine.model_id,
                "our_tokens": our_tokens,
                "raw_tokens": raw_tokens,
                "our_tokens_per_s": round(ours_tps, 1),
                "raw_prefill_tokens_per_s": round(raw_tps, 1),
                "throughput_ratio": round(ours_tps / raw_tps, 3),
            }
        )
    )


if __name__ == "__main__":
    main()

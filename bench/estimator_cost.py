"""Cost of building the MI score tensor: naive full prompts against prefix-reusing scoring.

The same contexts, compressions and model are scored two ways in one run:
- naive, as the paper's reference code does: every (compression, context) pair is its own full
  prompt, evaluated from scratch with logits for every position;
- ours: ``ib_middleware.score_tensor`` on the embedded llama.cpp engine, which evaluates each
  context once and only the continuation tokens after it.
It prints one JSON object as its last line: tokens and wall time of both, their ratios, the
largest absolute difference between the two score tensors (nats), and the token ratio the
formula gives at the paper's scale (N = M = 20, |x| = 6000, |z| = 200).

Run: uv run python bench/estimator_cost.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import llama_cpp
import numpy as np
from ib_integrations.llamacpp import LlamaCppEngine, _without_weight_repacking
from scipy.special import log_softmax

from ib_middleware import DEFAULT_SCORING_TEMPLATE, ChatMessage, GenerationSettings, score_tensor
from ib_middleware.lab.data import load_financebench


def naive_scores(
    engine: LlamaCppEngine, contexts: list[str], queries: list[str], compressions: list[list[str]]
) -> tuple[np.ndarray, int]:
    """Every (z_ij, x_l) pair as its own full prompt, no cache reuse."""
    with _without_weight_repacking():
        llm = llama_cpp.Llama(
            model_path=str(engine.model_path),
            n_ctx=engine.n_ctx,
            n_batch=512,
            n_ubatch=512,
            logits_all=True,
            verbose=False,
            swa_full=True,
        )
    n, m = len(contexts), len(compressions[0])
    scores = np.empty((n, m, n))
    tokens = 0
    for i in range(n):
        for j in range(m):
            z = llm.tokenize(compressions[i][j].encode(), add_bos=False)
            for l_index in range(n):
                prompt = DEFAULT_SCORING_TEMPLATE.prompt(contexts[l_index], queries[i])
                x = llm.tokenize(prompt.encode(), add_bos=True)
                llm.reset()
                llm._ctx.kv_cache_clear()
                llm.eval(x + z)
                rows = np.asarray(llm.scores[len(x) - 1 : len(x) + len(z) - 1], dtype=np.float64)
                logprobs = log_softmax(rows, axis=1)[np.arange(len(z)), z]
                scores[i, j, l_index] = float(logprobs.sum())
                tokens += len(x) + len(z)
    return scores, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=6, M=3, ~600-token contexts")
    parser.add_argument("--contexts", type=int, default=8)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--context-tokens", type=int, default=600)
    parser.add_argument("--compression-tokens", type=int, default=50)
    args = parser.parse_args()
    if args.quick:
        args.contexts, args.samples = 6, 3
    engine = LlamaCppEngine.smollm2(n_ctx=2048)
    cases = load_financebench()[: args.contexts]
    contexts = [
        engine.detokenize(engine.tokenize(case.context)[: args.context_tokens]) for case in cases
    ]
    queries = [case.query for case in cases]
    compressions = []
    for context, query in zip(contexts, queries, strict=True):
        prompt = f"{context}\n\nQuestion: {query}\nSummarize the facts needed to answer."
        row = []
        for seed in range(args.samples):
            settings = GenerationSettings(
                temperature=0.8, max_tokens=args.compression_tokens, seed=seed
            )
            row.append(engine.generate([ChatMessage("user", prompt)], settings).text.strip() or "-")
        compressions.append(row)

    started = time.perf_counter()
    naive, naive_tokens = naive_scores(engine, contexts, queries, compressions)
    naive_wall = time.perf_counter() - started

    before = engine.counters.total_tokens
    started = time.perf_counter()
    ours, _ = score_tensor(contexts, queries, compressions, engine)
    our_wall = time.perf_counter() - started
    our_tokens = engine.counters.total_tokens - before

    n, m, x, z = 20, 20, 6000, 200
    paper_naive = n * n * m * (x + z)
    paper_ours = n * x + n * n * m * z
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()} {os.cpu_count()} cores",
                "model": engine.model_id,
                "n_contexts": len(contexts),
                "n_samples": args.samples,
                "naive_tokens": naive_tokens,
                "our_tokens": our_tokens,
                "token_ratio": round(naive_tokens / our_tokens, 2),
                "naive_wall_s": round(naive_wall, 2),
                "our_wall_s": round(our_wall, 2),
                "wall_ratio": round(naive_wall / our_wall, 2),
                "max_abs_diff": float(np.abs(naive - ours).max()),
                "paper_scale_token_ratio": round(paper_naive / paper_ours, 2),
            }
        )
    )


if __name__ == "__main__":
    main()

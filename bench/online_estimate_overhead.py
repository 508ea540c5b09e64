"""CXMI estimation time as a fraction of the compression time it scores, embedded models.

For a few FinanceBench pages: SmolLM2-135M compresses (timed), then Gemma-3-270M scores the
compression with and without the page (CXMI, timed). Prints one JSON object as its last line
with both totals and their ratio.

Run: uv run python bench/online_estimate_overhead.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

from ib_integrations.llamacpp import LlamaCppEngine

from ib_middleware.compressors import AbstractiveCompressor
from ib_middleware.lab.data import load_financebench
from ib_middleware.online import CXMIEstimator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--context-tokens", type=int, default=1000)
    args = parser.parse_args()
    compressor_engine = LlamaCppEngine.smollm2(n_ctx=4096)
    scorer = LlamaCppEngine.gemma3_270m(n_ctx=4096)
    compressor = AbstractiveCompressor(compressor_engine, max_tokens=128)
    estimator = CXMIEstimator(scorer)
    compress_s = estimate_s = 0.0
    output_tokens = 0
    for case in load_financebench()[: args.pages]:
        page = scorer.detokenize(scorer.tokenize(case.context)[: args.context_tokens])
        started = time.perf_counter()
        compression = compressor.compress(page, case.query)
        compress_s += time.perf_counter() - started
        started = time.perf_counter()
        estimate = estimator.estimate(page, case.query, compression.text or "-")
        estimate_s += time.perf_counter() - started
        output_tokens += estimate.n_tokens
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()} {os.cpu_count()} cores",
                "compressor": compressor_engine.model_id,
                "scorer": scorer.model_id,
                "pages": args.pages,
                "context_tokens": args.context_tokens,
                "mean_compression_tokens": round(output_tokens / args.pages, 1),
                "compress_s": round(compress_s, 2),
                "cxmi_estimate_s": round(estimate_s, 2),
                "estimate_over_compress": round(estimate_s / compress_s, 3),
            }
        )
    )


if __name__ == "__main__":
    main()

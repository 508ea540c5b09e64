"""Online estimation time as a fraction of the compression time it judges, embedded models.

For a few FinanceBench pages, SmolLM2-135M compresses each page (timed). Then Gemma-3-270M
scores that compression two ways, each timed: the default relevant-information estimate (one
short pass over the page's top segments) and CXMI (the compression with and without the
page). The last line is one JSON object with the totals and both ratios.

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
from ib_middleware.judging.online import CXMIEstimator, OnlineEstimator
from ib_middleware.judging.relevance import RelevantInformationEstimator
from ib_middleware.lab.data import load_financebench


def _timed(estimator: OnlineEstimator, page: str, query: str, text: str) -> float:
    started = time.perf_counter()
    estimator.estimate(page, query, text)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--context-tokens", type=int, default=1000)
    args = parser.parse_args()
    compressor_engine = LlamaCppEngine.smollm2(n_ctx=4096)
    scorer = LlamaCppEngine.gemma3_270m(n_ctx=4096)
    compressor = AbstractiveCompressor(compressor_engine, max_tokens=128)
    relevant = RelevantInformationEstimator(scorer)
    cxmi = CXMIEstimator(scorer)
    compress_s = relevant_s = cxmi_s = 0.0
    output_tokens = 0
    for case in load_financebench()[: args.pages]:
        page = scorer.detokenize(scorer.tokenize(case.context)[: args.context_tokens])
        started = time.perf_counter()
        compression = compressor.compress(page, case.query)
        compress_s += time.perf_counter() - started
        text = compression.text or "-"
        output_tokens += scorer.count_tokens(text)
        relevant_s += _timed(relevant, page, case.query, text)
        cxmi_s += _timed(cxmi, page, case.query, text)
    print(
        json.dumps(
            {
                "benchmark": "online_estimate_overhead",
                "machine": f"{platform.machine()} {os.cpu_count()} cores",
                "compressor": compressor_engine.model_id,
                "scorer": scorer.model_id,
                "pages": args.pages,
                "context_tokens": args.context_tokens,
                "mean_compression_tokens": round(output_tokens / args.pages, 1),
                "compress_s": round(compress_s, 2),
                "relevant_pmi_estimate_s": round(relevant_s, 2),
                "cxmi_estimate_s": round(cxmi_s, 2),
                "default_estimate_over_compress": round(relevant_s / compress_s, 3),
                "cxmi_estimate_over_compress": round(cxmi_s / compress_s, 3),
            }
        )
    )


if __name__ == "__main__":
    main()

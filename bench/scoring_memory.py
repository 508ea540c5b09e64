"""Peak resident memory while scoring a 4,000-token context with Gemma-3-270M.

Full-vocabulary logits for every position would need 4,000 x 262,144 x 4 bytes = 4.3 GB on
their own; the engine reads logits only at continuation positions. Prints one JSON object as its
last line with the RSS after loading (the baseline) and the peak while scoring; target peak
<= 2 GB.

Run: uv run python bench/scoring_memory.py
"""

from __future__ import annotations

import json
import os
import platform
import resource

from ib_integrations.llamacpp import LlamaCppEngine

from ib_middleware import ScoreRequest
from ib_middleware.lab.data import load_financebench

CONTEXT_TOKENS = 4000
CONTINUATION_TOKENS = 200


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    engine = LlamaCppEngine.gemma3_270m(n_ctx=4608)
    text = "\n\n".join(case.context for case in load_financebench())
    tokens = engine.tokenize(text)
    prompt = engine.detokenize(tokens[:CONTEXT_TOKENS])
    continuation = engine.detokenize(tokens[CONTEXT_TOKENS : CONTEXT_TOKENS + CONTINUATION_TOKENS])
    loaded = rss_mb()
    [score] = engine.score([ScoreRequest(prompt, continuation)])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()} {os.cpu_count()} cores",
                "model": engine.model_id,
                "prompt_tokens": score.prompt_tokens,
                "continuation_tokens": score.n_tokens,
                "rss_after_load_mb": round(loaded, 1),
                "peak_rss_mb": round(peak_mb, 1),
                "full_vocab_logits_would_need_mb": round(
                    score.prompt_tokens * engine.n_vocab * 4 / 2**20,
                    1,
                ),
            }
        )
    )


if __name__ == "__main__":
    main()

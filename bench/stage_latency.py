"""The default stage's decision time against one scorer prefill of the same page.

For a few FinanceBench pages cut to 700 scorer tokens (drawn from the contexts at least that
long, so every page is over the default 256-token budget and the stage works on it), two
things are timed, in the same run and on the same Gemma-3-270M instance: the default stage
deciding on the page (``stage.run`` end to end: segment selection, support check,
relevant-information estimate, routing), and one prefill of the page (a score request whose
prompt is the page and whose continuation is one token, so logits are read at one position
only). The scorer's KV cache is emptied before every timed call, and the order of the two
alternates page by page. Decisions are grouped by the path the stage took (``passthrough``,
``accepted``, ``pruned``, ``fallback``, or any other it returns), and by path and whether the
compression was scored (one rejected before scoring costs milliseconds): per group the median
decision time and the part of it spent estimating, the median prefill time of the same pages,
and their ratio. The last line is one JSON object.

Run: uv run python bench/stage_latency.py [--quick] [--pages 12]
Data: FinanceBench sample (Islam et al., 2023; CC BY-NC 4.0), bundled with the package.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from _sampling import spread_sample

from ib_middleware.build import build_stage
from ib_middleware.config import StageConfig
from ib_middleware.engines import ScoreRequest
from ib_middleware.lab.data import financebench_path
from ib_middleware.lab.filing_labels import containment_cases
from ib_middleware.stage import CompressionStage

QUICK_PAGES = 4
PREFILL_CONTINUATION = "\n"


def measure(
    pages: Sequence[tuple[str, str]],
    stage: CompressionStage,
    prefill: Callable[[str], None],
    *,
    reset: Callable[[], None] = lambda: None,
    progress: Callable[[str], None] = lambda line: None,
) -> list[dict[str, Any]]:
    """Time the stage's decision and one prefill on each ``(page, query)``; one row each.

    ``reset`` runs before every timed call (it empties the scorer's KV cache); the order of
    the two calls alternates from page to page.
    """
    rows = []
    for number, (page, query) in enumerate(pages, start=1):
        timings: dict[str, float] = {}
        decision = ""
        estimate_s = 0.0
        scored = False
        order = ("stage", "prefill") if number % 2 else ("prefill", "stage")
        for what in order:
            reset()
            started = time.perf_counter()
            if what == "stage":
                [result] = stage.run([page], query)
                timings["stage"] = time.perf_counter() - started
                decision = str(result.decision)
                estimate_s = sum(getattr(a, "estimate_s", 0.0) for a in result.attempts)
                scored = any(getattr(a, "estimate", None) is not None for a in result.attempts)
            else:
                prefill(page)
                timings["prefill"] = time.perf_counter() - started
        rows.append(
            {
                "decision": decision,
                "scored": scored,
                "decide_s": timings["stage"],
                "estimate_s": estimate_s,
                "prefill_s": timings["prefill"],
                "page_tokens": stage.token_counter.count_tokens(page),
            }
        )
        progress(
            f"[{number}/{len(pages)}] {decision}: decide {timings['stage']:.3f} s, "
            f"prefill {timings['prefill']:.3f} s"
        )
    return rows


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator > 0 else None


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians per decision path and over every page, with decision over prefill ratios."""
    decisions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    paths: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        decisions[row["decision"]].append(row)
        paths[f"{row['decision']}, {'scored' if row['scored'] else 'not scored'}"].append(row)

    def figures(chosen: Sequence[dict[str, Any]]) -> dict[str, Any]:
        decide = statistics.median(row["decide_s"] for row in chosen)
        prefill = statistics.median(row["prefill_s"] for row in chosen)
        return {
            "n": len(chosen),
            "median_decide_s": round(decide, 4),
            "median_estimate_s": round(statistics.median(row["estimate_s"] for row in chosen), 4),
            "median_prefill_s": round(prefill, 4),
            "decide_over_prefill": _ratio(decide, prefill),
        }

    return {
        "n_pages": len(rows),
        "mean_page_tokens": round(statistics.mean(row["page_tokens"] for row in rows), 1),
        "all": figures(rows),
        "by_decision": {name: figures(chosen) for name, chosen in sorted(decisions.items())},
        "by_path": {path: figures(chosen) for path, chosen in sorted(paths.items())},
    }


def table(summary: dict[str, Any]) -> str:
    """The per-path figures as a readable text table."""
    lines = [
        f"{summary['n_pages']} pages, {summary['mean_page_tokens']} tokens on average",
        f"{'decision':24s}{'n':>4s}{'decide s':>11s}{'estimate s':>12s}{'prefill s':>11s}"
        f"{'ratio':>8s}",
    ]
    for path, cell in [*summary["by_path"].items(), ("all", summary["all"])]:
        ratio = cell["decide_over_prefill"]
        lines.append(
            f"{path:24s}{cell['n']:>4d}{cell['median_decide_s']:>11.3f}"
            f"{cell['median_estimate_s']:>12.3f}{cell['median_prefill_s']:>11.3f}"
            f"{'-' if ratio is None else f'{ratio:.2f}':>8s}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=12, help="pages, spread over the cases")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_PAGES} pages")
    parser.add_argument("--context-tokens", type=int, default=700, help="scorer tokens a page")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    stage = build_stage(StageConfig.load(None))
    scorer: Any = getattr(stage.estimator, "scorer", None)
    if not all(hasattr(scorer, name) for name in ("tokenize", "detokenize", "clear_cache")):
        msg = "the default stage's scorer is not the embedded engine this benchmark times"
        raise SystemExit(msg)
    wanted = QUICK_PAGES if args.quick else args.pages
    # Only contexts at least --context-tokens long, so every page is cut to the same length.
    every = [
        (scorer.detokenize(tokens[: args.context_tokens]), case.query)
        for case in containment_cases(financebench_path())
        if len(tokens := scorer.tokenize(case.context)) >= args.context_tokens
    ]
    indices = spread_sample(len(every), wanted, args.seed)
    pages = [every[i] for i in indices]

    def prefill(page: str) -> None:
        scorer.score([ScoreRequest(page, PREFILL_CONTINUATION)])

    # Warm up both paths on a page that is not timed.
    warm_page, warm_query = next(page for i, page in enumerate(every) if i not in indices)
    stage.run([warm_page], warm_query)
    prefill(warm_page)
    started = time.perf_counter()
    rows = measure(
        pages,
        stage,
        prefill,
        reset=scorer.clear_cache,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    summary = summarize(rows)
    print(table(summary), file=sys.stderr)
    result = {
        "benchmark": "stage_latency",
        **summary,
        "decide_over_prefill": summary["all"]["decide_over_prefill"],
        "scorer": scorer.model_id,
        "context_tokens": args.context_tokens,
        "candidate_pages": len(every),
        "token_budget": stage.token_budget,
        "rungs": [rung.label for rung in stage.rungs],
        "prefill": "one score request: prompt = the page, continuation = one token",
        "kv_cache": "emptied before every timed call",
        "seed": args.seed,
        "wall_s": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "command": "uv run python bench/stage_latency.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

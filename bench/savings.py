"""Savings a user can see: forwarded tokens and evidence kept, per workload, for every arm.

Workloads (``ib_middleware.lab.workloads``; a seeded spread sample of each):

- ``search_page``: ten HotpotQA search results as one results page (one item);
- ``search_items``: the same ten results as ten items of one tool output (one group: the
  token budget applies to the output as a whole, so every result is judged);
- ``filing_pages``: FinanceBench pages, windows of them, and other filings' pages.

Arms, each on the same items, with tokens counted by the scorer's tokenizer (Gemma-3-270M):

- ``stage``: the configured stage (``StageConfig.load(--config)``: by default the shipped
  ladder and policy), ``stage.run`` on the items;
- ``rung:<name>``: each rung alone, always forwarded (no judge): what the rung's compressor
  makes of every item the stage works on;
- ``bm25``: plain BM25 selection of whole segments (no titles, headers or hop) at the tokens
  the stage forwarded for that item;
- ``truncation``: the item's first tokens, as many as the stage forwarded for it;
- ``summarization``: LangChain v1 ``SummarizationMiddleware`` in a real ``create_agent`` with
  the embedded SmolLM2-135M as summarizer (``bench/peers.py``'s arm; the items of a search
  output are one tool message); skipped under ``--quick`` unless ``--summarization``;
- ``none``: every item whole.

Items the stage passes through (under its budget) are passed through by every arm.
Containment: the share of the cases needing evidence whose forwarded text keeps it (the
workload's judge: every supporting sentence and the answer for search results, every needed
figure for filing pages; for items, every result holding a supporting fact must keep it), with
a 95% bootstrap interval over cases. Decision latency: per item the stage worked on, the
stage's time on it against one prefill of it by the scorer (KV cache emptied before each).
``guarantee``: the policy's finite-sample guarantee for the workload, when its policy has one.
The table goes to stderr; the last line of stdout is one JSON object.

Run: uv run python bench/savings.py [--quick] [--cases 20]
Data: HotpotQA (Yang et al., 2018; CC BY-SA 4.0) and FinanceBench (Islam et al., 2023;
CC BY-NC 4.0) samples, bundled with the package.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from _sampling import spread_sample
from peers import GeneratorChatModel, SummarizationArm, bootstrap_mean, truncate_tokens

from ib_middleware.build import build_stage
from ib_middleware.config import StageConfig
from ib_middleware.engines import ScoreRequest, TokenCounter
from ib_middleware.lab.workloads import WorkloadCase, filing_page_cases, search_result_cases
from ib_middleware.policy import Policy
from ib_middleware.results import ContextItem, StageResult
from ib_middleware.selection import SegmentCompressor
from ib_middleware.stage import CompressionStage

QUICK_CASES = {"search_page": 4, "search_items": 2, "filing_pages": 6}
LATENCY_ITEMS = 8
DEFAULT_CASES = 20
WORKLOAD_OF = {
    "search_page": "search_results",
    "search_items": "search_results",
    "filing_pages": "filing_pages",
}
PREFILL_CONTINUATION = "\n"


@dataclass(frozen=True)
class Unit:
    """One stage call: the items of one tool output (a page, or ten results) and its query."""

    workload: str
    query: str
    cases: tuple[WorkloadCase, ...]

    @property
    def needs_evidence(self) -> bool:
        """Whether any item needs evidence (a unit that needs none cannot lose any)."""
        return any(case.needs_evidence for case in self.cases)

    def contained(self, texts: Sequence[str]) -> bool:
        """Whether every item's forwarded text keeps what it needs."""
        return all(case.contained(text) for case, text in zip(self.cases, texts, strict=True))


def load_units(wanted: dict[str, int], seed: int) -> dict[str, list[Unit]]:
    """A seeded spread sample of each workload's units."""
    pages = [Unit("search_page", c.query, (c,)) for c in search_result_cases("page")]
    by_question: dict[str, list[WorkloadCase]] = {}
    for case in search_result_cases("items"):
        by_question.setdefault(case.group, []).append(case)
    items = [Unit("search_items", c[0].query, tuple(c)) for c in by_question.values()]
    filings = [Unit("filing_pages", c.query, (c,)) for c in filing_page_cases()]
    every = {"search_page": pages, "search_items": items, "filing_pages": filings}
    return {
        name: [units[i] for i in spread_sample(len(units), wanted[name], seed)]
        for name, units in every.items()
    }


def _items(unit: Unit) -> list[ContextItem]:
    group = unit.cases[0].group if len(unit.cases) > 1 else None
    return [ContextItem(case.context, source="search", group=group) for case in unit.cases]


def bm25_at(counter: TokenCounter, text: str, query: str, tokens: int) -> str:
    """Plain BM25 selection of whole segments within ``tokens`` (the item when it fits)."""
    if counter.count_tokens(text) <= tokens:
        return text
    compressor = SegmentCompressor(
        budget_tokens=max(1, tokens), max_segments=None, relative_score=0.0, token_counter=counter
    )
    return compressor.compress(text, query).text


def run_unit(
    unit: Unit,
    stage: CompressionStage,
    summarization: Callable[[str, str], Any] | None,
) -> dict[str, Any]:
    """Every arm's forwarded texts for one unit, with the stage's decisions and times."""
    counter = stage.token_counter
    started = time.perf_counter()
    results: list[StageResult] = stage.run(_items(unit), unit.query)
    stage_wall = time.perf_counter() - started
    raws = [case.context for case in unit.cases]
    worked = [result.decision != "passthrough" for result in results]
    arms: dict[str, list[str]] = {"stage": [result.text for result in results], "none": raws}
    for index, rung in enumerate(stage.rungs):
        arms[f"rung:{rung.label}"] = [
            rung.compressor.compress(raw, unit.query).text if work else raw
            for raw, work in zip(raws, worked, strict=True)
        ]
        del index
    budgets = [result.output_tokens for result in results]
    arms["bm25"] = [
        bm25_at(counter, raw, unit.query, budget) if work else raw
        for raw, budget, work in zip(raws, budgets, worked, strict=True)
    ]
    arms["truncation"] = [
        truncate_tokens(counter, raw, budget) if work else raw
        for raw, budget, work in zip(raws, budgets, worked, strict=True)
    ]
    summarized: dict[str, Any] = {}
    if summarization is not None:
        whole = "\n\n".join(raws)
        forwarded = summarization(whole, unit.query)
        summarized = {"text": forwarded.text, "wall_s": forwarded.wall_s}
    row: dict[str, Any] = {
        "workload": unit.workload,
        "needs_evidence": unit.needs_evidence,
        "raw_tokens": sum(counter.count_tokens(raw) for raw in raws),
        "decisions": [result.decision for result in results],
        "stage_wall_s": stage_wall,
        "item_wall_s": [r.wall_s for r, work in zip(results, worked, strict=True) if work],
        "arms": {},
    }
    for name, texts in arms.items():
        row["arms"][name] = {
            "tokens": sum(counter.count_tokens(text) for text in texts),
            "contained": unit.contained(texts),
        }
    if summarized:
        row["arms"]["summarization"] = {
            "tokens": counter.count_tokens(summarized["text"]),
            # One summary stands for every item: it must keep what each of them needs.
            "contained": all(case.contained(summarized["text"]) for case in unit.cases),
        }
    row["worked_items"] = [
        case.context for case, work in zip(unit.cases, worked, strict=True) if work
    ]
    return row


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


def summarize_workload(rows: Sequence[dict[str, Any]], *, seed: int = 0) -> dict[str, Any]:
    """Per arm: forwarded fraction and containment with its 95% bootstrap interval."""
    raw = sum(row["raw_tokens"] for row in rows)
    needing = [row for row in rows if row["needs_evidence"]]
    arms: dict[str, Any] = {}
    for name in rows[0]["arms"] if rows else ():
        tokens = sum(row["arms"][name]["tokens"] for row in rows)
        share, low, high = bootstrap_mean(
            [float(row["arms"][name]["contained"]) for row in needing], seed=seed
        )
        arms[name] = {
            "forwarded_fraction": _rounded(tokens / raw if raw else None),
            "containment": _rounded(share),
            "containment_ci": [_rounded(low), _rounded(high)],
        }
    return {
        "n_cases": len(rows),
        "n_needing_evidence": len(needing),
        "raw_tokens": raw,
        "decisions": dict(Counter(d for row in rows for d in row["decisions"])),
        "arms": arms,
    }


def latency(
    rows: Sequence[dict[str, Any]], prefill: Callable[[str], float]
) -> dict[str, float | int | None]:
    """Median decision time per item the stage worked on, against one prefill of it.

    At most ``LATENCY_ITEMS`` items, spread over the workload, are prefilled.
    """
    pairs = [
        (wall, text)
        for row in rows
        for wall, text in zip(row["item_wall_s"], row["worked_items"], strict=True)
    ]
    pairs = [pairs[i] for i in spread_sample(len(pairs), LATENCY_ITEMS, 0)]
    decide = [wall for wall, _ in pairs]
    pre = [prefill(text) for _, text in pairs]
    if not decide or not pre:
        return {"n_items": 0, "median_decide_s": None, "median_prefill_s": None, "ratio": None}
    ratios = [d / p for d, p in zip(decide, pre, strict=True) if p > 0]
    return {
        "n_items": len(decide),
        "median_decide_s": _rounded(statistics.median(decide), 4),
        "median_prefill_s": _rounded(statistics.median(pre), 4),
        "median_decide_over_prefill": _rounded(statistics.median(ratios)) if ratios else None,
    }


def guarantee(policy: Policy | None, workload: str) -> Any:
    """The policy's guarantee for ``workload`` (None when the policy states none)."""
    stated: dict[str, Any] = getattr(policy, "guarantee", None) or {}
    found = stated.get(WORKLOAD_OF[workload]) or stated.get(workload)
    dump = getattr(found, "model_dump", None)
    return dump(mode="json") if callable(dump) else found


def table(summary: dict[str, Any]) -> str:
    """One block per workload: every arm's forwarded fraction and containment."""
    lines = []
    for name, workload in summary.items():
        lines.append(
            f"{name}: {workload['n_cases']} cases ({workload['n_needing_evidence']} need "
            f"evidence), decisions {workload['decisions']}"
        )
        for arm, cell in workload["arms"].items():
            low, high = cell["containment_ci"]
            kept = "-" if cell["containment"] is None else f"{cell['containment']:.2f}"
            interval = "" if low is None else f" [{low:.2f}, {high:.2f}]"
            lines.append(
                f"  {arm:28s} forwarded {cell['forwarded_fraction']:.3f}  kept {kept}{interval}"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few cases per workload")
    parser.add_argument("--cases", type=int, default=DEFAULT_CASES, help="cases per workload")
    parser.add_argument("--summarization", action="store_true", help="the LangChain arm in --quick")
    parser.add_argument("--config", default=None, help="stage config file (default: shipped)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = StageConfig.load(args.config)
    stage = build_stage(config)
    policy = Policy.load(config.policy) if config.policy is not None else None
    wanted = dict(QUICK_CASES) if args.quick else dict.fromkeys(QUICK_CASES, args.cases)
    units = load_units(wanted, args.seed)
    scorer: Any = getattr(stage.estimator, "scorer", None)
    summarization = None
    summarizer_model = None
    if args.summarization or not args.quick:
        from ib_integrations.llamacpp import LlamaCppEngine  # noqa: PLC0415  # only when asked

        smollm2 = LlamaCppEngine.smollm2(n_ctx=8192)
        summarizer_model = smollm2.model_id
        chat = GeneratorChatModel(
            generator=smollm2, max_tokens=256, profile={"max_input_tokens": 8192 - 256}
        )
        summarization = SummarizationArm(chat, trigger_tokens=stage.token_budget)

    def prefill(text: str) -> float:
        if scorer is None or not hasattr(scorer, "score"):
            return float("nan")
        if hasattr(scorer, "clear_cache"):
            scorer.clear_cache()
        began = time.perf_counter()
        scorer.score([ScoreRequest(text, PREFILL_CONTINUATION)])
        return time.perf_counter() - began

    summary: dict[str, Any] = {}
    for name, chosen in units.items():
        rows = []
        for number, unit in enumerate(chosen, start=1):
            row = run_unit(unit, stage, summarization)
            rows.append(row)
            cells = " ".join(
                f"{arm}={cell['tokens']}{'+' if cell['contained'] else '-'}"
                for arm, cell in row["arms"].items()
            )
            print(f"[{name} {number}/{len(chosen)}] {row['decisions']} {cells}", file=sys.stderr)
        summary[name] = summarize_workload(rows, seed=args.seed)
        summary[name]["latency"] = latency(rows, prefill)
        stage_cell = summary[name]["arms"]["stage"]
        summary[name].update(
            {
                "forwarded_fraction": stage_cell["forwarded_fraction"],
                "containment": stage_cell["containment"],
                "containment_ci": stage_cell["containment_ci"],
                "guarantee": guarantee(policy, name),
            }
        )
    print(table(summary), file=sys.stderr)
    result = {
        "benchmark": "savings",
        "workloads": summary,
        "stage": {
            "token_budget": stage.token_budget,
            "rungs": [rung.label for rung in stage.rungs],
            "policy": config.policy.name if config.policy is not None else None,
            "prune_below": stage.prune_below,
        },
        "token_counter": getattr(scorer, "model_id", type(stage.token_counter).__name__),
        "summarizer": summarizer_model,
        "cases": wanted,
        "seed": args.seed,
        "wall_s": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "command": "uv run python bench/savings.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

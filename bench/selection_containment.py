"""Evidence containment of segment selection at fixed budgets, model-free, on both workloads.

Each arm selects from every case at a fixed share of the item's tokens (10%, 25%, 50%; tokens
counted as about four characters each) and the workload's judge says whether the selection
keeps what the question needs (``ib_middleware.lab.workloads``):

- ``search page``: the 27 HotpotQA questions as one results page; every supporting sentence
  (and the answer string) must survive;
- ``search items``: the same results as ten separate items, each selected at the share of its
  own tokens; a question counts as contained when every result holding a supporting fact kept
  its sentences (the others need nothing);
- ``filing pages``: the FinanceBench pages and windows that need evidence; the needed figures
  must survive.

Arms (``ib_middleware.selection.SegmentCompressor`` options): ``today`` (at most 4 segments,
each scoring at least 0.6 of the best); ``share`` (no segment cap, no relative cut: the budget
share alone decides); ``share`` plus each improvement alone (``+context``: block title and
table header words in the ranked text; ``+facets``: a segment for every year, name and metric
word of the query the page has; ``+hop``: a second ranking with the two best segments' names
added to the query); ``all`` (the three), and ``all`` without each one; and ``truncation``
(the item's first tokens) for reference. Rows are always whole and keep their table's header
(the splitter's rule), so that is in every arm.

The table goes to stderr (and, with --markdown, as Markdown to stdout); the last line of stdout
is one JSON object.

Run: uv run python bench/selection_containment.py [--markdown]
Data: HotpotQA (Yang et al., 2018; CC BY-SA 4.0) and FinanceBench (Islam et al., 2023;
CC BY-NC 4.0) samples, bundled with the package.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from ib_middleware.compressors import ApproximateTokenCounter
from ib_middleware.lab.workloads import WorkloadCase, filing_page_cases, search_result_cases
from ib_middleware.selection import SegmentCompressor

SHARES = (0.10, 0.25, 0.50)
IMPROVEMENTS = {"context": "context_words", "facets": "cover_facets", "hop": "second_hop"}
COUNTER = ApproximateTokenCounter()


def arms() -> dict[str, dict[str, Any]]:
    """Every arm's ``SegmentCompressor`` options (the budget share is added per share)."""
    share: dict[str, Any] = {"max_segments": None, "relative_score": 0.0}
    every = dict.fromkeys(IMPROVEMENTS.values(), True)
    out: dict[str, dict[str, Any]] = {
        "today": {"max_segments": 4, "relative_score": 0.6},
        "share": share,
    }
    for name, flag in IMPROVEMENTS.items():
        out[f"share+{name}"] = {**share, flag: True}
    out["all"] = {**share, **every}
    for name, flag in IMPROVEMENTS.items():
        out[f"all-{name}"] = {**share, **every, flag: False}
    return out


def truncate(text: str, share: float) -> str:
    """The head of ``text`` holding about ``share`` of its tokens."""
    return text[: max(1, int(len(text) * share))]


def selector(options: dict[str, Any] | None, share: float) -> Callable[[str, str], str]:
    """What one arm forwards for a (context, query) at ``share`` of the context's tokens."""
    if options is None:
        return lambda context, query: truncate(context, share)
    compressor = SegmentCompressor(budget_tokens=1, budget_share=share, **options)
    return lambda context, query: compressor.compress(context, query).text


def workloads() -> dict[str, list[WorkloadCase]]:
    """The cases of each workload that need evidence (items: every item of a question)."""
    return {
        "search_page": search_result_cases("page"),
        "search_items": search_result_cases("items"),
        "filing_pages": [case for case in filing_page_cases() if case.needs_evidence],
    }


def containment(
    cases: Sequence[WorkloadCase], forward: Callable[[str, str], str]
) -> tuple[float, float]:
    """Share of questions (items: all of a question's needing items) kept, and tokens forwarded."""
    kept: dict[str, bool] = defaultdict(lambda: True)
    raw = sent = 0
    for case in cases:
        text = forward(case.context, case.query)
        raw += COUNTER.count_tokens(case.context)
        sent += COUNTER.count_tokens(text)
        kept[case.case_id if case.shape != "items" else case.group] &= case.contained(text)
    return sum(kept.values()) / len(kept), sent / raw


def measure() -> dict[str, Any]:
    """Containment and forwarded share of every arm at every share on every workload."""
    options: dict[str, dict[str, Any] | None] = {**arms(), "truncation": None}
    results: dict[str, Any] = {}
    for workload, cases in workloads().items():
        results[workload] = {}
        for arm, settings in options.items():
            results[workload][arm] = {}
            for share in SHARES:
                kept, sent = containment(cases, selector(settings, share))
                results[workload][arm][f"{share:.2f}"] = {
                    "containment": round(kept, 3),
                    "forwarded": round(sent, 3),
                }
    return results


def markdown(results: dict[str, Any]) -> str:
    """One Markdown table: an arm per row, a (workload, share) per column."""
    shares = [f"{share:.2f}" for share in SHARES]
    columns = [(w, s) for w in results for s in shares]
    head = "| arm | " + " | ".join(f"{w.replace('_', ' ')} {s}" for w, s in columns) + " |"
    rule = "| --- |" + " ---: |" * len(columns)
    lines = [head, rule]
    for arm in next(iter(results.values())):
        cells = []
        for workload, share in columns:
            cell = results[workload][arm][share]
            cells.append(f"{cell['containment']:.2f} ({cell['forwarded']:.2f})")
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="also print the Markdown table")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = measure()
    table = markdown(results)
    print("containment (forwarded share of tokens) at each budget share", file=sys.stderr)
    print(table, file=sys.stderr)
    if args.markdown:
        print(table)
    summary = {
        "benchmark": "selection_containment",
        "shares": list(SHARES),
        "workloads": results,
        "token_counter": "about four characters a token",
        "wall_s": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "command": "uv run python bench/selection_containment.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

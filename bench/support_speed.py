"""How long the support check takes per compression, against baselines timed in the same run.

For each bundled FinanceBench case (75 pages, CC BY-NC 4.0, see the data README), the segments
rung's compression is reworded ("Reportedly, " opens every line, so no line is a verbatim quote
and every figure is placed by cell) and checked with ``routing.check_support``:

- ``cold``: the page parsed for this check (its cell cache cleared first);
- ``warm``: the page already parsed (the next rung of the same page's ladder);

against ``bare``: the old-style check that only looks each figure's bare value up among the
page's numbers, and ``split``: one ``split_segments`` of the page. Prints one JSON line with
median milliseconds per check, per 1,000 page tokens (about 4 characters a token), and ratios.

Run: ``uv run python bench/support_speed.py``
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable
from functools import partial

from ib_middleware.judging.cells import read_page
from ib_middleware.judging.names import vocabulary
from ib_middleware.judging.routing import check_support
from ib_middleware.lab.data import load_financebench
from ib_middleware.segments import split_segments
from ib_middleware.selection import SegmentCompressor

_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
REPEATS = 5


def _bare(compression: str, context: str) -> list[str]:
    """The old-style check: figures whose bare value the page does not hold anywhere."""
    values = {match.group(0).replace(",", "") for match in _NUMBER.finditer(context)}
    return [
        match.group(0)
        for match in _NUMBER.finditer(compression)
        if match.group(0).replace(",", "") not in values
    ]


def _time(call: Callable[[], object], before: Callable[[], object] | None = None) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        if before is not None:
            before()
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def _clear() -> None:
    read_page.cache_clear()
    vocabulary.cache_clear()


def main() -> None:
    """Time every check and print the JSON line."""
    cold, warm, bare, split, per_1k = [], [], [], [], []
    compressor = SegmentCompressor()
    for case in load_financebench():
        context = "\n\n".join(case.pages)
        text = compressor.compress(context, case.query).text
        reworded = "\n".join(f"Reportedly, {line}" for line in text.splitlines() if line.strip())

        check = partial(check_support, reworded, context, case.query)
        cold_ms = _time(check, _clear)
        cold.append(cold_ms)
        warm.append(_time(check))
        bare.append(_time(partial(_bare, reworded, context)))
        split.append(_time(partial(split_segments, context)))
        per_1k.append(cold_ms / (len(context) / 4 / 1000))
    median = statistics.median
    print(
        json.dumps(
            {
                "benchmark": "support_speed",
                "pages": len(cold),
                "median_ms_cold": round(median(cold), 3),
                "median_ms_warm": round(median(warm), 3),
                "median_ms_cold_per_1k_tokens": round(median(per_1k), 3),
                "max_ms_cold": round(max(cold), 3),
                "median_ms_bare_value_baseline": round(median(bare), 3),
                "median_ms_split_segments_baseline": round(median(split), 3),
                "cold_over_split_segments": round(median(cold) / median(split), 2),
                "warm_over_bare_value": round(median(warm) / median(bare), 2),
                "target_ms_per_1k_tokens": 20.0,
            }
        )
    )


if __name__ == "__main__":
    main()

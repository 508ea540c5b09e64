"""Which per-compression signal tells a compression that kept the evidence from one that did not?

Builds compressions of known quality from labelled cases (``ib_middleware.lab.graded``: keep
kinds such as the evidence verbatim, lose kinds such as a figure swapped for another figure of
the same page) and scores every one with each online signal and, in the same run, with free
baselines. For each signal and each lose kind it prints the AUC of keep against that kind, with
a 95% bootstrap interval over cases.

Signals (the scorer is the default stage's, the embedded Gemma-3-270M):
- ``relevant_pmi+support`` (the default stage's rule): the share of the query-relevant part of
  the page that z explains, and minus infinity when z states a figure or name the page does
  not, or places a figure on another row (``routing.check_support``);
- ``relevant_pmi``: the same share without the support check; ``relevant_pmi_bpt``: its bits per
  token of z;
- ``support``: the support check alone (1 or 0);
- ``cxmi`` and ``cxmi+support``: CXMI bits per token (scored on the first ``--cxmi-cases`` cases
  only: each compression costs a prefill of the whole page);
- baselines: ``length`` (tokens of z), ``overlap`` (share of z's words found in the page) and
  ``bm25`` (BM25 of z for the query). A baseline's AUC is taken in its better direction for each
  kind, which favours the baselines.

The last line is one JSON object: ``default_signal``, ``min_auc``, ``auc_by_kind``,
``auc_ci_by_kind``, ``best_baseline_auc_by_kind``, ``n_cases``, every signal's AUCs, timings
and the machine.

Run: uv run python bench/signal_quality.py [--quick] [--data cases.jsonl]
Data: FinanceBench sample (Islam et al., 2023; CC BY-NC 4.0), bundled with the package.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable

from ib_estimators import roc_auc

from ib_middleware.build import EngineCache
from ib_middleware.config import StageConfig
from ib_middleware.lab.data import financebench_path
from ib_middleware.lab.graded import (
    LOSE_KINDS,
    GradedCase,
    GradedCompression,
    graded_compressions,
    load_graded_cases,
)
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.relevance import RelevantInformationEstimator
from ib_middleware.judging.routing import check_support, signal
from ib_middleware.segments import bm25_scores

QUICK_CASES = 10
BASELINES = ("length", "overlap", "bm25")
_WORD = re.compile(r"\w+")


def _overlap(text: str, context: str) -> float:
    words = [w.lower() for w in _WORD.findall(text)]
    page = {w.lower() for w in _WORD.findall(context)}
    return sum(w in page for w in words) / len(words) if words else 0.0


def _score_all(
    cases: list[GradedCase],
    compressions: list[GradedCompression],
    *,
    cxmi_cases: int,
    progress: Callable[[str], None],
) -> tuple[list[dict[str, float]], dict[str, float]]:
    config = StageConfig(policy=None)
    scorer = EngineCache().get(config.estimator.scorer)
    relevant = RelevantInformationEstimator(
        scorer, relevant_segments=config.estimator.relevant_segments
    )
    cxmi = CXMIEstimator(scorer)
    by_id = {case.case_id: case for case in cases}
    cxmi_ids = {case.case_id for case in cases[:cxmi_cases]}
    timings: dict[str, list[float]] = defaultdict(list)
    rows = []
    for number, item in enumerate(compressions, start=1):
        case = by_id[item.case_id]
        spans, _ = check_support(item.text, case.context, case.query)
        supported = not spans
        started = time.perf_counter()
        estimate = relevant.estimate(case.context, case.query, item.text)
        timings["relevant_pmi"].append(time.perf_counter() - started)
        share, _ = signal(estimate)
        row = {
            "relevant_pmi": share,
            "relevant_pmi_bpt": estimate.bits_per_token,
            "relevant_pmi+support": share if supported else -math.inf,
            "support": 1.0 if supported else 0.0,
            "length": float(estimate.n_tokens),
            "overlap": _overlap(item.text, case.context),
            "bm25": bm25_scores([item.text, case.context], case.query)[0],
        }
        if item.case_id in cxmi_ids:
            started = time.perf_counter()
            value = cxmi.estimate(case.context, case.query, item.text).bits_per_token
            timings["cxmi"].append(time.perf_counter() - started)
            row["cxmi"] = value
            row["cxmi+support"] = value if supported else -math.inf
        rows.append(row)
        if number % 25 == 0:
            progress(f"{number}/{len(compressions)} compressions scored")
    return rows, {name: sum(v) / len(v) for name, v in timings.items() if v}


def _aucs(
    compressions: list[GradedCompression], rows: list[dict[str, float]], name: str
) -> dict[str, tuple[float, float, float, int]]:
    out = {}
    for kind in LOSE_KINDS:
        chosen = [
            (item, row)
            for item, row in zip(compressions, rows, strict=True)
            if name in row and (item.keep or item.kind == kind)
        ]
        if not any(item.kind == kind for item, _ in chosen):
            continue
        estimate = roc_auc(
            [row[name] for _, row in chosen],
            [item.keep for item, _ in chosen],
            groups=[item.case_id for item, _ in chosen],
        )
        auc, low, high = estimate.auc, estimate.ci_low, estimate.ci_high
        if name in BASELINES and auc < 0.5:
            auc, low, high = 1.0 - auc, 1.0 - high, 1.0 - low
        out[kind] = (auc, low, high, estimate.n_negative)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="JSON Lines of context, query, evidence (or FinanceBench)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_CASES} cases (minutes)")
    parser.add_argument("--cases", type=int, help="use N cases spread evenly over the data")
    parser.add_argument("--cxmi-cases", type=int, help="cases CXMI is scored on (slow)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cases = load_graded_cases(args.data or financebench_path())
    wanted = QUICK_CASES if args.quick else args.cases
    if wanted:
        step = max(1, len(cases) // wanted)
        cases = cases[::step][:wanted]
    cxmi_cases = args.cxmi_cases if args.cxmi_cases is not None else (1 if args.quick else 6)
    compressions = graded_compressions(cases, seed=args.seed)
    print(f"{len(cases)} cases, {len(compressions)} graded compressions", file=sys.stderr)
    started = time.perf_counter()
    rows, timings = _score_all(
        cases,
        compressions,
        cxmi_cases=cxmi_cases,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    names = [
        "relevant_pmi+support",
        "relevant_pmi",
        "relevant_pmi_bpt",
        "support",
        "cxmi+support",
        "cxmi",
        *BASELINES,
    ]
    table = {name: _aucs(compressions, rows, name) for name in names}
    kinds = [kind for kind in LOSE_KINDS if kind in table["relevant_pmi+support"]]
    print(f"{'signal':22s}" + "".join(f"{kind[:13]:>15s}" for kind in kinds))
    for name in names:
        cells = "".join(
            f"{table[name][kind][0]:>15.3f}" if kind in table[name] else f"{'-':>15s}"
            for kind in kinds
        )
        print(f"{name:22s}{cells}")
    default = "relevant_pmi+support"
    auc_by_kind = {kind: round(table[default][kind][0], 3) for kind in kinds}
    best_baseline = {
        kind: round(max(table[b][kind][0] for b in BASELINES if kind in table[b]), 3)
        for kind in kinds
    }
    unsupported_passing = sum(
        1
        for item, row in zip(compressions, rows, strict=True)
        if item.kind == "figures_altered" and math.isfinite(row[default])
    )
    result = {
        "benchmark": "signal_quality",
        "default_signal": default,
        "min_auc": round(min(auc_by_kind.values()), 3),
        "auc_by_kind": auc_by_kind,
        "auc_ci_by_kind": {
            kind: [round(table[default][kind][1], 3), round(table[default][kind][2], 3)]
            for kind in kinds
        },
        "best_baseline_auc_by_kind": best_baseline,
        "margin_over_best_baseline": {
            kind: round(auc_by_kind[kind] - best_baseline[kind], 3) for kind in kinds
        },
        "signals": {
            name: {kind: round(cell[0], 3) for kind, cell in table[name].items()} for name in names
        },
        "altered_figures_passing_support": unsupported_passing,
        "n_cases": len(cases),
        "n_cxmi_cases": min(cxmi_cases, len(cases)),
        "n_compressions": len(compressions),
        "n_by_kind": {kind: table[default][kind][3] for kind in kinds},
        "scoring_s_per_compression": {k: round(v, 3) for k, v in timings.items()},
        "wall_s": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "command": "uv run python bench/signal_quality.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

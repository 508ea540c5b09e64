"""Which per-compression signal tells a compression that kept the evidence from one that did not?

Builds compressions of known quality from labelled cases (``ib_middleware.lab.graded``: keep
kinds such as the evidence verbatim or an abstractive paraphrase of its row, lose kinds such as
a figure swapped for another column of the same row) and scores every one with each online
signal and, in the same run, with free baselines, alone and behind the same support check. For
each signal and each lose kind it prints the AUC of keep against that kind, with a 95%
bootstrap interval over cases.

Signals (the scorer is the default stage's, the embedded Gemma-3-270M):
- ``retention+support`` (the default stage's rule): the share of what the whole page tells
  about the query that z keeps, pmi(q; z) / pmi(q; x), and minus infinity when the support
  check rejects z (``routing.check_support``); ``retention`` without the check;
- ``relevant_pmi+support`` and ``relevant_pmi``: the share of s, the page's top-3 BM25
  segments, that z explains (the previous default; its witness repeats the segments rung's
  ranking);
- ``oracle+support`` and ``oracle``: the same with s = the annotated evidence (a bound no
  deployed estimator reaches: it needs the label);
- ``support``: the support check alone (1 or 0);
- ``cxmi`` and ``cxmi+support``: CXMI bits per token (first ``--cxmi-cases`` cases only);
- baselines: ``length`` (tokens of z), ``overlap`` (share of z's words found in the page) and
  ``bm25`` (BM25 of z for the query), each also behind the support check (``length+support``,
  ...). A baseline's AUC is taken in its better direction for each kind, which favours them.

The last line is one JSON object: ``default_signal``, ``min_auc``, ``auc_by_kind``,
``auc_ci_by_kind``, ``best_baseline_auc_by_kind``, ``best_baseline_with_support_auc_by_kind``,
``margin_over_best_baseline`` (against the better of the two), ``n_cases``, every signal's
AUCs, timings and the machine.

Run: uv run python bench/signal_quality.py [--quick] [--cases N] [--signals retention,oracle]
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
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.relevance import RelevantInformationEstimator
from ib_middleware.judging.routing import check_support
from ib_middleware.lab.data import financebench_path
from ib_middleware.lab.graded import (
    LOSE_KINDS,
    GradedCase,
    GradedCompression,
    graded_compressions,
    load_graded_cases,
)
from ib_middleware.segments import bm25_scores, join_segments

QUICK_CASES = 10
BASELINES = ("length", "overlap", "bm25")
SUPPORTED_BASELINES = tuple(f"{name}+support" for name in BASELINES)
ESTIMATES = ("retention", "relevant_pmi", "oracle")
_WORD = re.compile(r"\w+")


def _overlap(text: str, context: str) -> float:
    words = [w.lower() for w in _WORD.findall(text)]
    page = {w.lower() for w in _WORD.findall(context)}
    return sum(w in page for w in words) / len(words) if words else 0.0


def _gated(value: float, supported: bool) -> float:
    return value if supported else -math.inf


def _score_all(
    cases: list[GradedCase],
    compressions: list[GradedCompression],
    *,
    cxmi_cases: int,
    estimates: tuple[str, ...],
    progress: Callable[[str], None],
) -> tuple[list[dict[str, float]], dict[str, float]]:
    config = StageConfig(policy=None)
    scorer = EngineCache().get(config.estimator.scorer)
    by_page = RelevantInformationEstimator(scorer, witness="page")
    by_segments = RelevantInformationEstimator(
        scorer, witness="segments", relevant_segments=config.estimator.relevant_segments
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
        row = {
            "support": 1.0 if supported else 0.0,
            "length": float(len(item.text.split())),
            "overlap": _overlap(item.text, case.context),
            "bm25": bm25_scores([item.text, case.context], case.query)[0],
        }
        for name in BASELINES:
            row[f"{name}+support"] = _gated(row[name], supported)
        for name in estimates:
            started = time.perf_counter()
            if name == "retention":
                value = by_page.estimate(case.context, case.query, item.text).retention
            else:
                evidence = join_segments(case.evidence, with_headers=False)
                witness = evidence if name == "oracle" else None
                estimate = by_segments.estimate(
                    case.context, case.query, item.text, relevant=witness
                )
                value = estimate.relevant_fraction
            timings[name].append(time.perf_counter() - started)
            row[name] = float(value if value is not None else 0.0)
            row[f"{name}+support"] = _gated(row[name], supported)
        if item.case_id in cxmi_ids:
            started = time.perf_counter()
            bpt = cxmi.estimate(case.context, case.query, item.text).bits_per_token
            timings["cxmi"].append(time.perf_counter() - started)
            row["cxmi"] = bpt
            row["cxmi+support"] = _gated(bpt, supported)
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
        if name in BASELINES + SUPPORTED_BASELINES and auc < 0.5:
            auc, low, high = 1.0 - auc, 1.0 - high, 1.0 - low
        out[kind] = (auc, low, high, estimate.n_negative)
    return out


def _best(
    table: dict[str, dict[str, tuple[float, float, float, int]]],
    names: tuple[str, ...],
    kinds: list[str],
) -> dict[str, float]:
    return {
        kind: round(max(table[name][kind][0] for name in names if kind in table[name]), 3)
        for kind in kinds
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="JSON Lines of context, query, evidence (or FinanceBench)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_CASES} cases (minutes)")
    parser.add_argument("--cases", type=int, help="use N cases spread evenly over the data")
    parser.add_argument("--cxmi-cases", type=int, help="cases CXMI is scored on (slow)")
    parser.add_argument(
        "--signals",
        default=",".join(ESTIMATES),
        help="estimates to score, of " + ", ".join(ESTIMATES) + " (the default's is always in)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cases = load_graded_cases(args.data or financebench_path())
    wanted = QUICK_CASES if args.quick else args.cases
    if wanted:
        step = max(1, len(cases) // wanted)
        cases = cases[::step][:wanted]
    cxmi_cases = args.cxmi_cases if args.cxmi_cases is not None else (0 if args.quick else 3)
    default_estimate = "retention" if StageConfig().estimator.witness == "page" else "relevant_pmi"
    estimates = tuple(
        name
        for name in ESTIMATES
        if name in {default_estimate, *(part.strip() for part in args.signals.split(","))}
    )
    compressions = graded_compressions(cases, seed=args.seed)
    print(f"{len(cases)} cases, {len(compressions)} graded compressions", file=sys.stderr)
    started = time.perf_counter()
    rows, timings = _score_all(
        cases,
        compressions,
        cxmi_cases=cxmi_cases,
        estimates=estimates,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    names = [
        *(f"{name}+support" for name in estimates),
        *estimates,
        "support",
        *(("cxmi+support", "cxmi") if cxmi_cases else ()),
        *BASELINES,
        *SUPPORTED_BASELINES,
    ]
    table = {name: _aucs(compressions, rows, name) for name in names}
    default = f"{default_estimate}+support"
    kinds = [kind for kind in LOSE_KINDS if kind in table[default]]
    print(f"{'signal':22s}" + "".join(f"{kind[:13]:>15s}" for kind in kinds))
    for name in names:
        cells = "".join(
            f"{table[name][kind][0]:>15.3f}" if kind in table[name] else f"{'-':>15s}"
            for kind in kinds
        )
        print(f"{name:22s}{cells}")
    auc_by_kind = {kind: round(table[default][kind][0], 3) for kind in kinds}
    best_baseline = _best(table, BASELINES, kinds)
    best_with_support = _best(table, SUPPORTED_BASELINES, kinds)
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
        "best_baseline_with_support_auc_by_kind": best_with_support,
        "margin_over_best_baseline": {
            kind: round(auc_by_kind[kind] - max(best_baseline[kind], best_with_support[kind]), 3)
            for kind in kinds
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

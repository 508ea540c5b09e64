"""A synthetic measured table for calibration tests: two workloads, a graded ladder."""

from __future__ import annotations

import random

from ib_middleware.lab.calibration import CaseRecord, RungOutcome


def synthetic(n_questions=60, seed=0, passthrough_share=0.1):
    """Two workloads, three rungs of growing size; a good compression scores higher."""
    rng = random.Random(seed)
    rows = []
    for q in range(n_questions):
        workload = "search_results" if q % 2 else "filing_pages"
        document = f"doc{q // 2}"  # two questions share each document
        for variant in ("page", "window", "distractor"):
            needs = variant != "distractor"
            outcomes = []
            for k, tokens in enumerate((40, 90, 200)):
                good = rng.random() < 0.35 + 0.3 * k
                signal = min(1.0, max(0.0, rng.gauss(0.75 if good else 0.45, 0.12)))
                fraction = rng.uniform(0.05, 0.4) if needs else rng.uniform(0.0, 0.02)
                outcomes.append(RungOutcome(signal, good or not needs, tokens, None, fraction))
            keys = f"document:other{q}" if not needs else f"question:{q}|document:{document}"
            rows.append(
                CaseRecord(
                    f"{q}/{variant}",
                    500,
                    True,
                    tuple(outcomes),
                    needs_evidence=needs,
                    group=keys,
                    note_tokens=12,
                    workload=workload,
                    passthrough=variant == "window" and rng.random() < passthrough_share,
                )
            )
    return rows

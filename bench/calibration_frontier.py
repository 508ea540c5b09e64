"""Held-out containment against forwarded tokens at several distortion targets, from one table.

Calibration measures every case once (the model runs); the policy for any target is then a pure
replay of that table (``ib_middleware.lab.calibration.build_policy``: 5-fold cross-validation by
group, 95% group-bootstrap intervals, the gate shipped only when its held-out distortion meets
the target). This script replays the table written by ``ib-middleware calibrate --records`` at
each target and prints one row per target, then one JSON line.

Run:
    ib-middleware calibrate --data evidence --target-distortion 0.04 --records table.jsonl
    uv run python bench/calibration_frontier.py table.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ib_middleware.lab.calibration import build_policy
from ib_middleware.lab.calibration.records import load_records

TARGETS = (0.02, 0.04, 0.05, 0.10, 0.15, 0.20)


def frontier_row(records: list[Any], target: float, *, bootstrap: int) -> dict[str, Any]:
    """The held-out figures of the policy calibrated for ``target`` on ``records``."""
    rung_names = [f"rung{index}" for index in range(len(records[0].rungs))]
    policy, _ = build_policy(
        records,
        rung_names=rung_names,
        estimator="replay",
        scorer="replay",
        judge="facts",
        target_kind="distortion",
        target_value=target,
        bootstrap=bootstrap,
    )
    return {
        "target_distortion": target,
        "distortion": policy.distortion,
        "containment": policy.containment,
        "containment_ci": policy.containment_ci,
        "forwarded_fraction": policy.forwarded_fraction,
        "pruned_rate": policy.pruned_rate,
        "accepted_rate": policy.accepted_rate,
        "gain_over_random": policy.gain_over_random,
        "gain_over_random_ci": policy.gain_over_random_ci,
        "gate": policy.prune_below,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", help="the measured table (calibrate --records)")
    parser.add_argument("--bootstrap", type=int, default=2000)
    args = parser.parse_args()
    records = load_records(args.records)
    rows = [frontier_row(records, target, bootstrap=args.bootstrap) for target in TARGETS]
    for row in rows:
        ci = row["containment_ci"] or [float("nan")] * 2
        print(
            f"D<={row['target_distortion']:.2f}: containment {row['containment']:.3f} "
            f"[{ci[0]:.3f}, {ci[1]:.3f}] at {row['forwarded_fraction']:.3f} of the tokens, "
            f"pruned {row['pruned_rate']:.3f}, gain over random {row['gain_over_random']:+.3f}",
            file=sys.stderr,
        )
    print(
        json.dumps(
            {
                "benchmark": "calibration_frontier",
                "n_cases": len(records),
                "rows": rows,
                "command": "uv run python bench/calibration_frontier.py " + args.records,
            }
        )
    )


if __name__ == "__main__":
    main()

"""Calibrate the routing thresholds on labelled cases, then serve with the calibrated policy.

Step 1 is what ``ib-middleware calibrate --data financebench --target-fallback 0.3 --limit N
--out policy.json`` does, written out with the library so each piece is visible: keep the
cases whose context holds the answer, run every rung on each (compress, check, estimate),
label each compression with the ``facts`` judge, sweep a common quantile of each rung's bits
per token, and pick the point closest to the target fallback rate.

Step 2 serves: a stage built with ``policy: policy.json`` (the same as
``IB_MIDDLEWARE_POLICY=policy.json``) routes cases it was not calibrated on, with the new
thresholds.

Models, all offline: the default ladder (SmolLM2-135M, then Gemma-3-270M, CXMI scored by
Gemma-3-270M, compressions capped at 96 tokens). No predictor: calibration labels the text
the predictor would receive, by whether it holds the gold answer.

A handful of cases gives a rough policy (rates move in steps of 1/N), and the example takes
the shortest ones to stay quick: the shipped default used all 21 usable cases (16 minutes).
Runtime, measured on 2 CPU cores shared with other model jobs: 3 min 16 s with
``IB_EXAMPLES_QUICK=1`` (2 calibration cases, 1 served); the default 6 and 2 take about three
times that.

    python examples/calibrate_and_serve.py [--limit 6] [--target-fallback 0.3] [--out policy.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ib_middleware.build import EngineCache, build_stage
from ib_middleware.lab.calibration import build_policy, judgeable, load_cases, measure
from ib_middleware.lab.data import financebench_path
from ib_middleware.lab.demo import demo_config
from ib_middleware.lab.judges import get_judge
from ib_middleware.policy import Policy, default_policy_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _support import quick, timed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=quick(6, 2), help="calibration cases")
    parser.add_argument("--serve", type=int, default=quick(2, 1), help="cases to serve after")
    parser.add_argument("--target-fallback", type=float, default=0.3)
    parser.add_argument("--out", type=Path, default=Path("policy.json"))
    args = parser.parse_args(argv)

    judge = get_judge("facts")
    usable = judgeable(load_cases(financebench_path()), judge)
    # The shortest cases keep the example quick; calibrate on representative traffic.
    usable.sort(key=lambda case: len(case.context))
    calibration, held_out = usable[: args.limit], usable[args.limit : args.limit + args.serve]
    engines = EngineCache()
    config = demo_config(None).model_copy(update={"policy": None})
    stage = build_stage(config, engines=engines)

    # 1. Calibrate.
    with timed(f"measured {len(calibration)} cases"):
        records = measure(stage, calibration, judge)
    policy, selection = build_policy(
        records,
        rung_names=[rung.label for rung in stage.rungs],
        estimator=stage.estimator.name,
        scorer=str(getattr(getattr(stage.estimator, "scorer", None), "model_id", "unknown")),
        judge="facts",
        target_kind="fallback",
        target_value=args.target_fallback,
    )
    policy.save(args.out)
    shipped = Policy.load(default_policy_path()).thresholds()
    print(f"policy written to {args.out}: {selection.note}")
    for name, threshold in policy.thresholds().items():
        print(f"  {name}: {threshold:.4f} bits/token (shipped default {shipped[name]:.4f})")
    print(
        f"  at this point: fallback rate {policy.fallback_rate:.2f}, distortion "
        f"{policy.distortion:.2f} on {policy.n_cases} cases"
    )

    # 2. Serve with it: the same engines, thresholds from the policy file.
    served = build_stage(config.model_copy(update={"policy": args.out}), engines=engines)
    for case in held_out:
        with timed(f"served {case.case_id}"):
            [result] = served.run([case.context], case.query)
        print(f"  {result.decision} (rung {result.rung}): {result.reason}")
        print(f"  holds the gold answer {case.answer[:60]!r}: {judge(result.text, case.answer)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Calibrate the ladder's thresholds and relevance gate on labelled traffic.

Two steps, kept apart so the second is a pure function of the first:

1. ``measure`` (in ``calibration.measure``): run every rung of a stage on every labelled case
   (compress, check, estimate) and label each compression with a judge. The result is a table
   of ``CaseRecord``: per rung the signal (None when the rung failed or its compression was
   invalid), the share of the query it explains, and whether the compression holds the answer;
   plus whether the raw context itself holds it (the fallback's label), whether the case needs
   evidence at all (a distractor page does not), its group and the pruned note's tokens.
2. Pure functions of that table (no model runs):

   - ``simulation``: replay the ladder with the run-time rule (``routing.route_action``: prune,
     accept or escalate) for candidate thresholds. Rung k's threshold is a common quantile q of
     rung k's signal over the cases that reach it (as RouteLLM calibrates its routers); the
     gate's candidates are quantiles of the observed query fractions. ``sweep`` records each
     (gate, q) point: fallback and pruned rates, distortion (1 - the correct share of all
     cases), containment (the correct share of the cases needing evidence) and the forwarded
     fraction of the input tokens; ``select_point`` picks the point for a target: the fewest
     forwarded tokens within a distortion, or the closest fallback rate.
   - ``crossval``: k-fold cross-validation over groups of cases: each fold routed by the
     thresholds and gate fitted on the others.
   - ``evaluation``: the held-out routes against random and length routing at equal forwarded
     tokens, always and never compressing, with group-bootstrap intervals.
   - ``fitting.build_policy``: all of it, as a version-2 policy file (thresholds fitted on
     every case, figures cross-validated).

Calibration v3 (``procedure.certified_policy``, what ``ib-middleware calibrate`` runs for a
distortion target) chooses among a fixed, label-free family of candidates (``grid``: one
threshold shared by the rungs, and a gate), with every choice made inside a nested
cross-validation (``nested``: outer folds by question and source document) and a finite-sample
guarantee per workload (``guarantee``: Learn then Test, binomial tail, fixed sequence).

Thresholds are in the online estimator's units under its scoring model: they do not transfer
to another scorer or estimator, and the policy records both.
"""

from ib_middleware.lab.calibration.crossval import (
    CrossValidation,
    assign_folds,
    components,
    cross_validate,
    fit_point,
    group_of,
)
from ib_middleware.lab.calibration.evaluation import (
    RouterFigures,
    RoutingEvaluation,
    evaluate_routes,
    length_routing,
    random_routing,
)
from ib_middleware.lab.calibration.fitting import RungSummary, build_policy, summarise_rungs
from ib_middleware.lab.calibration.grid import Candidate, RouteTable, candidate_grid, route_table
from ib_middleware.lab.calibration.guarantee import Certified, learn_then_test
from ib_middleware.lab.calibration.measure import fold_group, judgeable, measure, save_records
from ib_middleware.lab.calibration.nested import Fit, NestedRun, Settings, fit, nested_cv
from ib_middleware.lab.calibration.procedure import certified_policy
from ib_middleware.lab.calibration.quantiles import (
    DEFAULT_GATE_LEVELS,
    Selection,
    TargetKind,
    gate_grid,
    quantile_grid,
    quantile_thresholds,
    select_point,
    sweep,
)
from ib_middleware.lab.calibration.records import load_meta, load_records
from ib_middleware.lab.calibration.simulation import (
    PASSTHROUGH,
    PRUNED,
    CaseRecord,
    Route,
    RungOutcome,
    decide_case,
    route_case,
    route_cases,
    route_label,
    route_tokens,
    simulate,
)
from ib_middleware.lab.data.cases import LabelledCase, load_cases

__all__ = [
    "DEFAULT_GATE_LEVELS",
    "PASSTHROUGH",
    "PRUNED",
    "Candidate",
    "CaseRecord",
    "Certified",
    "CrossValidation",
    "Fit",
    "LabelledCase",
    "NestedRun",
    "Route",
    "RouteTable",
    "RouterFigures",
    "RoutingEvaluation",
    "RungOutcome",
    "RungSummary",
    "Selection",
    "Settings",
    "TargetKind",
    "assign_folds",
    "build_policy",
    "candidate_grid",
    "certified_policy",
    "components",
    "cross_validate",
    "decide_case",
    "evaluate_routes",
    "fit",
    "fit_point",
    "fold_group",
    "gate_grid",
    "group_of",
    "judgeable",
    "learn_then_test",
    "length_routing",
    "load_cases",
    "load_meta",
    "load_records",
    "measure",
    "nested_cv",
    "quantile_grid",
    "quantile_thresholds",
    "random_routing",
    "route_case",
    "route_cases",
    "route_label",
    "route_table",
    "route_tokens",
    "save_records",
    "select_point",
    "simulate",
    "summarise_rungs",
    "sweep",
]

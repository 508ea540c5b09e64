"""Calibrate the ladder's thresholds on labelled traffic.

Two steps, kept apart so the second is a pure function of the first:

1. ``measure`` (in ``calibration.measure``): run every rung of a stage on every labelled case
   (compress, check, estimate) and label each compression with a judge. The result is a table
   of ``CaseRecord``: per rung the bits per token (None when the rung failed or its compression
   was invalid) and whether the compression holds the answer; plus whether the raw context
   itself holds it (the label of the full-context fallback).
2. ``sweep`` and ``select_point`` (in ``calibration.simulation``, pure): replay the ladder on
   that table for candidate thresholds. As RouteLLM calibrates its routers, each rung's
   threshold is the same quantile q of that rung's observed bits-per-token distribution; for
   each q on a grid over [0, 1] the sweep reports the fallback rate, the distortion (1 -
   accuracy over all cases: each case scores the label of the rung that accepted it, or of the
   fallback) and the fraction of input tokens forwarded. A target fallback rate picks the
   closest point; a target distortion picks the point with the lowest fallback rate that
   meets it.

Thresholds are in the online estimator's bits per token under its scoring model: they do not
transfer to another scorer or estimator, and the policy records both.
"""

from ib_middleware.lab.calibration.measure import judgeable, measure, save_records
from ib_middleware.lab.calibration.simulation import (
    CaseRecord,
    RungOutcome,
    RungSummary,
    Selection,
    TargetKind,
    build_policy,
    quantile_grid,
    quantile_thresholds,
    route_cases,
    select_point,
    simulate,
    summarise_rungs,
    sweep,
)
from ib_middleware.lab.data.cases import LabelledCase, load_cases

__all__ = [
    "CaseRecord",
    "LabelledCase",
    "RungOutcome",
    "RungSummary",
    "Selection",
    "TargetKind",
    "build_policy",
    "judgeable",
    "load_cases",
    "measure",
    "quantile_grid",
    "quantile_thresholds",
    "route_cases",
    "save_records",
    "select_point",
    "simulate",
    "summarise_rungs",
    "sweep",
]

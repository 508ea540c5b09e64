"""Mutual-information estimators for LM compression (He et al., 2025).

Pure functions over arrays of log-probabilities (nats inside, bits reported too): the Monte
Carlo estimator of I(X; Z | Q), pointwise CXMI and contrastive PMI, bit efficiency, rate-distortion
fits, correlations, ROC AUC with clustered bootstrap intervals, FLOPs and cost accounting,
and the knob analysis.
"""

from ib_estimators.compute import DEFAULT_PRICES, ModelSpec, Price, api_cost, flops_per_generation
from ib_estimators.discrimination import AUCEstimate, roc_auc
from ib_estimators.knobs import Coefficient, KnobAnalysis, knob_analysis
from ib_estimators.mutual_information import (
    SATURATION_MARGIN_NATS,
    MIEstimate,
    bit_efficiency,
    mc_mutual_information,
    pointwise_terms,
)
from ib_estimators.pointwise import (
    CXMIEstimate,
    PointwiseEstimate,
    RelevantPMIEstimate,
    RetentionEstimate,
    contrastive_pmi,
    cxmi,
    pmi_retention,
    relevant_pmi,
)
from ib_estimators.rate_distortion import (
    Correlation,
    RateDistortionFit,
    correlate,
    fit_rate_distortion,
)
from ib_estimators.units import nats_to_bits

__all__ = [
    "DEFAULT_PRICES",
    "SATURATION_MARGIN_NATS",
    "AUCEstimate",
    "CXMIEstimate",
    "Coefficient",
    "Correlation",
    "KnobAnalysis",
    "MIEstimate",
    "ModelSpec",
    "PointwiseEstimate",
    "Price",
    "RateDistortionFit",
    "RelevantPMIEstimate",
    "RetentionEstimate",
    "api_cost",
    "bit_efficiency",
    "contrastive_pmi",
    "correlate",
    "cxmi",
    "fit_rate_distortion",
    "flops_per_generation",
    "knob_analysis",
    "mc_mutual_information",
    "nats_to_bits",
    "pmi_retention",
    "pointwise_terms",
    "relevant_pmi",
    "roc_auc",
]

"""ib-middleware: an information-bottleneck compressor stage for agent frameworks.

``CompressionStage`` decides, per raw context item, what the orchestrator sees: a compression
whose estimated bits per token clear its rung's threshold, or the original. ``build_stage``
makes one from a ``StageConfig`` (the default runs offline on embedded models). Engines are
found by name (``ib_middleware.registry``); ``estimate_compressor_mi`` measures a compressor's
mutual information offline.
"""

from ib_middleware.build import build_stage
from ib_middleware.compressors import (
    AbstractiveCompressor,
    Compression,
    Compressor,
    ExtractiveCompressor,
)
from ib_middleware.config import StageConfig
from ib_middleware.engines import (
    ChatMessage,
    ContinuationScore,
    Generation,
    GenerationSettings,
    Generator,
    Scorer,
    ScoreRequest,
    TokenCounter,
)
from ib_middleware.errors import (
    CompressionRejectedError,
    ContextWindowExceededError,
    EngineError,
    EngineNotFoundError,
    EngineTimeoutError,
    IBMiddlewareError,
    ScoringUnsupportedError,
)
from ib_middleware.estimation import (
    DEFAULT_SCORING_TEMPLATE,
    CompressorMI,
    ScoringTemplate,
    estimate_compressor_mi,
    score_tensor,
)
from ib_middleware.observers import StageObserver
from ib_middleware.online import ContrastivePMIEstimator, CXMIEstimator, OnlineEstimate
from ib_middleware.registry import available_engines, create_engine, get_engine, register_engine
from ib_middleware.results import ContextItem, RungAttempt, StageResult
from ib_middleware.routing import Rung
from ib_middleware.stage import CompressionStage

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SCORING_TEMPLATE",
    "AbstractiveCompressor",
    "CXMIEstimator",
    "ChatMessage",
    "Compression",
    "CompressionRejectedError",
    "CompressionStage",
    "Compressor",
    "CompressorMI",
    "ContextItem",
    "ContextWindowExceededError",
    "ContinuationScore",
    "ContrastivePMIEstimator",
    "EngineError",
    "EngineNotFoundError",
    "EngineTimeoutError",
    "ExtractiveCompressor",
    "Generation",
    "GenerationSettings",
    "Generator",
    "IBMiddlewareError",
    "OnlineEstimate",
    "Rung",
    "RungAttempt",
    "ScoreRequest",
    "Scorer",
    "ScoringTemplate",
    "ScoringUnsupportedError",
    "StageConfig",
    "StageObserver",
    "StageResult",
    "TokenCounter",
    "__version__",
    "available_engines",
    "build_stage",
    "create_engine",
    "estimate_compressor_mi",
    "get_engine",
    "register_engine",
    "score_tensor",
]

"""ib-middleware: an information-bottleneck compressor stage for agent frameworks.

Engines are found by name (``ib_middleware.registry``); the offline estimator of a compressor's
mutual information is ``estimate_compressor_mi``.
"""

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
from ib_middleware.registry import available_engines, create_engine, get_engine, register_engine

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SCORING_TEMPLATE",
    "ChatMessage",
    "CompressionRejectedError",
    "CompressorMI",
    "ContextWindowExceededError",
    "ContinuationScore",
    "EngineError",
    "EngineNotFoundError",
    "EngineTimeoutError",
    "Generation",
    "GenerationSettings",
    "Generator",
    "IBMiddlewareError",
    "ScoreRequest",
    "Scorer",
    "ScoringTemplate",
    "ScoringUnsupportedError",
    "TokenCounter",
    "__version__",
    "available_engines",
    "create_engine",
    "estimate_compressor_mi",
    "get_engine",
    "register_engine",
    "score_tensor",
]

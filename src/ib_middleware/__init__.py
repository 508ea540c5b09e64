"""ib-middleware: an information-bottleneck compressor stage for agent frameworks.

``CompressionStage`` decides, per raw context item, what the orchestrator sees: a compression
whose estimated bits per token clear its rung's threshold, or the original. ``build_stage``
makes one from a ``StageConfig`` (the default runs offline on embedded models). Engines are
found by name (``ib_middleware.registry``); ``estimate_compressor_mi`` measures a compressor's
mutual information offline.

The top level is the runtime: what serves a request. The drop-ins for LangGraph and LangChain
live in ``ib_middleware.langgraph``; what measures rather than serves (offline estimation,
judges, calibration, sweeps, reports, the demo, datasets, the command line) in
``ib_middleware.lab``. The three offline-estimation names (``estimate_compressor_mi``,
``score_tensor``, ``CompressorMI``) are the lab's, loaded on first use; they need the ``lab``
extra.
"""

from typing import TYPE_CHECKING

from ib_middleware import _logging  # noqa: F401  # the logging defaults: quiet by default
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
from ib_middleware.judging.online import ContrastivePMIEstimator, CXMIEstimator, OnlineEstimate
from ib_middleware.judging.routing import Rung
from ib_middleware.observers import StageObserver
from ib_middleware.prompts import DEFAULT_SCORING_TEMPLATE, ScoringTemplate
from ib_middleware.registry import available_engines, create_engine, get_engine, register_engine
from ib_middleware.results import ContextItem, RungAttempt, StageResult
from ib_middleware.stage import CompressionStage

if TYPE_CHECKING:
    from ib_middleware.lab.estimation import CompressorMI, estimate_compressor_mi, score_tensor

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

_LAB_NAMES = frozenset({"CompressorMI", "estimate_compressor_mi", "score_tensor"})
_LAB_EXTRA = frozenset({"click", "matplotlib", "rich", "typer"})


def __getattr__(name: str) -> object:
    # The offline estimator lives in the lab (it needs the lab extra); it is loaded only when
    # asked for, so importing the runtime never imports the lab.
    if name in _LAB_NAMES:
        try:
            from ib_middleware.lab import estimation  # noqa: PLC0415
        except ModuleNotFoundError as error:
            if (error.name or "").partition(".")[0] not in _LAB_EXTRA:
                raise
            msg = f'{name} needs the lab extra: pip install "ib-middleware[lab]"'
            raise ModuleNotFoundError(msg, name=error.name) from error
        return getattr(estimation, name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)

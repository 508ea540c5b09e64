"""Build a ``CompressionStage`` from a ``StageConfig``: engines by registry name, shared.

An engine configured twice (a rung's compressor and the scorer, say) is created once.
"""

from __future__ import annotations

import logging
from typing import Any

from ib_middleware.compressors import AbstractiveCompressor, Compressor, ExtractiveCompressor
from ib_middleware.config import CompressorConfig, EngineConfig, StageConfig
from ib_middleware.engines import Generator, Scorer, TokenCounter
from ib_middleware.errors import IBMiddlewareError
from ib_middleware.judging.online import ContrastivePMIEstimator, CXMIEstimator, OnlineEstimator
from ib_middleware.judging.relevance import RelevantInformationEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.policy import FittedFor, LadderRung, Policy
from ib_middleware.registry import create_engine
from ib_middleware.selection import SegmentCompressor
from ib_middleware.stage import CompressionStage

__all__ = ["EngineCache", "build_compressor", "build_stage", "fitted_for"]

_LOG = logging.getLogger(__name__)


class EngineCache:
    """Creates each configured engine once and hands out the same instance after."""

    def __init__(self) -> None:
        """Start empty."""
        self._engines: dict[str, Any] = {}

    def get(self, config: EngineConfig) -> Any:
        """The engine for ``config``, created on first use."""
        key = config.key()
        if key not in self._engines:
            self._engines[key] = create_engine(config.engine, **config.options)
        return self._engines[key]


def build_compressor(
    config: CompressorConfig,
    engines: EngineCache,
    counter: TokenCounter | None,
    *,
    name: str | None = None,
) -> Compressor:
    """The compressor a ``CompressorConfig`` describes, its engine taken from ``engines``.

    Args:
        config: What to build.
        engines: Where engines are created once and shared.
        counter: Token counter for extractive budgets (about four characters a token if None).
        name: Name in decisions and results; the compressor's default when None.

    Raises:
        IBMiddlewareError: When the configured engine cannot generate.

    Example:
        >>> config = CompressorConfig(kind="extractive", budget_tokens=64)
        >>> build_compressor(config, EngineCache(), None).name
        'extractive-64'
    """
    if config.kind == "extractive":
        return ExtractiveCompressor(
            budget_tokens=config.budget_tokens, token_counter=counter, name=name
        )
    if config.kind == "segments":
        return SegmentCompressor(
            budget_tokens=config.budget_tokens,
            max_segments=config.max_segments,
            relative_score=config.relative_score,
            budget_share=config.budget_share,
            context_words=config.context_words,
            cover_facets=config.cover_facets,
            second_hop=config.second_hop,
            token_counter=counter,
            name=name,
        )
    generator = engines.get(config.engine)
    if not isinstance(generator, Generator):
        msg = f"engine {config.engine.engine!r} cannot generate, so it cannot compress"
        raise IBMiddlewareError(msg)
    return AbstractiveCompressor(
        generator,
        style=config.style,
        sentences=config.sentences,
        max_tokens=config.max_tokens,
        temperature=config.temperature,
        seed=config.seed,
        name=name,
    )


def fitted_for(config: StageConfig, scorer: object) -> FittedFor:
    """What a stage built from ``config`` with ``scorer`` is, as a policy records it.

    Example:
        >>> from ib_middleware.testing import FakeScorer
        >>> fitted = fitted_for(StageConfig(), FakeScorer(lambda prompt, text: -1.0))
        >>> fitted.scorer, fitted.witness, len(fitted.ladder) == len(StageConfig().rungs)
        ('fake-scorer', 'segments:3', True)
    """
    estimator = config.estimator
    witness: str | None = None
    if estimator.kind == "relevant_pmi":
        witness = estimator.witness
        if witness == "segments":
            witness = f"segments:{estimator.relevant_segments}"
    return FittedFor(
        estimator=estimator.kind,
        scorer=str(getattr(scorer, "model_id", "unknown")),
        witness=witness,
        ladder=[
            LadderRung(name=rung.name, compressor=rung.compressor.model_dump(mode="json"))
            for rung in config.rungs
        ],
        token_budget=config.token_budget,
    )


def _policy(config: StageConfig, scorer: object = None) -> Policy | None:
    """The configured policy, when it was calibrated for this estimator.

    Raises:
        PolicyMismatchError: When a policy that records what it was fitted for (version 3)
            was fitted for another estimator, scorer, witness or ladder.
    """
    if config.policy is None:
        return None
    policy = Policy.load(config.policy)
    if policy.fitted_for is not None:
        policy.check(fitted_for(config, scorer), source=f"policy {config.policy}")
        return policy
    if policy.estimator != config.estimator.kind:
        # Thresholds on one signal mean nothing for another: keep the config's own.
        _LOG.warning(
            "policy %s was calibrated for the %s estimator, not %s: its thresholds are ignored",
            config.policy,
            policy.estimator,
            config.estimator.kind,
        )
        return None
    return policy


def _prune_below(config: StageConfig, policy: Policy | None) -> float | None:
    """The relevance gate's threshold: the config's, else the policy's; None when off.

    A policy's gate was fitted on its first rung's compressions, so it applies only to a
    ladder that starts with that rung.
    """
    if not config.relevance_gate:
        return None
    if config.prune_below is not None:
        return config.prune_below
    if policy is None or not policy.rungs or not config.rungs:
        return None
    return policy.prune_below if config.rungs[0].name == policy.rungs[0].name else None


def build_stage(
    config: StageConfig | None = None, *, engines: EngineCache | None = None
) -> CompressionStage:
    """Create the stage a config describes (the offline default when ``config`` is None).

    Raises:
        EngineNotFoundError: When a configured engine is not installed.
        IBMiddlewareError: When an engine lacks a needed capability.
    """
    config = config or StageConfig.load()
    engines = engines or EngineCache()
    scorer = engines.get(config.estimator.scorer)
    if not isinstance(scorer, Scorer):
        msg = f"engine {config.estimator.scorer.engine!r} cannot score; configure a proxy scorer"
        raise IBMiddlewareError(msg)
    estimator: OnlineEstimator
    if config.estimator.kind == "cxmi":
        estimator = CXMIEstimator(scorer)
    elif config.estimator.kind == "relevant_pmi":
        estimator = RelevantInformationEstimator(
            scorer,
            witness=config.estimator.witness,
            relevant_segments=config.estimator.relevant_segments,
        )
    else:
        estimator = ContrastivePMIEstimator(scorer, reservoir_size=config.estimator.reservoir_size)
    counter = scorer if isinstance(scorer, TokenCounter) else None
    policy = _policy(config, scorer)
    thresholds = policy.thresholds() if policy is not None else {}
    rungs = [
        Rung(
            compressor=build_compressor(rung.compressor, engines, counter),
            threshold_bits_per_token=thresholds.get(rung.name, rung.threshold_bits_per_token),
            name=rung.name,
        )
        for rung in config.rungs
    ]
    return CompressionStage(
        rungs,
        estimator=estimator,
        token_budget=config.token_budget,
        token_counter=counter,
        on_failure=config.on_failure,
        min_output_tokens=config.min_output_tokens,
        reject_unsupported_figures=config.reject_unsupported_figures,
        prune_below=_prune_below(config, policy),
    )

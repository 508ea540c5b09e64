"""What a stage does, in words: its rungs, thresholds, checks, estimator and scorer.

``describe_stage(stage)`` reads a built ``CompressionStage`` (not the config it came from), so
the description is of what runs: ``print(describe_stage(build_stage()))`` shows the default,
policy thresholds included. The documentation prints it rather than restating it.
"""

from __future__ import annotations

from ib_middleware.stage import CompressionStage

__all__ = ["describe_stage", "signal_unit"]


def signal_unit(estimator: object) -> str:
    """What a rung's threshold is compared with, for ``estimator``.

    Example:
        >>> from ib_middleware.judging.online import CXMIEstimator
        >>> from ib_middleware.testing import FakeScorer
        >>> signal_unit(CXMIEstimator(FakeScorer()))
        'bits per token of the compression (cxmi)'
    """
    name = str(getattr(estimator, "name", type(estimator).__name__))
    if name != "relevant_pmi":
        return f"bits per token of the compression ({name})"
    if getattr(estimator, "witness", "page") == "segments":
        return "share of the top segments' surprisal the compression explains (relevant_pmi)"
    return "share of what the page tells about the query that the compression keeps (relevant_pmi)"


def _model(engine: object) -> str:
    return str(getattr(engine, "model_id", None) or type(engine).__name__)


def describe_stage(stage: CompressionStage) -> str:
    """The stage in a few lines: one per rung, then the checks, the estimator and the fallback.

    Example:
        >>> from ib_middleware.compressors import ExtractiveCompressor
        >>> from ib_middleware.judging.online import CXMIEstimator
        >>> from ib_middleware.judging.routing import Rung
        >>> from ib_middleware.testing import FakeScorer
        >>> stage = CompressionStage(
        ...     [Rung(ExtractiveCompressor(budget_tokens=64), threshold_bits_per_token=0.5)],
        ...     estimator=CXMIEstimator(FakeScorer()),
        ...     token_budget=128,
        ... )
        >>> print(describe_stage(stage))
        token budget: 128 (ApproximateTokenCounter tokens); longer items are compressed
        rung 0 extractive-64: accepted at >= 0.5
        accept rule: a valid compression, at least 1 token, shorter than the item
        support check: on (a compression stating a figure or name its item lacks is rejected)
        relevance gate: off
        signal: bits per token of the compression (cxmi), scored by fake-scorer
        after the last rung: the item itself (fallback); on failure: passthrough
    """
    lines = [
        f"token budget: {stage.token_budget} ({_model(stage.token_counter)} tokens); "
        "longer items are compressed"
    ]
    for index, rung in enumerate(stage.rungs):
        compressor = rung.compressor.name
        label = compressor if rung.label == compressor else f"{rung.label} ({compressor})"
        lines.append(f"rung {index} {label}: accepted at >= {rung.threshold_bits_per_token:.3g}")
    least = stage.min_output_tokens
    lines.append(
        f"accept rule: a valid compression, at least {least} token{'s' * (least != 1)}, "
        "shorter than the item"
    )
    lines.append(
        "support check: on (a compression stating a figure or name its item lacks is rejected)"
        if stage.reject_unsupported_figures
        else "support check: off"
    )
    lines.append(
        "relevance gate: off"
        if stage.prune_below is None
        else f"relevance gate: an item whose compression explains < {stage.prune_below:.3g} of "
        "the query is pruned to a one-line note"
    )
    scorer = getattr(stage.estimator, "scorer", None)
    scored_by = f", scored by {_model(scorer)}" if scorer is not None else ""
    lines.append(f"signal: {signal_unit(stage.estimator)}{scored_by}")
    lines.append(f"after the last rung: the item itself (fallback); on failure: {stage.on_failure}")
    return "\n".join(lines)

"""Run the stage as one traced LangChain run, tagged as the compressor's own."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig, RunnableLambda, ensure_config

from ib_middleware.errors import is_control_flow
from ib_middleware.langgraph._common import STAGE_RUN_NAME, decision_record
from ib_middleware.langgraph._generator import COMPRESSOR_TAGS
from ib_middleware.stage import CompressionStage, ContextItem, StageResult

__all__ = ["arun_stage", "run_stage"]


def _stage_config(config: RunnableConfig | None, metadata: Mapping[str, Any]) -> RunnableConfig:
    # Tags and metadata given here are inherited by every run inside the stage, so a chat
    # model used as a compressor is tagged ``nostream`` even when it was not built with them.
    base = ensure_config(config)
    return RunnableConfig(
        callbacks=base.get("callbacks"),
        tags=list(COMPRESSOR_TAGS),
        metadata={**base.get("metadata", {}), "ib_middleware_role": "stage", **metadata},
        run_name=STAGE_RUN_NAME,
        configurable=base.get("configurable", {}),
    )


def _run_input(items: Sequence[ContextItem], query: str) -> dict[str, Any]:
    # The traced input names the items without their text; decisions are the traced output.
    return {"query": query, "sources": [item.source for item in items]}


def _records(items: Sequence[ContextItem], results: Sequence[StageResult]) -> list[dict[str, Any]]:
    return [
        decision_record(result, quoting=item.text)
        for item, result in zip(items, results, strict=True)
    ]


def _guarded_fallback(
    stage: CompressionStage, items: Sequence[ContextItem], error: Exception, started: float
) -> list[StageResult]:
    # The stage guards its own items; this catches what fails around it (a callback handler).
    return [stage.failure_result(item, error, started) for item in items]


def run_stage(
    stage: CompressionStage,
    items: Sequence[ContextItem],
    query: str,
    *,
    config: RunnableConfig | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> list[StageResult]:
    """Run the stage as one traced run tagged as the compressor's, never raising by surprise.

    The run (named ``STAGE_RUN_NAME``) is a child of the current LangChain run, so it and any
    chat model inside it show in traces, tagged ``nostream``: LangGraph leaves them out of
    ``stream_mode="messages"``. An error outside the ladder (a failing token counter, say)
    forwards the originals as ``fallback`` with the error in the reason, unless the stage was
    built with ``on_failure="raise"``.

    Example:
        >>> from ib_middleware.judging.online import CXMIEstimator
        >>> from ib_middleware.testing import FakeScorer
        >>> stage = CompressionStage([], estimator=CXMIEstimator(FakeScorer()), token_budget=8)
        >>> [result] = run_stage(stage, [ContextItem("short")], "q")
        >>> result.decision
        'passthrough'
    """
    started = time.perf_counter()
    results: list[StageResult] = []

    def invoke(request: dict[str, Any]) -> list[dict[str, Any]]:
        results.extend(stage.run(items, request["query"]))
        return _records(items, results)

    runnable = RunnableLambda(invoke, name=STAGE_RUN_NAME)
    try:
        runnable.invoke(_run_input(items, query), _stage_config(config, metadata or {}))
    except Exception as error:  # see on_failure
        if is_control_flow(error):
            raise
        return _guarded_fallback(stage, items, error, started)
    return results


async def arun_stage(
    stage: CompressionStage,
    items: Sequence[ContextItem],
    query: str,
    *,
    config: RunnableConfig | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> list[StageResult]:
    """Async twin of ``run_stage``."""
    started = time.perf_counter()
    results: list[StageResult] = []

    async def invoke(request: dict[str, Any]) -> list[dict[str, Any]]:
        results.extend(await stage.arun(items, request["query"]))
        return _records(items, results)

    runnable = RunnableLambda(invoke, name=STAGE_RUN_NAME)
    try:
        await runnable.ainvoke(_run_input(items, query), _stage_config(config, metadata or {}))
    except Exception as error:  # see on_failure
        if is_control_flow(error):
            raise
        return _guarded_fallback(stage, items, error, started)
    return results

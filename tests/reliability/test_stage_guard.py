"""The stage guards itself, for direct callers and the CLI: any failure forwards the original.

Failures outside the ladder (a token counter that raises), NaN log-probs from a scorer, and a
raising item among several, sync and async; ``on_failure="raise"`` propagates instead, and the
async twin leaves no task running behind the error.
"""

from __future__ import annotations

import asyncio

import pytest

from ib_middleware.compressors import AbstractiveCompressor
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.stage import CompressionStage
from ib_middleware.testing import FakeCompressor, FakeScorer

MODES = ["sync", "async"]
PAGE = "Capital expenditure was $1,577 million in 2018. " + "Filler text. " * 60
SECRET_PAGE = "Zebra quokka xylophone vouched " * 40


class BrokenCounter:
    """Counts tokens, except in texts that contain ``poison``, where it raises."""

    def count_tokens(self, text: str) -> int:
        if "Zebra" in text:
            msg = f"tokenizer died on {text[:60]}"
            raise RuntimeError(msg)
        return len(text) // 4


def make_stage(scorer=None, **options) -> CompressionStage:
    scorer = scorer or FakeScorer(
        lambda p, z: -1.0 if "Document:" in p and z.startswith("Capex") else -5.0
    )
    generator = FakeCompressor(default="Capex was $1,577 million")  # every figure is in PAGE
    rung = Rung(AbstractiveCompressor(generator, window_tokens=5000), 0.5)
    return CompressionStage([rung], estimator=CXMIEstimator(scorer), token_budget=50, **options)


async def run(stage, items, mode):
    return stage.run(items, "capex?") if mode == "sync" else await stage.arun(items, "capex?")


@pytest.mark.parametrize("mode", MODES)
async def test_failure_outside_the_ladder_forwards_that_item_only(mode):
    stage = make_stage(token_counter=BrokenCounter())
    good, bad = await run(stage, [PAGE, SECRET_PAGE], mode)
    assert good.decision == "accepted"
    assert bad.decision == "fallback"
    assert bad.text == SECRET_PAGE
    assert bad.reason.startswith("full context forwarded: the stage failed (RuntimeError: ")
    assert "Zebra quokka xylophone" not in bad.reason  # the quote of the context is cut out
    assert "[...]" in bad.reason


@pytest.mark.parametrize("mode", MODES)
async def test_failure_outside_the_ladder_raises_when_asked(mode):
    stage = make_stage(token_counter=BrokenCounter(), on_failure="raise")
    tasks_before = len(asyncio.all_tasks())
    with pytest.raises(RuntimeError, match="tokenizer died"):
        await run(stage, [PAGE, SECRET_PAGE, PAGE], mode)
    assert len(asyncio.all_tasks()) == tasks_before, "a sibling kept running after the error"


@pytest.mark.parametrize("mode", MODES)
async def test_nan_log_probs_escalate_to_the_original(mode):
    stage = make_stage(FakeScorer(lambda p, z: float("nan")))
    [result] = await run(stage, [PAGE], mode)
    assert result.decision == "fallback"
    assert result.text == PAGE
    [attempt] = result.attempts
    assert attempt.error is not None
    assert "estimator error" in attempt.reason

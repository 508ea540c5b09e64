"""An abstractive rung's faithful summary is accepted inside a ReAct loop, judged for real.

The paper's regime: a compressor model writes a summary in its own words ("Capex was $1,577M in
2018.") and the accept rule judges it with the embedded Gemma-3-270M scorer. The support check
must read "$1,577M" as the page's $1,577 million in the 2018 column, and the signal (what the
share of the page's relevant part the summary explains) must clear the rung's threshold, so
the model's next call reads the summary instead of the page. A wrong column is still rejected.
"""

from __future__ import annotations

import pytest
from test_langgraph_loop import QUESTION, Context, react_loop, run, tool_texts

from ib_middleware.compressors import AbstractiveCompressor
from ib_middleware.judging.relevance import RelevantInformationEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.langgraph import DECISIONS_KEY
from ib_middleware.stage import CompressionStage
from ib_middleware.testing import FakeCompressor

pytestmark = pytest.mark.slow

MODES = ["sync", "async"]
FAITHFUL = "Capex was $1,577M in 2018."
WRONG_YEAR = "Capex was $1,577M in 2017."


def real_stage(gemma_engine, summary: str) -> CompressionStage:
    rung = Rung(
        AbstractiveCompressor(FakeCompressor(default=summary), window_tokens=5000),
        threshold_bits_per_token=0.5,
    )
    estimator = RelevantInformationEstimator(gemma_engine)
    return CompressionStage([rung], estimator=estimator, token_budget=50)


@pytest.mark.parametrize("mode", MODES)
async def test_a_faithful_abstractive_summary_is_accepted_in_a_react_loop(gemma_engine, mode):
    context = Context()
    stage = real_stage(gemma_engine, FAITHFUL)
    [final] = await run(react_loop("compression_node", stage, mode), "invoke", mode, context)
    [record] = final[DECISIONS_KEY]
    assert record["decision"] == "accepted", record["reason"]
    assert tool_texts(context.seen[1]) == [FAITHFUL]
    assert "of the relevant part explained" in record["reason"]
    assert QUESTION in str(context.seen[0][0].content)


@pytest.mark.parametrize("mode", MODES)
async def test_the_same_figure_in_another_year_is_rejected_in_a_react_loop(gemma_engine, mode):
    context = Context()
    stage = real_stage(gemma_engine, WRONG_YEAR)
    [final] = await run(react_loop("compression_node", stage, mode), "invoke", mode, context)
    [record] = final[DECISIONS_KEY]
    assert record["decision"] == "fallback"
    assert "unsupported content" in record["reason"]
    assert "1,577" not in record["reason"], "a rejection names positions, never values"

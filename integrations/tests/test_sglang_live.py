"""SGLangEngine against a real SGLang server (set SGLANG_URL, e.g. http://127.0.0.1:30000).

Checks that prefix-cached scoring (``logprob_start_len = |x| - 1``) gives the same per-token
log-probs as an independent full-prompt request (``logprob_start_len = 0``, which SGLang never
serves from its prefix cache), and that the second continuation of a group reuses the prefix.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from ib_integrations.sglang import SGLangEngine

from ib_middleware.engines import ChatMessage, GenerationSettings, ScoreRequest

pytestmark = [
    pytest.mark.sglang,
    pytest.mark.skipif(
        not os.environ.get("SGLANG_URL"), reason="needs a running SGLang server: set SGLANG_URL"
    ),
    pytest.mark.timeout(300),
]

PROMPT = (
    "Context: The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It is "
    "330 metres tall and was the tallest man-made structure until 1930.\n"
    "Question: When was the Eiffel Tower completed?\nAnswer:"
)
CONTINUATIONS = [" It was completed in 1889.", " In 1889, for the World's Fair.", " 1930."]


def full_prompt_logprobs(url: str, headers: dict[str, str], ids: list[int]) -> list[list[Any]]:
    body = {
        "input_ids": ids,
        "sampling_params": {"max_new_tokens": 0, "temperature": 0},
        "return_logprob": True,
        "logprob_start_len": 0,
    }
    response = httpx.post(f"{url.rstrip('/')}/generate", json=body, headers=headers, timeout=120)
    response.raise_for_status()
    entries: list[list[Any]] = response.json()["meta_info"]["input_token_logprobs"]
    assert len(entries) == len(ids)
    return entries


@pytest.fixture
def engine() -> SGLangEngine:
    return SGLangEngine(
        base_url=os.environ["SGLANG_URL"],
        api_key=os.environ.get("SGLANG_API_KEY"),
        timeout_s=120,
    )


def test_prefix_cached_scores_equal_full_prompt_scores(engine: SGLangEngine) -> None:
    url = os.environ["SGLANG_URL"]
    key = os.environ.get("SGLANG_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with engine:
        scores = engine.score([ScoreRequest(PROMPT, z) for z in CONTINUATIONS])
        x_ids = engine.tokenize(PROMPT, add_special_tokens=True)
        for continuation, score in zip(CONTINUATIONS, scores, strict=True):
            z_ids = engine.tokenize(continuation)
            entries = full_prompt_logprobs(url, headers, x_ids + z_ids)[len(x_ids) :]
            assert [entry[1] for entry in entries] == z_ids
            reference = [float(entry[0]) for entry in entries]
            assert score.n_tokens == len(z_ids)
            assert score.prompt_tokens == len(x_ids)
            assert list(score.token_logprobs) == pytest.approx(reference, abs=1e-3)
        assert scores[1].cached_tokens is not None
        assert scores[1].cached_tokens > 0
        assert engine.counters.cached_tokens > 0


async def test_async_scoring_and_generation(engine: SGLangEngine) -> None:
    async with engine:
        [score] = await engine.ascore([ScoreRequest(PROMPT, CONTINUATIONS[0])])
        assert score.total < 0
        reply = await engine.agenerate(
            [ChatMessage("user", "Reply with one word: yes.")], GenerationSettings(max_tokens=8)
        )
        assert reply.completion_tokens > 0
        assert reply.text.strip()

"""The embedded llama.cpp engine against an independent full-prompt computation."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import llama_cpp
import numpy as np
import pytest
from ib_integrations.llamacpp import (
    LlamaCppEngine,
    _without_weight_repacking,
    gemma3_270m_path,
    smollm2_path,
)
from scipy.special import log_softmax

from ib_middleware.engines import ChatMessage, GenerationSettings, Scorer, ScoreRequest
from ib_middleware.errors import ContextWindowExceededError
from ib_middleware.registry import available_engines, create_engine

pytestmark = pytest.mark.timeout(300)

REQUESTS = [
    ScoreRequest("Revenue in 2018 was $5.2 billion. Question: revenue?", " It was $5.2 billion."),
    ScoreRequest("Revenue in 2018 was $5.2 billion. Question: revenue?", " Revenue fell sharply."),
    ScoreRequest("Capital expenditure: 1,577 million.", " Capex was $1,577 million."),
    ScoreRequest("Capital expenditure: 1,577 million.", "1577"),
]


def reference_logprobs(path, request: ScoreRequest) -> list[float]:
    """Full-prompt teacher forcing with logits for every position, then log-softmax.

    Loaded with the same numeric setting as the engine (no weight repacking), so the two differ
    only in how they compute: one batch with full-vocabulary logits everywhere, against
    prefix reuse with logits at continuation positions only.
    """
    with _without_weight_repacking():
        llm = llama_cpp.Llama(
            model_path=str(path), n_ctx=512, logits_all=True, verbose=False, swa_full=True
        )
    prompt = llm.tokenize(request.prompt.encode(), add_bos=True, special=False)
    continuation = llm.tokenize(request.continuation.encode(), add_bos=False, special=False)
    llm.eval(prompt + continuation)
    logits = np.asarray(llm.scores[: len(prompt) + len(continuation)], dtype=np.float64)
    normalised = log_softmax(logits, axis=1)
    return [normalised[len(prompt) - 1 + k, token] for k, token in enumerate(continuation)]


@pytest.fixture(params=["smollm2", "gemma"])
def engine(request, smollm2_engine, gemma_engine) -> LlamaCppEngine:
    return smollm2_engine if request.param == "smollm2" else gemma_engine


def test_model_files_come_from_wheels():
    assert smollm2_path().suffix == ".gguf"
    assert gemma3_270m_path().name == "gemma-3-270m-q4_k_m.gguf"


# SmolLM2 (Q4_1) matches to float precision. Gemma-3 (Q4_K) differs by up to ~0.2 nats per
# token (measured on an Intel build) and 0.26 (an AMD EPYC build: llama.cpp compiles for the
# CPU it is built on) between one 30-token batch and a prompt batch plus a short continuation
# batch: llama.cpp picks matrix kernels by batch size and this model amplifies their rounding.
# Our own scores do not depend on batching (test_scores_do_not_depend_on_batching).
TOLERANCE = {"SmolLM2-135M-Instruct": (1e-4, 1e-3), "gemma-3-270m": (0.3, 0.5)}


@pytest.mark.slow
def test_scoring_equals_full_prompt_log_softmax(engine):
    per_token, total = TOLERANCE[engine.model_id]
    scores = engine.score(REQUESTS)
    for request, score in zip(REQUESTS, scores, strict=True):
        expected = reference_logprobs(engine.model_path, request)
        assert score.n_tokens == len(expected)
        np.testing.assert_allclose(score.token_logprobs, expected, atol=per_token)
        assert score.total == pytest.approx(sum(expected), abs=total)


@pytest.mark.slow
def test_scores_do_not_depend_on_batching(gemma_engine):
    # Scored alone, after another prompt, or in a batch: the same numbers.
    alone = [LlamaCppEngine.gemma3_270m(n_ctx=512).score([r])[0] for r in REQUESTS]
    batched = gemma_engine.score(list(reversed(REQUESTS)))[::-1]
    for a, b in zip(alone, batched, strict=True):
        np.testing.assert_allclose(a.token_logprobs, b.token_logprobs, atol=1e-6)


def test_engine_satisfies_scorer_protocol(smollm2_engine):
    assert isinstance(smollm2_engine, Scorer)


def test_prefix_is_evaluated_once_per_group(smollm2_engine):
    prompt = "A shared context of several words that repeats across requests. " * 5
    continuations = [" one answer", " another answer here", " a third"]
    before = smollm2_engine.counters.prefix_tokens
    smollm2_engine.score([ScoreRequest(prompt, c) for c in continuations])
    evaluated = smollm2_engine.counters.prefix_tokens - before
    prompt_tokens = len(smollm2_engine.tokenize(prompt, add_bos=True))
    # Only the first request pays for the prompt (minus the last token, evaluated with logits).
    assert evaluated <= prompt_tokens


def test_bos_and_boundary_tokens(gemma_engine):
    # Gemma adds BOS: an empty prompt still predicts the first continuation token.
    [score] = gemma_engine.score([ScoreRequest("", "Hello")])
    assert score.prompt_tokens == 1
    assert score.n_tokens == len(gemma_engine.tokenize("Hello"))
    # Continuations are tokenised on their own, never merged with the prompt's last token.
    [split] = gemma_engine.score([ScoreRequest("The year was 20", "18")])
    assert split.n_tokens == len(gemma_engine.tokenize("18"))


def test_continuation_past_context_window_raises():
    engine = LlamaCppEngine.smollm2(n_ctx=256)
    with pytest.raises(ContextWindowExceededError, match=f"n_ctx={engine.n_ctx}"):
        engine.score([ScoreRequest("word " * 200, " more words" * 100)])


def test_empty_continuation_rejected(smollm2_engine):
    with pytest.raises(ValueError, match="empty continuation"):
        smollm2_engine.score([ScoreRequest("context", "")])


@pytest.mark.slow
def test_concurrent_scoring_equals_serial(smollm2_engine):
    serial = [smollm2_engine.score([r]) for r in REQUESTS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda r: smollm2_engine.score([r]), REQUESTS * 2))
    for index, result in enumerate(parallel):
        expected = serial[index % len(REQUESTS)][0]
        np.testing.assert_allclose(result[0].token_logprobs, expected.token_logprobs, atol=1e-6)


async def test_async_scoring_equals_sync(smollm2_engine):
    expected = smollm2_engine.score(REQUESTS)
    results = await asyncio.gather(*(smollm2_engine.ascore([r]) for r in REQUESTS))
    for result, want in zip(results, expected, strict=True):
        np.testing.assert_allclose(result[0].token_logprobs, want.token_logprobs, atol=1e-6)


def test_generation_then_scoring_keeps_cache_consistent(smollm2_engine):
    before = smollm2_engine.score(REQUESTS[:1])[0]
    reply = smollm2_engine.generate(
        [ChatMessage("user", "What is 2 + 2? Answer in one word.")],
        GenerationSettings(max_tokens=16, seed=1),
    )
    assert reply.text.strip()
    assert reply.completion_tokens > 0
    assert reply.prompt_tokens > 0
    after = smollm2_engine.score(REQUESTS[:1])[0]
    np.testing.assert_allclose(after.token_logprobs, before.token_logprobs, atol=1e-6)


async def test_async_generation_is_seeded(smollm2_engine):
    messages = [ChatMessage("user", "Name a colour.")]
    settings = GenerationSettings(temperature=0.8, max_tokens=12, seed=7)
    first = await smollm2_engine.agenerate(messages, settings)
    second = await smollm2_engine.agenerate(messages, settings)
    assert first.text == second.text


def test_base_model_generates_plain_text(gemma_engine):
    reply = gemma_engine.generate(
        [ChatMessage("user", "The three primary colours are red, yellow and")],
        GenerationSettings(max_tokens=8),
    )
    assert reply.completion_tokens > 0


def test_model_spec_from_gguf_metadata(smollm2_engine, gemma_engine):
    small = smollm2_engine.model_spec()
    assert small.n_layers == 30
    assert 1e8 < small.n_params < 2e8
    assert gemma_engine.model_spec().n_params > small.n_params


def test_registered_under_entry_point():
    assert {"llamacpp", "sglang", "openai"} <= set(available_engines())
    engine = create_engine("llamacpp", model_path=smollm2_path(), n_ctx=256)
    assert isinstance(engine, LlamaCppEngine)


def test_missing_model_file_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="GGUF model not found"):
        LlamaCppEngine(tmp_path / "missing.gguf")

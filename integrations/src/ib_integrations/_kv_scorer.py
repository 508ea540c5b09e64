"""Prefix-reusing, teacher-forced scoring over one llama.cpp context's KV cache.

``KVCacheScorer`` is the scoring walk described in ``ib_integrations.llamacpp``: it remembers
which tokens the cache holds, rewinds it to the longest common prefix with the next request,
and reads logits one output row at a time from llama.cpp's buffer. It takes no lock: the
engine's lock guards every call, and the engine's generation path shares the same context.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import llama_cpp
import numpy as np
from llama_cpp import _internals
from numpy.typing import NDArray
from scipy.special import log_softmax

from ib_middleware.engines import ContinuationScore
from ib_middleware.errors import EngineError

__all__ = ["KVCacheScorer", "ScoringCounters"]

_LOGIT_ROWS_PER_CHUNK = 32


@dataclass
class ScoringCounters:
    """Tokens the scorer has evaluated, to check prefix reuse.

    Attributes:
        prefix_tokens: Prompt tokens evaluated (a prompt shared by many requests counts once).
        continuation_tokens: Continuation tokens evaluated: |z| - 1 per request, because the
            first token is predicted from the logits kept at the last prompt position.
        requests: Score requests served.
    """

    prefix_tokens: int = 0
    continuation_tokens: int = 0
    requests: int = 0

    @property
    def total_tokens(self) -> int:
        """All tokens evaluated."""
        return self.prefix_tokens + self.continuation_tokens


def _row_logsumexp(rows: NDArray[np.float32]) -> NDArray[np.float64]:
    """``logsumexp`` of each row, exponentiated in float32 and summed in float64.

    Copying a block of rows to float64 first, as ``scipy.special.logsumexp`` of a float64
    array does, took 15x longer on a 262,144-token vocabulary (Gemma-3): it was most of the
    cost of scoring a long continuation. Subtracting the row's maximum keeps every exponent
    in [0, 1], so float32 loses nothing that the float32 logits held (measured: 2e-8 nats).
    """
    peak = rows.max(axis=1, keepdims=True)
    total: NDArray[np.float64] = np.exp(rows - peak).sum(axis=1, dtype=np.float64)
    logsum: NDArray[np.float64] = np.log(total) + peak[:, 0].astype(np.float64)
    return logsum


def _common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    limit = min(len(a), len(b))
    for index in range(limit):
        if a[index] != b[index]:
            return index
    return limit


class KVCacheScorer:
    """The KV cache of ``llm``'s context, walked request by request to reuse shared prefixes.

    Args:
        llm: The loaded model; its context's cache is the one reused.
        model_id: Name used in error messages.
        n_batch: Tokens per llama_decode call.
    """

    def __init__(self, llm: llama_cpp.Llama, *, model_id: str, n_batch: int) -> None:
        self._llm = llm
        self._model_id = model_id
        self._n_batch = n_batch
        self._n_vocab = llm.n_vocab()
        self._partial_rewind_ok = llama_cpp.llama_model_n_swa(llm.model) == 0
        self._batch = _internals.LlamaBatch(n_tokens=n_batch, embd=0, n_seq_max=1)
        self._cached: list[int] = []
        self._prompt_row: NDArray[np.float64] = np.zeros(0)
        self._prompt_row_for: tuple[int, ...] | None = None

    def release(self) -> None:
        """Hand the KV cache back to llama-cpp-python's own generation path."""
        self._llm.n_tokens = 0
        self._cached = []

    def clear(self) -> None:
        """Empty the KV cache."""
        self._llm._ctx.kv_cache_clear()  # type: ignore[no-untyped-call]
        self._cached = []
        self._prompt_row_for = None

    def _truncate(self, keep: int) -> int:
        """Drop cached positions from ``keep`` on; return how many positions really remain."""
        if keep < len(self._cached):
            cached_prompt = len(self._prompt_row_for or ())
            # Dropping a previous continuation is always safe. Cutting into a cached prompt is
            # not on sliding-window models (Gemma-3): measured, the scores then drift by up to
            # 0.3 nats, so those models start over instead.
            partial_ok = keep >= cached_prompt or self._partial_rewind_ok
            if partial_ok and self._llm._ctx.kv_cache_seq_rm(0, keep, -1):
                del self._cached[keep:]
            else:
                self.clear()
                keep = 0
        self._llm.n_tokens = 0  # the generation path must not trust this cache
        return keep

    def score(
        self, prompt_ids: list[int], continuation_ids: list[int], counters: ScoringCounters
    ) -> ContinuationScore:
        """Log-probs of ``continuation_ids`` after ``prompt_ids``, counting work in ``counters``."""
        n_prompt = len(prompt_ids)
        keep = min(_common_prefix_length(self._cached, prompt_ids), n_prompt)
        if keep == n_prompt and self._prompt_row_for != tuple(prompt_ids):
            keep = n_prompt - 1  # re-evaluate the last prompt token to get its logits
        keep = self._truncate(keep)
        reused = keep
        if keep < n_prompt:
            rows: list[NDArray[np.float32]] = []
            self._decode(prompt_ids[keep:], keep, n_prompt - 1, rows.append)
            self._prompt_row = log_softmax(rows[0][0].astype(np.float64))
            self._prompt_row_for = tuple(prompt_ids)
            self._cached = list(prompt_ids)
            counters.prefix_tokens += n_prompt - keep
        # The first continuation token is predicted at the last prompt position.
        logprobs = [float(self._prompt_row[continuation_ids[0]])]
        if len(continuation_ids) > 1:
            targets = iter(continuation_ids[1:])

            def pick(block: NDArray[np.float32]) -> None:
                for start in range(0, block.shape[0], _LOGIT_ROWS_PER_CHUNK):
                    chunk = block[start : start + _LOGIT_ROWS_PER_CHUNK]
                    wanted = np.fromiter(targets, dtype=np.int64, count=chunk.shape[0])
                    picked = chunk[np.arange(chunk.shape[0]), wanted].astype(np.float64)
                    logprobs.extend((picked - _row_logsumexp(chunk)).tolist())

            self._decode(continuation_ids[:-1], n_prompt, n_prompt, pick)
            self._cached = prompt_ids + continuation_ids[:-1]
        counters.continuation_tokens += len(continuation_ids) - 1
        counters.requests += 1
        if len(logprobs) != len(continuation_ids) or not all(map(math.isfinite, logprobs)):
            msg = f"{self._model_id} returned unusable log-probabilities; the score is discarded"
            raise EngineError(msg)
        return ContinuationScore(
            token_logprobs=tuple(logprobs), prompt_tokens=n_prompt, cached_tokens=reused
        )

    def _decode(
        self,
        tokens: Sequence[int],
        start: int,
        logits_from: int,
        consume: Callable[[NDArray[np.float32]], None],
    ) -> None:
        """Decode ``tokens`` at positions ``start, start + 1, ...``.

        Logits are requested only at positions ``>= logits_from``; each batch's rows are
        handed to ``consume`` as a view of llama.cpp's buffer, valid until the next decode.
        """
        batch = self._batch.batch
        for offset in range(0, len(tokens), self._n_batch):
            chunk = tokens[offset : offset + self._n_batch]
            flagged = 0
            for i, token in enumerate(chunk):
                position = start + offset + i
                batch.token[i] = token
                batch.pos[i] = position
                batch.seq_id[i][0] = 0
                batch.n_seq_id[i] = 1
                batch.logits[i] = position >= logits_from
                flagged += int(position >= logits_from)
            batch.n_tokens = len(chunk)
            code = llama_cpp.llama_decode(self._llm._ctx.ctx, batch)
            if code != 0:
                self.clear()
                msg = f"{self._model_id}: llama_decode returned {code}"
                raise EngineError(msg)
            if flagged:
                pointer = llama_cpp.llama_get_logits(self._llm._ctx.ctx)
                consume(np.ctypeslib.as_array(pointer, shape=(flagged, self._n_vocab)))

"""Compressors: turn a raw context X into a compact text Z for a query Q.

- ``AbstractiveCompressor`` prompts any ``Generator`` (a registered engine, or a LangChain chat
  model through ``ChatModelGenerator``). A context longer than the generator's window is split
  into chunks and compressed map-reduce: every chunk is read, nothing is silently truncated.
- ``ExtractiveCompressor`` keeps the sentences BM25 ranks highest for the query, in their
  original order, under a token budget. It copies text, so it cannot hallucinate.
- ``ib_middleware.selection.SegmentCompressor`` keeps whole sentences, list items and table
  rows (with their table's header rows), under a budget that adapts to the page.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import bm25s
import numpy as np

from ib_middleware.engines import Generation, GenerationSettings, Generator, TokenCounter
from ib_middleware.errors import CompressionRejectedError
from ib_middleware.prompts import PromptStyle, build_messages

__all__ = [
    "AbstractiveCompressor",
    "ApproximateTokenCounter",
    "Compression",
    "Compressor",
    "ExtractiveCompressor",
    "copied_compression",
    "split_sentences",
]

_PROMPT_OVERHEAD_TOKENS = 160
_MAX_REDUCE_LEVELS = 8
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n{2,}|\n(?=\s*[-*\u2022\d])")


@dataclass(frozen=True)
class Compression:
    """One compression of one context.

    Attributes:
        text: The compressed text Z.
        model: The model (or method) that produced it.
        method: ``abstractive`` or ``extractive``.
        input_tokens: Tokens of the context X.
        output_tokens: Tokens of Z.
        prompt_tokens: Tokens sent to the generator over all calls (0 for extractive).
        completion_tokens: Tokens generated over all calls (0 for extractive).
        calls: Generator calls made (more than one when the context was chunked).
        chunks: Pieces the context was split into (1 when it fit the window).
        wall_s: Seconds spent compressing.
    """

    text: str
    model: str
    method: Literal["abstractive", "extractive"]
    input_tokens: int
    output_tokens: int
    prompt_tokens: int
    completion_tokens: int
    calls: int
    chunks: int
    wall_s: float


@runtime_checkable
class Compressor(Protocol):
    """Anything that compresses a context for a query."""

    @property
    def name(self) -> str:
        """A short name for decisions, spans and reports."""
        ...

    def compress(self, context: str, query: str) -> Compression:
        """Compress ``context`` for ``query``."""
        ...

    async def acompress(self, context: str, query: str) -> Compression:
        """Async twin of ``compress``."""
        ...


class ApproximateTokenCounter:
    """Counts about one token per four characters, for when no tokenizer is at hand.

    Example:
        >>> ApproximateTokenCounter().count_tokens("twelve chars")
        3
    """

    def count_tokens(self, text: str) -> int:
        """Roughly the number of tokens in ``text``."""
        return math.ceil(len(text) / 4)


def split_sentences(text: str) -> list[str]:
    r"""Split text into sentences and list items, dropping empty pieces.

    Example:
        >>> split_sentences("Revenue rose. Costs fell!\n\nTable 1")
        ['Revenue rose.', 'Costs fell!', 'Table 1']
    """
    return [piece.strip() for piece in _SENTENCE_END.split(text) if piece and piece.strip()]


def _split_to_fit(
    text: str, counter: TokenCounter, limit: int, tokens: int | None = None
) -> list[str]:
    """Split text into consecutive pieces of at most ``limit`` tokens each, losing nothing.

    ``tokens`` is the text's token count when the caller already has it.
    """
    if (counter.count_tokens(text) if tokens is None else tokens) <= limit:
        return [text]
    units = split_sentences(text)
    if len(units) <= 1:
        units = text.split()
        if len(units) <= 1:
            middle = len(text) // 2
            units = [text[:middle], text[middle:]]
    chunks: list[str] = []
    current: list[str] = []
    for unit in units:
        candidate = " ".join([*current, unit])
        if current and counter.count_tokens(candidate) > limit:
            chunks.append(" ".join(current))
            current = [unit]
        else:
            current.append(unit)
    if current:
        chunks.append(" ".join(current))
    # A single unit may still be too long: split it further.
    return [piece for chunk in chunks for piece in _split_to_fit(chunk, counter, limit)]


class AbstractiveCompressor:
    """Prompted compression with any ``Generator``, map-reduce over long contexts.

    Example:
        >>> from ib_middleware.testing import FakeCompressor
        >>> generator = FakeCompressor(default="Revenue was $5M.")
        >>> compressor = AbstractiveCompressor(generator, window_tokens=1000)
        >>> compressor.compress("Revenue was $5M in 2020. " * 10, "Revenue?").text
        'Revenue was $5M.'
    """

    def __init__(
        self,
        generator: Generator,
        *,
        style: PromptStyle = "query_specific",
        sentences: int = 3,
        max_tokens: int = 200,
        temperature: float = 0.0,
        seed: int = 0,
        window_tokens: int | None = None,
        token_counter: TokenCounter | None = None,
        name: str | None = None,
    ) -> None:
        """Configure the compressor.

        Args:
            generator: The engine or chat-model adapter that writes the compression.
            style: Prompt template (see ``ib_middleware.prompts``).
            sentences: Conciseness: 3, 6 or 9 sentences.
            max_tokens: Most tokens per generated compression.
            temperature: Sampling temperature (0 is greedy).
            seed: Sampling seed.
            window_tokens: Most context tokens per generator call; by default the generator's
                ``n_ctx`` less room for the prompt and the answer, or 6,000.
            token_counter: Counts tokens; the generator's own when it has ``count_tokens``.
            name: Name in decisions; the generator's model id by default.
        """
        build_messages("", "", style=style, sentences=sentences)  # validate the choice now
        self._generator = generator
        self._style: PromptStyle = style
        self._sentences = sentences
        self._settings = GenerationSettings(
            temperature=temperature, max_tokens=max_tokens, seed=seed
        )
        if token_counter is None:
            token_counter = (
                generator if isinstance(generator, TokenCounter) else ApproximateTokenCounter()
            )
        self._counter = token_counter
        if window_tokens is None:
            n_ctx = getattr(generator, "n_ctx", None)
            if isinstance(n_ctx, int):
                window_tokens = n_ctx - max_tokens - _PROMPT_OVERHEAD_TOKENS
            else:
                window_tokens = 6000
        if window_tokens < 64:
            msg = f"window_tokens={window_tokens} leaves no room for context; raise n_ctx"
            raise ValueError(msg)
        self._window = window_tokens
        self._name = name or generator.model_id

    @property
    def name(self) -> str:
        """The compressor's name."""
        return self._name

    @property
    def window_tokens(self) -> int:
        """Most context tokens one generator call reads."""
        return self._window

    @property
    def token_counter(self) -> TokenCounter:
        """What counts this compressor's tokens."""
        return self._counter

    def _plan(self, context: str, tokens: int | None = None) -> list[str]:
        return _split_to_fit(context, self._counter, self._window, tokens)

    def _finish(
        self,
        text: str,
        context_tokens: int,
        generations: Sequence[Generation],
        chunks: int,
        started: float,
    ) -> Compression:
        return Compression(
            text=text.strip(),
            model=self._generator.model_id,
            method="abstractive",
            input_tokens=context_tokens,
            output_tokens=self._counter.count_tokens(text.strip()),
            prompt_tokens=sum(g.prompt_tokens for g in generations),
            completion_tokens=sum(g.completion_tokens for g in generations),
            calls=len(generations),
            chunks=chunks,
            wall_s=time.perf_counter() - started,
        )

    def compress(
        self, context: str, query: str, *, context_tokens: int | None = None
    ) -> Compression:
        """Compress ``context`` for ``query``; chunks and reduces when it exceeds the window.

        ``context_tokens`` is the context's length under ``token_counter``, when known.
        """
        started = time.perf_counter()
        generations: list[Generation] = []
        if context_tokens is None:
            context_tokens = self._counter.count_tokens(context)  # once: contexts are long
        pieces = self._plan(context, context_tokens)
        chunks = len(pieces)
        for _level in range(_MAX_REDUCE_LEVELS):
            outputs = []
            for piece in pieces:
                messages = build_messages(
                    piece, query, style=self._style, sentences=self._sentences
                )
                generation = self._generator.generate(messages, self._settings)
                generations.append(generation)
                outputs.append(generation.text.strip())
            if len(outputs) == 1:
                return self._finish(outputs[0], context_tokens, generations, chunks, started)
            pieces = self._plan("\n\n".join(outputs))
        raise self._no_convergence()

    def _no_convergence(self) -> CompressionRejectedError:
        msg = (
            f"{self._name}: map-reduce did not shrink the context in {_MAX_REDUCE_LEVELS} levels; "
            "lower max_tokens or raise the window"
        )
        return CompressionRejectedError(msg)

    async def acompress(
        self, context: str, query: str, *, context_tokens: int | None = None
    ) -> Compression:
        """Async twin of ``compress``: the chunks of one level are compressed concurrently."""
        started = time.perf_counter()
        generations: list[Generation] = []
        if context_tokens is None:
            context_tokens = self._counter.count_tokens(context)  # once: contexts are long
        pieces = self._plan(context, context_tokens)
        chunks = len(pieces)
        for _level in range(_MAX_REDUCE_LEVELS):
            level = await asyncio.gather(
                *(
                    self._generator.agenerate(
                        build_messages(piece, query, style=self._style, sentences=self._sentences),
                        self._settings,
                    )
                    for piece in pieces
                )
            )
            generations.extend(level)
            outputs = [generation.text.strip() for generation in level]
            if len(outputs) == 1:
                return self._finish(outputs[0], context_tokens, generations, chunks, started)
            pieces = self._plan("\n\n".join(outputs))
        raise self._no_convergence()


def copied_compression(
    text: str,
    *,
    model: str,
    input_tokens: int,
    counter: TokenCounter,
    started: float,
) -> Compression:
    """The record of a compression that copies text from its context (no model calls).

    Example:
        >>> copied_compression("Capex.", model="m", input_tokens=9,
        ...                    counter=ApproximateTokenCounter(), started=time.perf_counter()
        ...                    ).output_tokens
        2
    """
    return Compression(
        text=text,
        model=model,
        method="extractive",
        input_tokens=input_tokens,
        output_tokens=counter.count_tokens(text),
        prompt_tokens=0,
        completion_tokens=0,
        calls=0,
        chunks=1,
        wall_s=time.perf_counter() - started,
    )


class ExtractiveCompressor:
    """Query-aware sentence selection with BM25 under a token budget.

    Example:
        >>> compressor = ExtractiveCompressor(budget_tokens=10)
        >>> text = "The CEO is Alice. Capital expenditure was $1,577 million. The logo is red."
        >>> compressor.compress(text, "What was capital expenditure?").text
        'Capital expenditure was $1,577 million.'
    """

    def __init__(
        self,
        *,
        budget_tokens: int = 200,
        token_counter: TokenCounter | None = None,
        name: str | None = None,
    ) -> None:
        """Configure the compressor.

        Args:
            budget_tokens: Most tokens the selected sentences may total.
            token_counter: Counts tokens; about four characters a token by default.
            name: Name in decisions; ``extractive-<budget>`` by default.
        """
        if budget_tokens < 1:
            msg = f"budget_tokens must be positive, got {budget_tokens}"
            raise ValueError(msg)
        self._budget = budget_tokens
        self._counter = token_counter or ApproximateTokenCounter()
        self._name = name or f"extractive-{budget_tokens}"

    @property
    def name(self) -> str:
        """The compressor's name."""
        return self._name

    @property
    def token_counter(self) -> TokenCounter:
        """What counts this compressor's tokens."""
        return self._counter

    def _rank(self, sentences: list[str], query: str) -> list[int]:
        corpus = bm25s.tokenize(sentences, stopwords="en", show_progress=False)
        query_tokens = bm25s.tokenize(query, stopwords="en", show_progress=False, return_ids=False)
        scores = np.zeros(len(sentences))
        if query_tokens and query_tokens[0] and any(len(doc) for doc in corpus.ids):
            retriever = bm25s.BM25()
            retriever.index(corpus, show_progress=False)
            scores = np.asarray(retriever.get_scores(query_tokens[0]), dtype=np.float64)
        ranked = sorted(range(len(sentences)), key=lambda index: (-scores[index], index))
        if scores.max() > 0.0:
            # Sentences that share no term with the query add tokens, not answers.
            return [index for index in ranked if scores[index] > 0.0]
        # No sentence matches the query: keep the document's opening, in order.
        return ranked

    def compress(
        self, context: str, query: str, *, context_tokens: int | None = None
    ) -> Compression:
        """Select the best sentences for ``query`` that fit the budget, in document order.

        ``context_tokens`` is the context's length under ``token_counter``, when known.
        """
        started = time.perf_counter()
        sentences = split_sentences(context)
        chosen: list[int] = []
        used = 0
        if sentences:
            for index in self._rank(sentences, query):
                cost = self._counter.count_tokens(sentences[index])
                if used + cost <= self._budget:
                    chosen.append(index)
                    used += cost
        text = " ".join(sentences[index] for index in sorted(chosen))
        if context_tokens is None:
            context_tokens = self._counter.count_tokens(context)
        return copied_compression(
            text,
            model=self._name,
            input_tokens=context_tokens,
            counter=self._counter,
            started=started,
        )

    async def acompress(
        self, context: str, query: str, *, context_tokens: int | None = None
    ) -> Compression:
        """Async twin of ``compress`` (runs in a worker thread)."""
        return await asyncio.to_thread(self.compress, context, query, context_tokens=context_tokens)

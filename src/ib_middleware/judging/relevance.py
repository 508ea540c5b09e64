"""Relevant-information PMI: how much a compression tells about what the query needs.

Two witnesses of what the query needs, chosen by ``witness``:

- ``page``: the whole context. The signal is the information bottleneck's
  pointwise retention, pmi(q; z) / pmi(q; x): the share of what the page tells the scorer about
  the query that the compression keeps. It does not depend on any ranking of the page, so it
  sees a ranker's misses (a selection of the wrong rows keeps little of what the page tells).
- ``segments`` (the default): s, the sentences or table rows of x that BM25 ranks highest for
  the query; the signal is the share of s's surprisal that z explains,
  log p(s | z, q) - log p(s | q). When the compressor ranks by BM25 too, this mostly checks
  that z copied s.

``bench/signal_quality.py`` measures both (and s = the annotated evidence, the oracle). The
page witness tells the evidence from a wrong part of the page better, but it rewards any text
that restates the query: an echoed query or a generic line about the filing keeps much of what
the page tells about the question, so it is not the default.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

from ib_estimators import nats_to_bits, pmi_retention, relevant_pmi

from ib_middleware.compressors import ApproximateTokenCounter
from ib_middleware.engines import ContinuationScore, Scorer, ScoreRequest, TokenCounter
from ib_middleware.errors import EngineError
from ib_middleware.judging.online import EstimatorName, OnlineEstimate, checked
from ib_middleware.segments import ELISION, bm25_scores, join_segments, split_segments

__all__ = [
    "DEFAULT_RELEVANT_TEMPLATE",
    "RelevantInformationEstimator",
    "RelevantTemplate",
    "Witness",
]

Witness = Literal["page", "segments"]


@dataclass(frozen=True)
class RelevantTemplate:
    """Prompts that score the relevant part s, and the query, with and without a compression z.

    Attributes:
        with_compression: Format string with ``{compression}`` and ``{query}`` before s.
        without_compression: Format string with ``{query}`` only before s.
        query_with_compression: Format string with ``{compression}`` before the query.
        query_without_compression: The prompt before the query alone.
    """

    with_compression: str
    without_compression: str
    query_with_compression: str = "Passage:\n{compression}\n\nA question this passage answers:\n"
    query_without_compression: str = "A question this passage answers:\n"


DEFAULT_RELEVANT_TEMPLATE = RelevantTemplate(
    with_compression=(
        "Notes:\n{compression}\n\nQuestion: {query}\n"
        "The passage of the document that answers the question:\n"
    ),
    without_compression=(
        "Question: {query}\nThe passage of the document that answers the question:\n"
    ),
)


class RelevantInformationEstimator:
    """How much a compression z keeps of what its context tells about the query.

    With ``witness="page"`` one short batch scores the query after z; the query
    after the whole context x and after nothing are scored once per (x, q) and cached, so the
    rungs of one page share them. The signal is ``retention``, pmi(q; z) / pmi(q; x).
    With ``witness="segments"`` (the default) the batch scores s (the top BM25 segments of x)
    after z, and the signal is ``relevant_fraction``, the share of s's surprisal z explains.
    Either way ``query_fraction`` (the share of the query's surprisal z explains) feeds the
    relevance gate: a page about another company or another matter explains little of it.

    Example:
        >>> from ib_middleware.testing import FakeScorer
        >>> def fake(prompt, continuation):
        ...     return -0.2 if "1,577" in prompt else -2.0
        >>> estimator = RelevantInformationEstimator(FakeScorer(fake), witness="page")
        >>> page = "Capex was $1,577 million. The logo is red. The CEO is Ann."
        >>> good = estimator.estimate(page, "What was capex?", "Capex: $1,577 million.")
        >>> bad = estimator.estimate(page, "What was capex?", "The logo is red.")
        >>> good.retention > bad.retention
        True
        >>> estimator.relevant_part(page, "What was capex?")
        'Capex was $1,577 million.'
    """

    def __init__(
        self,
        scorer: Scorer,
        *,
        witness: Witness = "segments",
        relevant_segments: int = 3,
        template: RelevantTemplate = DEFAULT_RELEVANT_TEMPLATE,
        cache_size: int = 1024,
        retention_floor: float = 0.02,
    ) -> None:
        """Configure the estimator.

        Args:
            scorer: The scoring engine (any ``Scorer``; prefix reuse is not needed).
            witness: ``page`` (retention of what the whole context tells about the query) or
                ``segments`` (the top BM25 segments of the context).
            relevant_segments: How many top-ranked segments make up s (``segments`` only).
            template: The scoring prompts.
            cache_size: Scores that do not depend on z kept, least recently used dropped first.
            retention_floor: The least pmi(q; x), as a share of the query's surprisal, that
                retention divides by.
        """
        if relevant_segments < 1 or cache_size < 0:
            msg = "relevant_segments must be >= 1 and cache_size >= 0"
            raise ValueError(msg)
        if witness not in ("page", "segments"):
            msg = f"witness must be 'page' or 'segments', not {witness!r}"
            raise ValueError(msg)
        self._scorer = scorer
        self._witness: Witness = witness
        self._segments = relevant_segments
        self._template = template
        self._cache_size = cache_size
        self._floor = retention_floor
        self._cache: OrderedDict[Hashable, tuple[ContinuationScore, ...]] = OrderedDict()

    @property
    def name(self) -> EstimatorName:
        """``relevant_pmi``."""
        return "relevant_pmi"

    @property
    def witness(self) -> Witness:
        """What stands for what the query needs: ``page`` or ``segments``."""
        return self._witness

    @property
    def scorer(self) -> Scorer:
        """The scoring engine."""
        return self._scorer

    def relevant_part(self, context: str, query: str) -> str:
        """The segments of ``context`` that rank highest for ``query``, in source order."""
        segments = [s for s in split_segments(context) if s.kind != "header"]
        if not segments:
            return context.strip()
        scores = bm25_scores([s.text for s in segments], query)
        ranked = sorted(range(len(segments)), key=lambda i: (-scores[i], i))
        # Segments sharing no term with the query are not what it needs (keep at least one).
        chosen = [segments[i] for i in ranked[: self._segments] if scores[i] > 0] or [
            segments[ranked[0]]
        ]
        return join_segments(chosen, with_headers=False).replace(f"\n{ELISION}\n", "\n")

    def _plan(
        self, context: str, query: str, compression: str, relevant: str | None
    ) -> tuple[Hashable, list[ScoreRequest], int]:
        """The cache key of the z-free scores, the batch to score, and how many depend on z.

        The batch is z's requests first, then (when not cached) the z-free ones: the query
        after x (``page``) or s after the query alone (``segments``), and the query alone.
        """
        template = self._template
        query_after = template.query_with_compression
        with_z = [ScoreRequest(query_after.format(compression=compression), query)]
        if relevant is None:
            key: Hashable = ("page", context, query)
            first_null = ScoreRequest(query_after.format(compression=context), query)
        else:
            key = ("segments", relevant, query)
            prompt = template.with_compression.format(compression=compression, query=query)
            with_z.insert(0, ScoreRequest(prompt, relevant))
            first_null = ScoreRequest(template.without_compression.format(query=query), relevant)
        null = [first_null, ScoreRequest(template.query_without_compression, query)]
        return key, with_z + ([] if key in self._cache else null), len(with_z)

    def _remember(self, key: Hashable, scores: tuple[ContinuationScore, ...]) -> None:
        if not self._cache_size:
            return
        self._cache[key] = scores
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _build(
        self,
        key: Hashable,
        requests: list[ScoreRequest],
        own: int,
        compression: str,
        results: list[ContinuationScore],
    ) -> OnlineEstimate:
        results = checked(results, len(requests))
        fresh = results[:own]
        first_null, query_null = tuple(results[own:]) or self._cache[key]
        query_with_z = fresh[-1]
        first_with_z = fresh[0] if own == 2 else None  # s after z (``segments`` only)
        same_length = query_with_z.n_tokens == query_null.n_tokens and (
            first_null.n_tokens == (first_with_z or query_null).n_tokens
        )
        if not same_length:
            msg = "scorer tokenised the same text differently in two requests"
            raise EngineError(msg)
        try:
            about_query = relevant_pmi(query_with_z.token_logprobs, query_null.token_logprobs)
            if first_with_z is None:
                kept = pmi_retention(
                    query_with_z.token_logprobs,
                    first_null.token_logprobs,
                    query_null.token_logprobs,
                    floor=self._floor,
                )
                nats, upper = kept.compression_nats, None
                retention, fraction, relevant_tokens = kept.retention, None, 0
            else:
                value = relevant_pmi(first_with_z.token_logprobs, first_null.token_logprobs)
                nats, upper = value.nats, value.upper_bound_nats
                retention, fraction, relevant_tokens = None, value.fraction, value.n_tokens
        except ValueError as exc:
            raise EngineError(f"unusable log-probabilities from the scorer: {exc}") from exc
        self._remember(key, (first_null, query_null))
        n_tokens = _count(self._scorer, compression)
        bits = nats_to_bits(nats)
        return OnlineEstimate(
            estimator="relevant_pmi",
            nats=nats,
            bits=bits,
            bits_per_token=bits / n_tokens if n_tokens else 0.0,
            n_tokens=n_tokens,
            saturated=False,
            upper_bound_nats=upper,
            reference_count=0,
            unsupported_spans=(),
            unsupported_fraction=0.0,
            scorer_model=self._scorer.model_id,
            relevant_fraction=fraction,
            relevant_tokens=relevant_tokens,
            query_fraction=about_query.fraction,
            retention=retention,
        )

    def _witness_text(self, context: str, query: str, relevant: str | None) -> str | None:
        if relevant is not None:
            return relevant
        return None if self._witness == "page" else self.relevant_part(context, query)

    def estimate(
        self,
        context: str,
        query: str,
        compression: str,
        *,
        references: Sequence[str] = (),
        relevant: str | None = None,
    ) -> OnlineEstimate:
        """Estimate what ``compression`` keeps (``references`` are not needed).

        Args:
            context: The raw context x.
            query: The query q.
            compression: The compression z.
            references: Unused (the protocol's contrastive reference set).
            relevant: An explicit witness s (for example the annotated evidence, to measure
                the estimator against an oracle); overrides ``witness``.
        """
        del references
        key, requests, own = self._plan(
            context, query, compression, self._witness_text(context, query, relevant)
        )
        results = self._scorer.score(requests)
        return self._build(key, requests, own, compression, results)

    async def aestimate(
        self,
        context: str,
        query: str,
        compression: str,
        *,
        references: Sequence[str] = (),
        relevant: str | None = None,
    ) -> OnlineEstimate:
        """Async twin of ``estimate``."""
        del references
        key, requests, own = self._plan(
            context, query, compression, self._witness_text(context, query, relevant)
        )
        results = await self._scorer.ascore(requests)
        return self._build(key, requests, own, compression, results)


def _count(scorer: Scorer, text: str) -> int:
    if isinstance(scorer, TokenCounter):
        return scorer.count_tokens(text)
    return ApproximateTokenCounter().count_tokens(text)

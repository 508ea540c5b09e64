"""Relevant-information PMI: how much a compression tells about what the query needs.

log p(s | z, q) - log p(s | q), where s is the part of the context that ranks highest for the
query. The router's default signal: measured on graded compressions
(``bench/signal_quality.py``), it tells the kept evidence from a copy of the wrong part of the
page or a generic summary where CXMI cannot, at a fraction of CXMI's cost.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from ib_estimators import relevant_pmi

from ib_middleware.compressors import ApproximateTokenCounter
from ib_middleware.engines import ContinuationScore, Scorer, ScoreRequest, TokenCounter
from ib_middleware.errors import EngineError
from ib_middleware.online import EstimatorName, OnlineEstimate, checked
from ib_middleware.segments import ELISION, bm25_scores, join_segments, split_segments

__all__ = ["DEFAULT_RELEVANT_TEMPLATE", "RelevantInformationEstimator", "RelevantTemplate"]


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
    """Relevant-information PMI: log p(s | z, q) - log p(s | q), s the query-relevant part of x.

    s is the ``relevant_segments`` sentences or table rows of the context that BM25 ranks
    highest for the query (``ib_middleware.segments``), in source order. A compression that
    kept them, figures intact, makes s far more likely; one that kept another part of the
    page, altered a figure or echoed the query does not. The same batch scores the query after
    z (``query_fraction``: how much of the query z explains, which the relevance gate reads: a
    page about another company or another matter explains little of it). p(s | q) and p(q) do
    not depend on z and are cached per (s, q), so each compression costs one batch of
    |z| + |q| + |s| and |z| + |q| tokens, never the whole context.

    Example:
        >>> from ib_middleware.testing import FakeScorer
        >>> scorer = FakeScorer(lambda prompt, s: -0.2 if "1,577" in prompt else -2.0)
        >>> estimator = RelevantInformationEstimator(scorer)
        >>> page = "Capex was $1,577 million. The logo is red. The CEO is Ann."
        >>> estimator.relevant_part(page, "What was capex?")
        'Capex was $1,577 million.'
        >>> good = estimator.estimate(page, "What was capex?", "Capex: $1,577 million.")
        >>> bad = estimator.estimate(page, "What was capex?", "The logo is red.")
        >>> good.nats > bad.nats
        True
    """

    def __init__(
        self,
        scorer: Scorer,
        *,
        relevant_segments: int = 3,
        template: RelevantTemplate = DEFAULT_RELEVANT_TEMPLATE,
        cache_size: int = 1024,
    ) -> None:
        """Configure the estimator.

        Args:
            scorer: The scoring engine (any ``Scorer``; prefix reuse is not needed).
            relevant_segments: How many top-ranked segments make up s.
            template: The scoring prompts.
            cache_size: Null scores p(s | q) kept, least recently used dropped first.
        """
        if relevant_segments < 1 or cache_size < 0:
            msg = "relevant_segments must be >= 1 and cache_size >= 0"
            raise ValueError(msg)
        self._scorer = scorer
        self._segments = relevant_segments
        self._template = template
        self._cache_size = cache_size
        self._null: OrderedDict[tuple[str, str], tuple[ContinuationScore, ContinuationScore]] = (
            OrderedDict()
        )

    @property
    def name(self) -> EstimatorName:
        """``relevant_pmi``."""
        return "relevant_pmi"

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

    def _requests(
        self, relevant: str, query: str, compression: str
    ) -> tuple[list[ScoreRequest], tuple[ContinuationScore, ContinuationScore] | None]:
        """The scoring batch: s and the query after z, then their null scores when not cached."""
        template = self._template
        cached = self._null.get((relevant, query))
        requests = [
            ScoreRequest(
                template.with_compression.format(compression=compression, query=query), relevant
            ),
            ScoreRequest(template.query_with_compression.format(compression=compression), query),
        ]
        if cached is None:
            requests += [
                ScoreRequest(template.without_compression.format(query=query), relevant),
                ScoreRequest(template.query_without_compression, query),
            ]
        return requests, cached

    def _build(
        self,
        relevant: str,
        query: str,
        compression: str,
        results: list[ContinuationScore],
        cached: tuple[ContinuationScore, ContinuationScore] | None,
    ) -> OnlineEstimate:
        with_z, query_with_z, *rest = checked(results, 2 if cached is not None else 4)
        null, query_null = cached if cached is not None else (rest[0], rest[1])
        if with_z.n_tokens != null.n_tokens or query_with_z.n_tokens != query_null.n_tokens:
            msg = "scorer tokenised the same text differently in two requests"
            raise EngineError(msg)
        try:
            value = relevant_pmi(with_z.token_logprobs, null.token_logprobs)
            about_query = relevant_pmi(query_with_z.token_logprobs, query_null.token_logprobs)
        except ValueError as exc:
            raise EngineError(f"unusable log-probabilities from the scorer: {exc}") from exc
        if self._cache_size:
            self._null[(relevant, query)] = (null, query_null)
            self._null.move_to_end((relevant, query))
            while len(self._null) > self._cache_size:
                self._null.popitem(last=False)
        n_tokens = _count(self._scorer, compression)
        bits = value.bits
        return OnlineEstimate(
            estimator="relevant_pmi",
            nats=value.nats,
            bits=bits,
            bits_per_token=bits / n_tokens if n_tokens else 0.0,
            n_tokens=n_tokens,
            saturated=False,
            upper_bound_nats=value.upper_bound_nats,
            reference_count=0,
            unsupported_spans=(),
            unsupported_fraction=0.0,
            scorer_model=self._scorer.model_id,
            relevant_fraction=value.fraction,
            relevant_tokens=value.n_tokens,
            query_fraction=about_query.fraction,
        )

    def estimate(
        self, context: str, query: str, compression: str, *, references: Sequence[str] = ()
    ) -> OnlineEstimate:
        """Relevant-information PMI of ``compression`` (``references`` are not needed)."""
        del references
        relevant = self.relevant_part(context, query)
        requests, cached = self._requests(relevant, query, compression)
        results = self._scorer.score(requests)
        return self._build(relevant, query, compression, results, cached)

    async def aestimate(
        self, context: str, query: str, compression: str, *, references: Sequence[str] = ()
    ) -> OnlineEstimate:
        """Async twin of ``estimate``."""
        del references
        relevant = self.relevant_part(context, query)
        requests, cached = self._requests(relevant, query, compression)
        results = await self._scorer.ascore(requests)
        return self._build(relevant, query, compression, results, cached)


def _count(scorer: Scorer, text: str) -> int:
    if isinstance(scorer, TokenCounter):
        return scorer.count_tokens(text)
    return ApproximateTokenCounter().count_tokens(text)

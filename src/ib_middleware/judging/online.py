"""Online (per-compression) information estimates: the router's input.

- ``CXMIEstimator``: two scorings of z, with and without the context, in one batch.
  Unbounded; per-token contributions show which spans of z the context does not support.
- ``ContrastivePMIEstimator``: z scored under its own context and a reference set (the other
  contexts of the same request plus a bounded reservoir of recent contexts); bounded by
  log(K + 1) for K references.
- ``ib_middleware.judging.relevance.RelevantInformationEstimator``: how much of what x tells about
  the query z keeps, pmi(q; z) / pmi(q; x) (or, with BM25 segments s as witness, how much z
  tells about s). One short scoring pass per compression (the z-free terms are cached).

All report nats, bits and bits per token of z (in the scorer's tokens).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from ib_estimators import contrastive_pmi, cxmi

from ib_middleware.engines import ContinuationScore, Scorer, ScoreRequest
from ib_middleware.errors import EngineError
from ib_middleware.prompts import DEFAULT_SCORING_TEMPLATE, ScoringTemplate

__all__ = [
    "CXMIEstimator",
    "ContrastivePMIEstimator",
    "OnlineEstimate",
    "OnlineEstimator",
]

EstimatorName = Literal["cxmi", "contrastive_pmi", "relevant_pmi"]


@dataclass(frozen=True)
class OnlineEstimate:
    """The information one compression carries about its context.

    Attributes:
        estimator: ``cxmi`` or ``contrastive_pmi``.
        nats: Information in nats (CXMI may be negative: z is less likely given x).
        bits: The same in bits.
        bits_per_token: Bits per token of z: the quantity thresholds apply to.
        n_tokens: Length of z in scorer tokens.
        saturated: A bounded estimate sits at its cap (raise the reference count).
        upper_bound_nats: The cap (contrastive PMI), or None.
        reference_count: Contexts z was contrasted with (contrastive PMI), else 0.
        unsupported_spans: (start, end) token ranges of z with negative CXMI contribution.
        unsupported_fraction: Share of z's tokens with negative contribution.
        scorer_model: The scoring model.
        unsupported_text: The text of each unsupported span, when the scorer can tokenise
            and detokenise locally (the embedded engine can); empty otherwise.
        relevant_fraction: Relevant-information PMI only: the share of the relevant part's
            surprisal that z explains (1.0 = z makes it certain), else None.
        relevant_tokens: Relevant-information PMI only: length of the relevant part s.
        query_fraction: Relevant-information PMI only: the share of the query's surprisal that
            z explains, log p(q | z) - log p(q) over -log p(q); what the relevance gate
            thresholds (a page about something else explains little of the query).
        retention: Relevant-information PMI with the whole page as witness only: the share of
            what the page tells about the query that z keeps, pmi(q; z) / pmi(q; x).
    """

    estimator: EstimatorName
    nats: float
    bits: float
    bits_per_token: float
    n_tokens: int
    saturated: bool
    upper_bound_nats: float | None
    reference_count: int
    unsupported_spans: tuple[tuple[int, int], ...]
    unsupported_fraction: float
    scorer_model: str
    unsupported_text: tuple[str, ...] = ()
    relevant_fraction: float | None = None
    relevant_tokens: int = 0
    query_fraction: float | None = None
    retention: float | None = None


@runtime_checkable
class OnlineEstimator(Protocol):
    """Estimates how much information a compression carries about its context."""

    @property
    def name(self) -> EstimatorName:
        """The estimator's name, as recorded in decisions and spans."""
        ...

    def estimate(
        self, context: str, query: str, compression: str, *, references: Sequence[str] = ()
    ) -> OnlineEstimate:
        """Estimate for one compression; ``references`` are other contexts of the request."""
        ...

    async def aestimate(
        self, context: str, query: str, compression: str, *, references: Sequence[str] = ()
    ) -> OnlineEstimate:
        """Async twin of ``estimate``."""
        ...


def checked(results: list[ContinuationScore], expected: int) -> list[ContinuationScore]:
    """``results`` when the scorer returned one score per request, else an ``EngineError``."""
    if len(results) != expected:
        msg = f"scorer returned {len(results)} scores for {expected} requests"
        raise EngineError(msg)
    return results


class CXMIEstimator:
    """CXMI: log p(z | x, q) - log p(z | q), token by token.

    Example:
        >>> from ib_middleware.testing import FakeScorer
        >>> def fake(prompt, z):
        ...     return [-0.5, -0.5] if "Document" in prompt else [-3.0, -0.1]
        >>> scorer = FakeScorer(fake)
        >>> estimate = CXMIEstimator(scorer).estimate("x", "q", "two tokens")
        >>> round(estimate.nats, 2), estimate.unsupported_spans
        (2.1, ((1, 2),))
    """

    def __init__(
        self, scorer: Scorer, *, template: ScoringTemplate = DEFAULT_SCORING_TEMPLATE
    ) -> None:
        """Score with ``scorer`` after prompts built by ``template``."""
        self._scorer = scorer
        self._template = template

    @property
    def name(self) -> EstimatorName:
        """``cxmi``."""
        return "cxmi"

    @property
    def scorer(self) -> Scorer:
        """The scoring engine."""
        return self._scorer

    def _requests(self, context: str, query: str, compression: str) -> list[ScoreRequest]:
        return [
            ScoreRequest(self._template.prompt(context, query), compression),
            ScoreRequest(self._template.null_prompt(query), compression),
        ]

    def _span_texts(self, compression: str, spans: tuple[tuple[int, int], ...]) -> tuple[str, ...]:
        tokenize = getattr(self._scorer, "tokenize", None)
        detokenize = getattr(self._scorer, "detokenize", None)
        if not spans or not callable(tokenize) or not callable(detokenize):
            return ()
        try:
            tokens = tokenize(compression)
            return tuple(detokenize(tokens[start:end]) for start, end in spans)
        except Exception:  # noqa: BLE001  # span text is a convenience; the estimate stands
            return ()

    def _build(self, compression: str, results: list[ContinuationScore]) -> OnlineEstimate:
        with_context, without_context = checked(results, 2)
        if with_context.n_tokens != without_context.n_tokens:
            msg = "scorer tokenised the same compression differently in two requests"
            raise EngineError(msg)
        try:
            value = cxmi(with_context.token_logprobs, without_context.token_logprobs)
        except ValueError as exc:
            raise EngineError(f"unusable log-probabilities from the scorer: {exc}") from exc
        return OnlineEstimate(
            estimator="cxmi",
            nats=value.nats,
            bits=value.bits,
            bits_per_token=value.bits_per_token,
            n_tokens=value.n_tokens,
            saturated=False,
            upper_bound_nats=None,
            reference_count=0,
            unsupported_spans=value.unsupported_spans,
            unsupported_fraction=value.unsupported_fraction,
            scorer_model=self._scorer.model_id,
            unsupported_text=self._span_texts(compression, value.unsupported_spans),
        )

    def estimate(
        self, context: str, query: str, compression: str, *, references: Sequence[str] = ()
    ) -> OnlineEstimate:
        """CXMI of ``compression`` with ``context`` (``references`` are not needed)."""
        del references
        results = self._scorer.score(self._requests(context, query, compression))
        return self._build(compression, results)

    async def aestimate(
        self, context: str, query: str, compression: str, *, references: Sequence[str] = ()
    ) -> OnlineEstimate:
        """Async twin of ``estimate``."""
        del references
        results = await self._scorer.ascore(self._requests(context, query, compression))
        return self._build(compression, results)


class ContrastivePMIEstimator:
    """Contrastive PMI against the request's other contexts and a reservoir of recent ones.

    Example:
        >>> from ib_middleware.testing import FakeScorer
        >>> scorer = FakeScorer(lambda prompt, z: -1.0 if "own" in prompt else -30.0)
        >>> estimator = ContrastivePMIEstimator(scorer)
        >>> estimate = estimator.estimate("own page", "q", "z", references=["a", "b", "c"])
        >>> round(estimate.bits, 3), estimate.reference_count
        (2.0, 3)
    """

    def __init__(
        self,
        scorer: Scorer,
        *,
        template: ScoringTemplate = DEFAULT_SCORING_TEMPLATE,
        reservoir_size: int = 16,
        max_references: int = 32,
    ) -> None:
        """Configure the estimator.

        Args:
            scorer: The scoring engine.
            template: Scoring prompt template.
            reservoir_size: Recent contexts kept as references across requests.
            max_references: Most references per estimate (request contexts first).
        """
        if reservoir_size < 0 or max_references < 1:
            msg = "reservoir_size must be >= 0 and max_references >= 1"
            raise ValueError(msg)
        self._scorer = scorer
        self._template = template
        self._reservoir: deque[str] = deque(maxlen=reservoir_size)
        self._max_references = max_references

    @property
    def name(self) -> EstimatorName:
        """``contrastive_pmi``."""
        return "contrastive_pmi"

    @property
    def reservoir(self) -> tuple[str, ...]:
        """Recent contexts currently held as references."""
        return tuple(self._reservoir)

    def _references(self, context: str, references: Sequence[str]) -> list[str]:
        chosen: list[str] = []
        for candidate in [*references, *reversed(self._reservoir)]:
            if candidate != context and candidate not in chosen and candidate.strip():
                chosen.append(candidate)
            if len(chosen) == self._max_references:
                break
        if not chosen:
            msg = (
                "contrastive PMI needs reference contexts: pass the request's other contexts, "
                "or let the reservoir fill (or use the cxmi estimator)"
            )
            raise ValueError(msg)
        return chosen

    def _requests(
        self, context: str, query: str, compression: str, references: list[str]
    ) -> list[ScoreRequest]:
        return [
            ScoreRequest(self._template.prompt(candidate, query), compression)
            for candidate in [context, *references]
        ]

    def _build(self, context: str, results: list[ContinuationScore], count: int) -> OnlineEstimate:
        own, *others = checked(results, count + 1)
        try:
            value = contrastive_pmi(own.total, [o.total for o in others], n_tokens=own.n_tokens)
        except ValueError as exc:
            raise EngineError(f"unusable log-probabilities from the scorer: {exc}") from exc
        self._reservoir.append(context)
        return OnlineEstimate(
            estimator="contrastive_pmi",
            nats=value.nats,
            bits=value.bits,
            bits_per_token=value.bits_per_token,
            n_tokens=value.n_tokens,
            saturated=value.saturated,
            upper_bound_nats=value.upper_bound_nats,
            reference_count=count,
            unsupported_spans=(),
            unsupported_fraction=0.0,
            scorer_model=self._scorer.model_id,
        )

    def estimate(
        self, context: str, query: str, compression: str, *, references: Sequence[str] = ()
    ) -> OnlineEstimate:
        """Contrastive PMI of ``compression``; raises ValueError with no references at all."""
        chosen = self._references(context, references)
        results = self._scorer.score(self._requests(context, query, compression, chosen))
        return self._build(context, results, len(chosen))

    async def aestimate(
        self, context: str, query: str, compression: str, *, references: Sequence[str] = ()
    ) -> OnlineEstimate:
        """Async twin of ``estimate``."""
        chosen = self._references(context, references)
        results = await self._scorer.ascore(self._requests(context, query, compression, chosen))
        return self._build(context, results, len(chosen))

"""Query-aware selection of whole segments: an evidence-keeping compressor at CPU speed."""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from threading import Lock

from ib_middleware.compressors import ApproximateTokenCounter, Compression, copied_compression
from ib_middleware.engines import TokenCounter
from ib_middleware.segments import Segment, bm25_scores, join_segments, split_segments

__all__ = ["Ranking", "SegmentCompressor", "facets", "rank_segments"]

_CACHE_SIZE = 32
_YEAR = re.compile(r"\b(?:FY\s?)?((?:19|20)\d{2})\b|\bFY\s?'?(\d{2})\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z][\w&'.-]*")
_NAME = re.compile(r"\b[A-Z][\w&'-]*(?:\s+(?:of|the|de|and|&)?\s*[A-Z][\w&'-]*)*")
_NOT_NAMES = frozenset(
    {"what", "which", "who", "whom", "when", "where", "why", "how", "is", "are", "was", "were",
     "does", "did", "do", "the", "a", "an", "in", "of", "for", "and", "or", "if", "give",
     "answer", "please", "based", "calculate", "using", "by", "as", "fy", "usd", "q1", "q2",
     "q3", "q4"}
)  # fmt: skip
_SHORT = 3


@dataclass
class Ranking:
    """A page's segments ranked for a query: computed once, shared by every rung of one item.

    Attributes:
        segments: The selectable segments (headers are not: they ride with their rows).
        scores: BM25 score of each segment's ``ranked_text`` (or ``text``) for the query.
        order: Segment positions, best first (ties in source order).
        tokens: Token counts already taken, by counter and segment text.
    """

    segments: tuple[Segment, ...]
    scores: tuple[float, ...]
    order: tuple[int, ...]
    tokens: dict[tuple[int, str], int] = field(default_factory=dict)

    def count(self, counter: TokenCounter, text: str) -> int:
        """``counter``'s count of ``text``, counted once per ranking."""
        key = (id(counter), text)
        if key not in self.tokens:
            self.tokens[key] = counter.count_tokens(text)
        return self.tokens[key]


_RANKINGS: OrderedDict[tuple[str, str, bool, bool], Ranking] = OrderedDict()
_RANKINGS_LOCK = Lock()


def _names(text: str) -> list[str]:
    """Capitalised names of ``text`` (runs of capitalised words), without question words."""
    out = []
    for match in _NAME.finditer(text):
        words = [w for w in match.group(0).split() if w.lower() not in _NOT_NAMES]
        if words:
            out.append(" ".join(words))
    return out


def facets(query: str, segments: tuple[Segment, ...]) -> list[str]:
    r"""The query's years, names and metric words that the page has, in query order.

    Years are read as four digits (``FY2019``, ``FY19`` → ``2019``); names are capitalised
    words after the first; a metric word is a query word that a table row or header names.

    Example:
        >>> from ib_middleware.segments import split_segments
        >>> page = "Revenue\n(Millions)\n2019\n2018\nRevenue\n5\n4\nCosts\n3\n2"
        >>> facets("What was FY2019 revenue for Acme?", tuple(split_segments(page)))
        ['2019', 'revenue']
    """
    words = {w.lower() for s in segments for w in _WORD.findall(s.ranked_text)}
    words |= {y for s in segments for y in re.findall(r"\b(?:19|20)\d{2}\b", s.ranked_text)}
    table_words = {
        w.lower() for s in segments if s.kind == "row" for w in _WORD.findall(s.ranked_text)
    }
    found: list[str] = []
    for match in _YEAR.finditer(query):
        year = match.group(1) or f"20{match.group(2)}"
        if year in words:
            found.append(year)
    first = query.split(maxsplit=1)[0] if query.split() else ""
    for name in _names(query):
        for word in name.split():
            lowered = word.lower()
            if word != first and len(lowered) >= _SHORT and lowered in words:
                found.append(lowered)
    for word in _WORD.findall(query):
        lowered = word.lower()
        if len(lowered) > _SHORT and lowered not in _NOT_NAMES and lowered in table_words:
            found.append(lowered)
    return list(dict.fromkeys(found))


def _bare(title: str) -> str:
    """A title without its parenthetical (``Ed Wood (film)`` → ``ed wood``), lower case."""
    return re.sub(r"\s*\([^)]*\)\s*$", "", title).strip().lower()


def _bridges(segments: tuple[Segment, ...], top: list[int]) -> list[str]:
    """Titles of other blocks that the best segments name: where a bridge question goes next."""
    seen = {segments[i].title for i in top}
    text = " ".join(segments[i].text for i in top).lower()
    titles = dict.fromkeys(s.title for s in segments if s.title and s.title not in seen)
    return [title for title in titles if len(_bare(title)) > _SHORT and _bare(title) in text]


def rank_segments(
    context: str, query: str, *, context_words: bool = False, second_hop: bool = False
) -> Ranking:
    """The page's segments ranked by BM25 for ``query``; cached for the last few pages.

    Args:
        context: The page.
        query: The query.
        context_words: Rank each segment with its block title and table header words.
        second_hop: Add the names of the two best segments (and their titles) to the query
            and rank again: a bridge question names the entity that the answer's page is about
            only in the first page's text.

    Example:
        >>> ranking = rank_segments("Capex was 5. The logo is red.", "What was capex?")
        >>> [ranking.segments[i].text for i in ranking.order]
        ['Capex was 5.', 'The logo is red.']
    """
    key = (context, query, context_words, second_hop)
    with _RANKINGS_LOCK:
        cached = _RANKINGS.get(key)
        if cached is not None:
            _RANKINGS.move_to_end(key)
            return cached
    segments = tuple(s for s in split_segments(context) if s.kind != "header")
    texts = [s.ranked_text if context_words else s.text for s in segments]
    scores = bm25_scores(texts, query)
    order = sorted(range(len(segments)), key=lambda i: (-scores[i], i))
    hops = _bridges(segments, order[:2]) if second_hop and order and scores[order[0]] else []
    if hops:
        expanded = " ".join([query, *hops])
        scores = bm25_scores(texts, expanded)
        order = sorted(range(len(segments)), key=lambda i: (-scores[i], i))
    ranking = Ranking(segments, tuple(scores), tuple(order))
    with _RANKINGS_LOCK:
        _RANKINGS[key] = ranking
        while len(_RANKINGS) > _CACHE_SIZE:
            _RANKINGS.popitem(last=False)
    return ranking


class SegmentCompressor:
    r"""Query-aware selection of whole sentences, list items and table rows, at CPU speed.

    The page is split by structure (``ib_middleware.segments``): a table row keeps its table's
    header rows (years, units), a sentence stays whole, a list item keeps its marker.
    Segments are ranked by BM25 for the query (``rank_segments``: optionally with their title
    and header words, and a second hop for bridge names); the best is always kept, then, with
    ``cover_facets``, the best segment for every year, name and metric word of the query the
    page has, then the next ones while they score at least ``relative_score`` of the best, up
    to ``max_segments`` (None: no cap) and the budget: ``budget_tokens``, or ``budget_share`` of
    the page when that is larger (a long page keeps proportionally more).
    Chosen segments keep source order, and ``[…]`` marks each gap. It copies text, so every
    figure it forwards is on the page. A page with no term of the query gives an empty
    compression (the ladder then escalates). Rungs of one item share one split and ranking
    (a small cache keyed by page and query), so a ladder of several budgets costs little more
    than one.

    Example:
        >>> page = "Cash flows\n(Millions)\n2018\n2017\nCapex\n(1,577)\n(1,373)\nThe logo."
        >>> print(SegmentCompressor().compress(page, "What was capex?").text)
        (Millions) 2018 2017
        Capex (1,577) (1,373)
    """

    def __init__(
        self,
        *,
        budget_tokens: int = 160,
        max_segments: int | None = 4,
        relative_score: float = 0.6,
        budget_share: float = 0.0,
        context_words: bool = False,
        cover_facets: bool = False,
        second_hop: bool = False,
        token_counter: TokenCounter | None = None,
        name: str | None = None,
    ) -> None:
        """Configure the compressor.

        Args:
            budget_tokens: Most tokens the selection may total (headers included).
            max_segments: Most segments kept (None: as many as the budget holds).
            relative_score: A segment after the best is kept only while its BM25 score is at
                least this share of the best one's.
            budget_share: The budget grows to this share of the page's tokens on long pages
                (0 keeps it at ``budget_tokens``).
            context_words: Rank segments with their block title and table header words.
            cover_facets: Keep a segment for every year, name and metric word of the query
                that the page has (``facets``) before filling by rank.
            second_hop: Rank again with the names of the two best segments added to the query.
            token_counter: Counts tokens; about four characters a token by default.
            name: Name in decisions; ``segments-<budget>`` by default.
        """
        if budget_tokens < 1 or (max_segments is not None and max_segments < 1):
            msg = "budget_tokens and max_segments must be positive"
            raise ValueError(msg)
        if not 0.0 <= relative_score <= 1.0 or not 0.0 <= budget_share < 1.0:
            msg = "relative_score must be in [0, 1] and budget_share in [0, 1)"
            raise ValueError(msg)
        self._budget = budget_tokens
        self._max_segments = max_segments
        self._relative = relative_score
        self._share = budget_share
        self._context_words = context_words
        self._cover_facets = cover_facets
        self._second_hop = second_hop
        self._counter = token_counter or ApproximateTokenCounter()
        self._name = name or f"segments-{budget_tokens}"

    @property
    def name(self) -> str:
        """The compressor's name."""
        return self._name

    @property
    def token_counter(self) -> TokenCounter:
        """What counts this compressor's tokens."""
        return self._counter

    def budget(self, context_tokens: int) -> int:
        """The token budget for a page of ``context_tokens`` tokens."""
        return max(self._budget, int(self._share * context_tokens))

    def _candidates(self, ranking: Ranking, query: str) -> tuple[list[int], int]:
        """Segment positions in the order they are offered: best, facets, then by rank.

        Also how many lead the list ahead of the ranking (the best and the facets' picks).
        """
        order = list(ranking.order)
        if not self._cover_facets or not order:
            return order, 1
        words = [
            {w.lower() for w in re.findall(r"[\w&'.-]+", s.ranked_text)} for s in ranking.segments
        ]
        offered = [order[0]]
        for facet in facets(query, ranking.segments):
            if any(facet in words[i] for i in offered):
                continue
            best = next((i for i in order if facet in words[i]), None)
            if best is not None:
                offered.append(best)
        return list(dict.fromkeys([*offered, *order])), len(offered)

    def select(
        self, context: str, query: str, *, context_tokens: int | None = None
    ) -> list[Segment]:
        """The segments this compressor keeps for ``query``, in source order.

        ``context_tokens`` is the page's token count when the caller has it (else it is
        counted here when ``budget_share`` needs it).
        """
        if context_tokens is None and self._share:
            context_tokens = self._counter.count_tokens(context)
        budget = self.budget(context_tokens or 0)
        ranking = rank_segments(
            context, query, context_words=self._context_words, second_hop=self._second_hop
        )
        segments, scores = ranking.segments, ranking.scores
        if not ranking.order or scores[ranking.order[0]] <= 0.0:
            return []
        best = scores[ranking.order[0]]
        candidates, leading = self._candidates(ranking, query)
        if self._max_segments is not None:
            candidates = candidates[: self._max_segments]
        picked: list[Segment] = []
        headers: set[str] = set()
        used = 0
        for rank, index in enumerate(candidates):
            segment = segments[index]
            if rank >= leading and self._relative and scores[index] < self._relative * best:
                break
            cost = ranking.count(self._counter, segment.text) + 1  # its line break
            if segment.kind == "row" and segment.header and segment.header not in headers:
                cost += ranking.count(self._counter, segment.header) + 1
            if picked and used + cost > budget:
                continue
            picked.append(segment)
            headers.add(segment.header)
            used += cost
        # Counted piecewise above; the joined text (with its gap marks) must fit too.
        while len(picked) > 1 and self._counter.count_tokens(join_segments(picked)) > budget:
            picked.pop()
        return sorted(picked, key=lambda s: s.index)

    def compress(
        self, context: str, query: str, *, context_tokens: int | None = None
    ) -> Compression:
        """Select the segments that best answer ``query``, with their headers, in source order.

        ``context_tokens`` is the context's length under ``token_counter``, when known.
        """
        started = time.perf_counter()
        if context_tokens is None:
            context_tokens = self._counter.count_tokens(context)
        text = join_segments(self.select(context, query, context_tokens=context_tokens))
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

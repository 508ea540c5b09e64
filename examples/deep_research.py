"""Deep Research in the shape of He et al. (2025) section 3.5: plan, search and compress, write.

1. The predictor plans sub-queries for a research question (8 by default).
2. For each sub-query a BM25 search over a local corpus returns passages (up to ~400 tokens,
   cut from the pages of the bundled FinanceBench sample), and the compressor stage compresses
   each passage for its sub-query. All compressions are submitted at once
   (``asyncio.gather`` over ``stage.arun``): on a server engine (SGLang, vLLM) they run in
   parallel; the embedded llama.cpp engine serves them one at a time.
3. The predictor writes the report from the compressed findings.

It then accounts tokens and cost against the uncompressed baseline, in which the predictor
reads every retrieved passage in full. The baseline is counted, not run (eight full pages
would overflow the 135M predictor's window); its cost is priced at a frontier predictor's
list price (``--price-model``, from ``ib_estimators.DEFAULT_PRICES``) and the local
compressor's API cost is 0.

Models, all offline: the predictor is the embedded SmolLM2-135M-Instruct, a real model. It
plans and writes, but it is tiny: when it proposes fewer distinct sub-queries than asked, the
rest come from a template and are marked ``(template)``. The stage is the library default
(SmolLM2-135M, then Gemma-3-270M, CXMI scored by Gemma-3-270M, then the full passage).

Runtime, measured on 2 CPU cores shared with other model jobs: 1 min 5 s with
``IB_EXAMPLES_QUICK=1``
(2 sub-queries); 8 sub-queries add about 20-40 s per extra compression.

    python examples/deep_research.py [--subqueries 8] [--company 3M]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np
from ib_estimators import DEFAULT_PRICES, api_cost

from ib_middleware.compressors import ApproximateTokenCounter
from ib_middleware.engines import ChatMessage, GenerationSettings, Generator, TokenCounter
from ib_middleware.lab.data import load_financebench
from ib_middleware.results import StageResult
from ib_middleware.stage import CompressionStage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _support import example_models, quick, timed

PASSAGE_TOKENS = 400
TEMPLATE_TOPICS = (
    "revenue",
    "net income",
    "cash flow from operations",
    "capital expenditure",
    "total debt",
    "dividends",
    "operating margin",
    "inventory",
)


@dataclass(frozen=True)
class Passage:
    """A piece of one filing page."""

    source: str
    text: str


def passages(max_tokens: int = PASSAGE_TOKENS) -> list[Passage]:
    """The corpus: every distinct page of the bundled sample, cut at line breaks."""
    counter = ApproximateTokenCounter()
    seen: dict[str, Passage] = {}
    for case in load_financebench():
        for number, page in enumerate(case.pages, start=1):
            piece: list[str] = []
            for line in [*page.splitlines(), None]:
                text = "\n".join(piece)
                if line is None or (piece and counter.count_tokens(text + line) > max_tokens):
                    if text.strip() and text not in seen:
                        seen[text] = Passage(f"{case.company} p{number}", text)
                    piece = []
                if line is not None:
                    piece.append(line)
    return list(seen.values())


class Corpus:
    """BM25 over the passages."""

    def __init__(self, items: list[Passage]) -> None:
        self.items = items
        self._index = bm25s.BM25()
        tokens = bm25s.tokenize([p.text for p in items], stopwords="en", show_progress=False)
        self._index.index(tokens, show_progress=False)

    def search(self, query: str, k: int) -> list[Passage]:
        """The ``k`` passages BM25 ranks highest for ``query``."""
        tokens = bm25s.tokenize(query, stopwords="en", show_progress=False, return_ids=False)
        scores = np.asarray(self._index.get_scores(tokens[0]))
        return [self.items[i] for i in np.argsort(-scores, kind="stable")[:k]]


def ask(predictor: Generator, prompt: str, max_tokens: int) -> tuple[str, int, int]:
    """One predictor call: its text, prompt tokens and completion tokens."""
    settings = GenerationSettings(max_tokens=max_tokens, temperature=0.0)
    reply = predictor.generate([ChatMessage("user", prompt)], settings)
    return reply.text.strip(), reply.prompt_tokens, reply.completion_tokens


def plan(predictor: Generator, question: str, company: str, count: int) -> list[str]:
    """Sub-queries from the predictor, topped up from the template when it offers too few."""
    prompt = (
        f"Research question: {question}\nWrite {count} short search queries about {company}'s "
        "annual report that together answer it. One query per line, no numbering."
    )
    text, _, _ = ask(predictor, prompt, 100)
    planned: list[str] = []
    for line in text.splitlines():
        query = re.sub(r"^\s*(\d+[.)]|[-*])\s*", "", line).strip().strip('"')
        if 3 <= len(query.split()) <= 20 and query.lower() not in map(str.lower, planned):
            planned.append(query)
    for topic in TEMPLATE_TOPICS:
        if len(planned) >= count:
            break
        planned.append(f"{company} {topic} (template)")
    return planned[:count]


async def compress_all(
    stage: CompressionStage, jobs: list[tuple[str, Passage]]
) -> list[StageResult]:
    """Every (sub-query, passage) compression at once."""
    runs = [stage.arun([p.text], query.removesuffix(" (template)")) for query, p in jobs]
    return [result for [result] in await asyncio.gather(*runs)]


def report_prompt(question: str, findings: list[str]) -> str:
    notes = "\n\n".join(f"[{i}] {text}" for i, text in enumerate(findings, start=1))
    return f"Notes:\n{notes}\n\nWrite a short research report answering: {question}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--company", default="3M")
    parser.add_argument("--question", default=None)
    parser.add_argument("--subqueries", type=int, default=quick(8, 2))
    parser.add_argument("--passages", type=int, default=1, help="passages per sub-query")
    parser.add_argument("--price-model", default="gpt-4o", choices=sorted(DEFAULT_PRICES))
    args = parser.parse_args(argv)
    question = args.question or f"How healthy are {args.company}'s finances?"

    stage, predictor = example_models()
    counter: TokenCounter = (
        predictor if isinstance(predictor, TokenCounter) else stage.token_counter
    )
    corpus = Corpus(passages())
    print(f"question: {question}\ncorpus: {len(corpus.items)} passages (BM25)")
    with timed("plan (predictor: SmolLM2-135M)"):
        subqueries = plan(predictor, question, args.company, args.subqueries)
    jobs = [(q, p) for q in subqueries for p in corpus.search(q, args.passages)]
    with timed(f"search and compress {len(jobs)} passages"):
        results = asyncio.run(compress_all(stage, jobs))
    for (query, passage), result in zip(jobs, results, strict=True):
        bits = "-" if result.bits_per_token is None else f"{result.bits_per_token:.3f}"
        print(
            f"  {query!r} -> {passage.source}: {result.decision} "
            f"{result.input_tokens}->{result.output_tokens} tokens, {bits} bits/token"
        )
    with timed("write (predictor: SmolLM2-135M)"):
        report, prompt_tokens, completion_tokens = ask(
            predictor, report_prompt(question, [r.text for r in results]), 200
        )
    print(f"\nreport:\n{report}\n")

    # Both sides counted the same way (the predictor's tokenizer, without its chat template).
    compressed_tokens = counter.count_tokens(report_prompt(question, [r.text for r in results]))
    baseline_tokens = counter.count_tokens(report_prompt(question, [p.text for _, p in jobs]))
    compressor_tokens = sum(
        a.compression.prompt_tokens + a.compression.completion_tokens
        for r in results
        for a in r.attempts
        if a.compression
    )
    ours = api_cost(args.price_model, compressed_tokens, completion_tokens)
    baseline = api_cost(args.price_model, baseline_tokens, completion_tokens)
    print(
        f"predictor input tokens: {compressed_tokens} with compression, {baseline_tokens} "
        f"uncompressed ({compressed_tokens / baseline_tokens:.0%}; the call itself took "
        f"{prompt_tokens} with the chat template)\n"
        f"compressor tokens (local, API cost 0): {compressor_tokens}\n"
        f"predictor cost at {args.price_model} prices: ${ours:.5f} vs ${baseline:.5f} "
        f"uncompressed ({ours / baseline:.0%})\n"
        f"decisions: "
        + ", ".join(
            f"{d} {sum(r.decision == d for r in results)}"
            for d in ("accepted", "fallback", "passthrough")
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

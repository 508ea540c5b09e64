"""The demo graph: retrieve filing pages, compress them, answer the question."""

from __future__ import annotations

import operator
import os
import random
from collections.abc import Sequence
from typing import Annotated, Any, TypedDict

from langchain_core.documents import Document
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from ib_middleware.build import EngineCache
from ib_middleware.config import EngineConfig
from ib_middleware.engines import ChatMessage, GenerationSettings, Generator, TokenCounter
from ib_middleware.errors import IBMiddlewareError
from ib_middleware.lab.data import FinanceBenchCase
from ib_middleware.langgraph import compression_node
from ib_middleware.registry import create_engine
from ib_middleware.stage import CompressionStage

__all__ = ["ANSWER_TOKENS", "DemoState", "FilingPages", "build_demo_graph", "resolve_answerer"]

ANSWER_TOKENS = 64
_ANSWER_SYSTEM = (
    "You answer questions about company filings using only the pages given. "
    "Reply with the answer in one short sentence."
)


class DemoState(TypedDict, total=False):
    """The demo graph's state."""

    case_id: str
    question: str
    documents: list[Document]
    answer: str
    ib_decisions: Annotated[list[dict[str, Any]], operator.add]


class FilingPages:
    """The demo's retriever: a case's evidence pages plus seeded distractors, shuffled.

    Questions are the first case of each company whose evidence pages are each at most
    ``max_page_tokens`` long, so a run stays within minutes on two cores.

    Example:
        >>> from ib_middleware.compressors import ApproximateTokenCounter
        >>> from ib_middleware.lab.data import load_financebench
        >>> pages = FilingPages(load_financebench(), ApproximateTokenCounter(), pages=3)
        >>> case = pages.questions(1)[0]
        >>> documents = pages.retrieve(case.case_id)
        >>> len(documents), sum(d.metadata["evidence"] for d in documents) >= 1
        (3, True)
    """

    def __init__(
        self,
        cases: Sequence[FinanceBenchCase],
        counter: TokenCounter,
        *,
        pages: int = 3,
        max_page_tokens: int = 800,
        seed: int = 0,
    ) -> None:
        """Index the cases; ``pages`` is the total per question (evidence first)."""
        self._cases = {case.case_id: case for case in cases}
        self._pages = pages
        self._seed = seed
        self._fits = {
            case.case_id: all(counter.count_tokens(p) <= max_page_tokens for p in case.pages)
            for case in cases
        }
        self._pool = [
            (case.company, index, page)
            for case in cases
            if self._fits[case.case_id]
            for index, page in enumerate(case.pages)
        ]

    def questions(self, count: int) -> list[FinanceBenchCase]:
        """The first ``count`` demo questions, one per company, in file order."""
        chosen: dict[str, FinanceBenchCase] = {}
        for case in self._cases.values():
            if self._fits[case.case_id] and case.company not in chosen:
                chosen[case.company] = case
        return list(chosen.values())[:count]

    def retrieve(self, case_id: str) -> list[Document]:
        """The pages for one question: its evidence plus distractors, in a seeded order."""
        case = self._cases[case_id]
        rng = random.Random(f"{self._seed}:{case_id}")  # noqa: S311  # a reproducible page choice
        documents = [
            Document(p, metadata={"source": f"{case.company} p{i + 1}", "evidence": True})
            for i, p in enumerate(case.pages)
        ]
        others = [entry for entry in self._pool if entry[0] != case.company]
        for company, index, page in rng.sample(others, max(0, self._pages - len(documents))):
            meta = {"source": f"{company} p{index + 1}", "evidence": False}
            documents.append(Document(page, metadata=meta))
        rng.shuffle(documents)
        return documents


def build_demo_graph(
    stage: CompressionStage, answerer: Generator, pages: FilingPages
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The ``retrieve -> compress -> answer`` graph.

    Example:
        ::

            graph = build_demo_graph(build_stage(), answerer, pages)
            state = graph.invoke({"case_id": case.case_id, "question": case.query})
            print(state["answer"], state["ib_decisions"])
    """

    def retrieve(state: DemoState) -> dict[str, Any]:
        return {"documents": pages.retrieve(state["case_id"])}

    def answer(state: DemoState) -> dict[str, Any]:
        context = "\n\n".join(
            f"[{doc.metadata.get('source', 'page')}]\n{doc.page_content}"
            for doc in state.get("documents", [])
        )
        prompt = f"Pages:\n{context}\n\nQuestion: {state['question']}"
        messages = [ChatMessage("system", _ANSWER_SYSTEM), ChatMessage("user", prompt)]
        settings = GenerationSettings(max_tokens=ANSWER_TOKENS, temperature=0.0)
        return {"answer": answerer.generate(messages, settings).text.strip()}

    builder: StateGraph[Any, Any, Any, Any] = StateGraph(DemoState)
    builder.add_node("retrieve", retrieve)
    builder.add_node(
        "compress",
        compression_node(stage, messages_key=None, documents_key="documents", query_key="question"),
    )
    builder.add_node("answer", answer)
    builder.add_edge(START, "retrieve")
    builder.add_edge("retrieve", "compress")
    builder.add_edge("compress", "answer")
    builder.add_edge("answer", END)
    return builder.compile(name="ib_middleware_demo")


def resolve_answerer(model: str | None, engines: EngineCache) -> Generator:
    """The answering model: an OpenAI-compatible endpoint when a model is named, else SmolLM2.

    Raises:
        IBMiddlewareError: A model is named but no endpoint is configured.

    Example:
        ::

            answerer = resolve_answerer(None, EngineCache())        # the embedded SmolLM2
            answerer = resolve_answerer("gpt-4.1-mini", engines)    # needs OPENAI_BASE_URL / KEY
    """
    name = model or os.environ.get("IB_DEMO_MODEL")
    if not name:
        generator = engines.get(EngineConfig(options={"model_path": "smollm2"}))
        if not isinstance(generator, Generator):
            msg = "the embedded SmolLM2 engine cannot generate; reinstall ib-middleware[embedded]"
            raise IBMiddlewareError(msg)
        return generator
    if not (os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY")):
        msg = (
            f"model {name!r} needs an OpenAI-compatible endpoint: set OPENAI_BASE_URL "
            "(and OPENAI_API_KEY if it needs one), or drop --model / IB_DEMO_MODEL to "
            "answer with the embedded SmolLM2"
        )
        raise IBMiddlewareError(msg)
    generator = create_engine("openai", model=name)
    if not isinstance(generator, Generator):
        msg = "the openai engine cannot generate; install ib-middleware[openai]"
        raise IBMiddlewareError(msg)
    return generator

"""Our spans nest under the agent's when OpenInference instruments LangChain and LangGraph."""

from __future__ import annotations

from typing import TypedDict

import pytest
from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda
from langgraph.graph import END, START, StateGraph
from openinference.instrumentation.langchain import LangChainInstrumentor
from opentelemetry import trace

from ib_middleware.compressors import AbstractiveCompressor
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.langgraph import compression_node
from ib_middleware.stage import CompressionStage
from ib_middleware.telemetry import attributes as names
from ib_middleware.telemetry.testing import InMemoryTelemetry
from ib_middleware.testing import FakeCompressor, FakeScorer

PAGE = "Capital expenditure was $1,577 million in 2018. " + "Other filler text here. " * 60
QUERY = "What was capital expenditure?"


class State(TypedDict, total=False):
    question: str
    decision: str


def make_stage(memory):
    generator = FakeCompressor(model_id="fake-0", default="Capex was $1,577 million.")
    scorer = FakeScorer(lambda p, z: -1.0 if "Document:" in p else -5.0)
    return CompressionStage(
        [Rung(AbstractiveCompressor(generator, window_tokens=5000), 0.5)],
        estimator=CXMIEstimator(scorer),
        token_budget=50,
        observers=[memory.telemetry()],
    )


@pytest.fixture
def memory():
    memory = InMemoryTelemetry()
    instrumentor = LangChainInstrumentor()
    instrumentor.instrument(tracer_provider=memory.tracer_provider)
    try:
        yield memory
    finally:
        instrumentor.uninstrument()
        memory.shutdown()


def parent_name(memory, span):
    by_id = {s.context.span_id: s for s in memory.spans()}
    return by_id[span.parent.span_id].name


def assert_one_trace(memory):
    assert len({span.context.trace_id for span in memory.spans()}) == 1


async def test_nested_under_a_runnable_lambda(memory):
    stage = make_stage(memory)

    def compress(question: str) -> str:
        return stage.run([PAGE], question)[0].decision

    async def acompress(question: str) -> str:
        return (await stage.arun([PAGE], question))[0].decision

    assert RunnableLambda(compress, name="compress_step").invoke(QUERY) == "accepted"
    assert await RunnableLambda(acompress, name="acompress_step").ainvoke(QUERY) == "accepted"
    first, second = [s for s in memory.spans() if s.name == names.SPAN_STAGE]
    assert parent_name(memory, first) == "compress_step"
    assert parent_name(memory, second) == "acompress_step"
    lambda_span = memory.span("compress_step")
    assert first.parent.span_id == lambda_span.context.span_id
    assert first.context.trace_id == lambda_span.context.trace_id


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_nested_under_a_langgraph_node(memory, mode):
    stage = make_stage(memory)

    def node(state: State) -> State:
        return {"decision": stage.run([PAGE], state["question"])[0].decision}

    async def anode(state: State) -> State:
        return {"decision": (await stage.arun([PAGE], state["question"]))[0].decision}

    builder = StateGraph(State)
    builder.add_node("compress", node if mode == "sync" else anode)
    builder.add_edge(START, "compress")
    builder.add_edge("compress", END)
    graph = builder.compile()
    if mode == "sync":
        final = graph.invoke({"question": QUERY})
    else:
        final = await graph.ainvoke({"question": QUERY})
    assert final["decision"] == "accepted"
    stage_span = memory.span(names.SPAN_STAGE)
    assert parent_name(memory, stage_span) == "compress"
    assert_one_trace(memory)
    chat = memory.span("chat fake-0")
    assert chat.parent.span_id == stage_span.context.span_id


def test_nested_under_the_packaged_compression_node(memory):
    stage = make_stage(memory)
    builder = StateGraph(dict)
    builder.add_node(
        "compress", compression_node(stage, documents_key="documents", query_key="question")
    )
    builder.add_edge(START, "compress")
    builder.add_edge("compress", END)
    graph = builder.compile()
    graph.invoke({"question": QUERY, "documents": [Document(page_content=PAGE)]})
    stage_span = memory.span(names.SPAN_STAGE)
    by_id = {s.context.span_id: s for s in memory.spans()}
    ancestors = []
    span = stage_span
    while span.parent is not None:
        span = by_id[span.parent.span_id]
        ancestors.append(span.name)
    assert "compress" in ancestors
    assert_one_trace(memory)


def test_an_inner_application_span_wins_over_the_langchain_run(memory):
    stage = make_stage(memory)
    tracer = memory.tracer_provider.get_tracer("app")

    def compress(question: str) -> str:
        with tracer.start_as_current_span("my_step"):
            return stage.run([PAGE], question)[0].decision

    RunnableLambda(compress, name="compress_step").invoke(QUERY)
    stage_span = memory.span(names.SPAN_STAGE)
    assert parent_name(memory, stage_span) == "my_step"
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_without_instrumentation_the_stage_is_a_root(memory):
    LangChainInstrumentor().uninstrument()
    stage = make_stage(memory)
    RunnableLambda(lambda q: stage.run([PAGE], q), name="compress_step").invoke(QUERY)
    assert memory.span(names.SPAN_STAGE).parent is None

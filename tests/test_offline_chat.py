"""GeneratorChatModel: an ib-middleware Generator as a LangChain chat model, sync and async."""

from __future__ import annotations

import pytest
from langchain_core.exceptions import ContextOverflowError
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool

from ib_middleware.engines import ChatMessage, Generation, GenerationSettings
from ib_middleware.errors import ContextWindowExceededError
from ib_middleware.langgraph import GeneratorChatModel
from ib_middleware.testing import FakeCompressor

CONVERSATION = [
    SystemMessage("Answer from the filings."),
    HumanMessage("What was 3M's capex in 2018?"),
    AIMessage("", tool_calls=[{"name": "search", "args": {"q": "3M"}, "id": "c1"}]),
    ToolMessage("Purchases of PP&E were $1,577 million.", tool_call_id="c1", name="search"),
]


class SyncOnly:
    """A generator with no async twin: the model runs it off the event loop."""

    model_id = "sync-only"

    def __init__(self, text: str) -> None:
        self.text = text
        self.seen: list[tuple[list[ChatMessage], GenerationSettings | None]] = []

    def generate(self, messages, settings=None):
        self.seen.append((list(messages), settings))
        return Generation(
            self.text, self.model_id, prompt_tokens=7, completion_tokens=3, wall_s=0.0
        )


class TooLong:
    model_id = "too-long"

    def generate(self, messages, settings=None):
        raise ContextWindowExceededError("prompt does not fit n_ctx=64")

    async def agenerate(self, messages, settings=None):
        raise ContextWindowExceededError("prompt does not fit n_ctx=64")


@tool
def search(q: str) -> str:
    """Search the filings."""
    return "Purchases of PP&E were $1,577 million in 2018. " * 30


def test_roles_layout_sends_one_turn_per_message_with_settings():
    generator = SyncOnly("$1,577 million.")
    model = GeneratorChatModel(generator=generator, max_tokens=32, seed=3)
    reply = model.invoke(CONVERSATION)
    assert reply.content == "$1,577 million."
    assert reply.tool_calls == []
    [(messages, settings)] = generator.seen
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[-1].content.startswith("Result of search:\n")
    assert (settings.max_tokens, settings.temperature, settings.seed) == (32, 0.0, 3)
    assert reply.usage_metadata["total_tokens"] > 0
    assert reply.response_metadata["model_name"] == generator.model_id


def test_single_turn_layout_folds_the_conversation_into_one_user_turn():
    generator = FakeCompressor(default="ok")
    model = GeneratorChatModel(
        generator=generator, layout="single_turn", instruction="Answer in one sentence."
    )
    model.invoke(CONVERSATION)
    [messages] = generator.history
    assert [m.role for m in messages] == ["system", "user"]
    assert messages[1].content.startswith("Question: What was 3M's capex in 2018?")
    assert "Result of search:" in messages[1].content
    assert messages[1].content.endswith("Answer in one sentence.")


def test_stop_sequences_reach_the_engine_and_cut_the_reply():
    generator = SyncOnly("The answer.\nQuestion: and then?")
    reply = GeneratorChatModel(generator=generator).invoke("q", stop=["\nQuestion:"])
    assert reply.content == "The answer."
    assert generator.seen[0][1].stop == ("\nQuestion:",)


async def test_async_uses_agenerate_or_a_worker_thread():
    generator = FakeCompressor(default="async answer")
    reply = await GeneratorChatModel(generator=generator).ainvoke(CONVERSATION)
    assert reply.content == "async answer"
    assert len(generator.history) == 1
    sync_only = SyncOnly("from a thread")
    reply = await GeneratorChatModel(generator=sync_only).ainvoke("q", stop=["zzz"])
    assert reply.content == "from a thread"
    assert sync_only.seen[0][1].stop == ("zzz",)


def test_streaming_gives_the_reply_as_one_chunk():
    model = GeneratorChatModel(generator=FakeCompressor(default="streamed"))
    chunks = list(model.stream("q"))
    assert "".join(str(chunk.content) for chunk in chunks) == "streamed"


async def test_a_prompt_over_the_window_is_a_context_overflow_sync_and_async():
    model = GeneratorChatModel(generator=TooLong())
    with pytest.raises(ContextOverflowError, match="n_ctx=64"):
        model.invoke("q")
    with pytest.raises(ContextOverflowError, match="n_ctx=64"):
        await model.ainvoke("q")


async def test_create_agent_runs_on_it_and_gets_a_plain_answer():
    from langchain.agents import create_agent

    generator = FakeCompressor(default="I cannot call tools; here is my answer.")
    agent = create_agent(GeneratorChatModel(generator=generator), tools=[search])
    state = agent.invoke({"messages": [("user", "What was 3M's capex?")]})
    assert state["messages"][-1].content == "I cannot call tools; here is my answer."
    assert [type(m).__name__ for m in state["messages"]] == ["HumanMessage", "AIMessage"]
    state = await agent.ainvoke({"messages": [("user", "What was 3M's capex?")]})
    assert state["messages"][-1].tool_calls == []


@pytest.mark.slow
async def test_the_embedded_smollm2_answers_offline_sync_and_async():
    llamacpp = pytest.importorskip(
        "ib_integrations.llamacpp", reason="needs the embedded engine: the embedded extra"
    )
    engine = llamacpp.LlamaCppEngine.smollm2(n_ctx=1024)
    model = GeneratorChatModel(generator=engine, max_tokens=24)
    question = [HumanMessage("What is the capital of France? Answer in one word.")]
    reply = model.invoke(question)
    assert "paris" in str(reply.content).lower(), reply.content
    assert reply.usage_metadata["output_tokens"] <= 24
    assert reply.response_metadata["model_name"] == "SmolLM2-135M-Instruct"
    again = await model.ainvoke(question)
    assert again.content == reply.content  # greedy: the same reply
    count = model.invoke([HumanMessage("Count: 1, 2, 3, 4, 5, 6, 7")], stop=["5"])
    assert "5" not in str(count.content), count.content

"""The original always one call away: on the message, in a store, and through expand_context.

Every drop-in, sync and async, in a ReAct loop where the model reads the id it was shown and
calls ``expand_context`` with it: the tool returns the original, whole and uncompressed.
Plus one run of the real embedded stage (slow; run it under the model lock).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolCall, ToolMessage
from langgraph.store.memory import InMemoryStore
from tool_loops import (
    DROP_INS,
    IN_STATE,
    PAGE,
    QUESTION,
    RESULTS,
    build,
    make_stage,
    run,
    search_tool,
    shown_id,
    tool_messages,
)

from ib_middleware.langgraph import (
    DECISIONS_KEY,
    EXPAND_TOOL_NAME,
    MARKER_KEY,
    InMemoryOriginalStore,
    LangGraphOriginalStore,
    MessageCompressor,
    OriginalStore,
    decision_id,
    expand_context_tool,
    find_original,
)

MODES = ["sync", "async"]
STORES = ["metadata", "memory", "langgraph"]
ORIGINAL = json.dumps(RESULTS, ensure_ascii=False)


def make_store(kind: str) -> OriginalStore | None:
    if kind == "memory":
        return InMemoryOriginalStore()
    if kind == "langgraph":
        return LangGraphOriginalStore(InMemoryStore())
    return None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("store_kind", STORES)
@pytest.mark.parametrize("drop_in", DROP_INS)
async def test_the_model_reads_the_original_back_with_expand_context(drop_in, store_kind, mode):
    store = make_store(store_kind)
    tools = [search_tool("json")]
    if not drop_in.startswith("IBMiddleware"):  # the middleware adds the tool itself
        tools.append(expand_context_tool(store))
    seen: list[Any] = []
    graph = build(drop_in, make_stage(), tools, seen, expand=True, originals=store, expandable=True)
    final = await run(graph, mode)
    assert len(seen) == 3, "search, expand_context, answer"
    shown = json.loads(tool_messages(seen[1])[0].content)
    key = shown["_ib_original"]
    assert re.fullmatch(r"ib-[0-9a-f]{10}", key)
    assert key == decision_id(ORIGINAL)
    compressed, expanded = tool_messages(seen[2])
    assert expanded.name == EXPAND_TOOL_NAME
    assert expanded.content == ORIGINAL, "the original, whole and never compressed again"
    assert MARKER_KEY not in expanded.response_metadata
    mark = compressed.response_metadata[MARKER_KEY]
    if store is None:
        assert mark["original"] == ORIGINAL
    else:
        assert "original" not in mark
        assert mark["original_ref"] == key
        assert store.get(key) == ORIGINAL
    if drop_in in IN_STATE:
        records = [r for r in final[DECISIONS_KEY] if r.get("id")]
        assert [r["id"] for r in records] == [key]


@pytest.mark.parametrize("mode", MODES)
async def test_a_text_output_shows_its_id_on_a_trailer_line(mode):
    store = InMemoryOriginalStore()
    seen: list[Any] = []
    tools = [search_tool("text"), expand_context_tool(store)]
    graph = build("add_compression", make_stage(), tools, seen, expand=True, originals=store)
    await run(graph, mode)
    assert len(seen) == 2, "without expandable=True the model is shown no id"
    seen.clear()
    graph = build(
        "add_compression",
        make_stage(),
        tools,
        seen,
        expand=True,
        originals=store,
        expandable=True,
    )
    await run(graph, mode)
    content = tool_messages(seen[1])[0].content
    last = content.splitlines()[-1]
    assert last == f"[compressed; original: expand_context('{decision_id(PAGE)}')]"
    assert tool_messages(seen[2])[1].content == PAGE


def history(content: Any) -> list[Any]:
    call = ToolCall(name="search", args={"query": "3M capex 2018"}, id="c1")
    return [
        HumanMessage(QUESTION, id="h1"),
        AIMessage("", tool_calls=[call], id="a1"),
        ToolMessage(content, tool_call_id="c1", name="search", id="t1"),
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_an_accepted_text_output_keeps_its_original(mode):
    compressor = MessageCompressor(make_stage())
    messages = history(PAGE)
    out = compressor.compress(messages) if mode == "sync" else await compressor.acompress(messages)
    mark = out.messages[2].response_metadata[MARKER_KEY]
    assert mark["decision"] in ("accepted", "pruned")
    assert (mark["original"], mark["id"]) == (PAGE, decision_id(PAGE))
    assert find_original(mark["id"], out.messages) == PAGE


class BrokenStore(InMemoryOriginalStore):
    def put(self, key: str, original: Any) -> None:
        raise OSError("disk full")

    async def aput(self, key: str, original: Any) -> None:
        raise OSError("disk full")


@pytest.mark.parametrize("mode", MODES)
async def test_a_failing_store_keeps_the_original_on_the_message(mode, caplog):
    compressor = MessageCompressor(make_stage(), originals=BrokenStore())
    messages = history(ORIGINAL)
    out = compressor.compress(messages) if mode == "sync" else await compressor.acompress(messages)
    mark = out.messages[2].response_metadata[MARKER_KEY]
    assert mark["original"] == ORIGINAL
    assert "original_ref" not in mark
    assert "the store failed (OSError)" in caplog.text


@pytest.mark.parametrize("mode", MODES)
async def test_the_stores_keep_and_give_back(mode):
    for store in (InMemoryOriginalStore(max_items=2), LangGraphOriginalStore(InMemoryStore())):
        assert isinstance(store, OriginalStore)
        blocks = [{"type": "text", "text": "a page"}]
        if mode == "sync":
            store.put("ib-1", blocks)
            assert store.get("ib-1") == blocks
            assert store.get("ib-2") is None
        else:
            await store.aput("ib-1", blocks)
            assert await store.aget("ib-1") == blocks
            assert await store.aget("ib-2") is None
    lru = InMemoryOriginalStore(max_items=2)
    for key in ("a", "b", "c"):
        lru.put(key, key)
    assert (len(lru), lru.get("a"), lru.get("c")) == (2, None, "c")
    with pytest.raises(ValueError, match="max_items"):
        InMemoryOriginalStore(max_items=0)


@pytest.mark.parametrize("mode", MODES)
async def test_expand_context_says_what_to_do_when_nothing_is_kept(mode):
    tool = expand_context_tool(InMemoryOriginalStore())
    args = {"id": "ib-0000000000", "state": {"messages": []}}
    answer = tool.invoke(args) if mode == "sync" else await tool.ainvoke(args)
    assert "No original is kept for 'ib-0000000000'" in answer
    assert "call the tool that produced it again" in answer


# --- the real embedded stage ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("mode", MODES)
async def test_the_default_stage_judges_each_result_and_keeps_the_original(mode):
    from ib_middleware.build import build_stage

    stage = build_stage()
    compressor = MessageCompressor(stage, expandable=True)
    messages = history(ORIGINAL)
    out = compressor.compress(messages) if mode == "sync" else await compressor.acompress(messages)
    content = out.messages[2].content
    data = json.loads(content)  # valid JSON from the real stage
    assert len(data["results"]) == len(RESULTS["results"])
    [record] = out.decisions
    assert len(record["results"]) == len(RESULTS["results"]), "one decision per result"
    if record["decision"] in ("accepted", "pruned"):
        assert shown_id(out.messages) == record["id"]
        assert find_original(record["id"], out.messages) == ORIGINAL
    else:
        assert content == ORIGINAL

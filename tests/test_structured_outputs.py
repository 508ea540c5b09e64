"""Tool outputs as agents return them: JSON, content blocks, artifacts and text, per result.

Every drop-in in a ReAct loop, sync and async, with the react-agent template's search shape:
the model's next call shows the output in its own shape (valid JSON stays valid JSON), each
result judged on its own (compressed, kept or pruned to a note that keeps title and url), the
decision record one entry per result plus the total, and the original kept.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolCall, ToolMessage
from langgraph.errors import GraphInterrupt
from tool_loops import (
    DROP_INS,
    IN_STATE,
    PAGE,
    QUESTION,
    RESULTS,
    SHAPES,
    build,
    make_stage,
    run,
    search_tool,
    tool_messages,
)

from ib_middleware.langgraph import (
    DECISIONS_KEY,
    MARKER_KEY,
    CompressionCache,
    MessageCompressor,
    find_original,
)
from ib_middleware.langgraph import _outcome as outcome_module
from ib_middleware.langgraph._shape import Shape, read_shape
from ib_middleware.stage import ContextItem

MODES = ["sync", "async"]
RELEVANT = "3M capital expenditure was $1,577 million in 2018."
[LONG, SHORT, DISTRACTOR] = RESULTS["results"]


def original_content(shape: str) -> Any:
    """What the tool message held before compression."""
    if shape == "json":
        return json.dumps(RESULTS, ensure_ascii=False)
    if shape == "blocks":
        return [{"type": "text", "text": r["content"]} for r in RESULTS["results"]]
    return PAGE


def check_shown(shape: str, content: Any) -> None:
    """The output the model read, in the input's shape, each result as decided."""
    if shape == "json":
        data = json.loads(content)  # valid JSON, or this raises
        assert data["query"] == RESULTS["query"]
        first, second, third = data["results"]
        assert first == {**LONG, "content": RELEVANT}, "compressed: text replaced, rest kept"
        assert second == SHORT, "kept whole"
        assert set(third) == {"title", "url", "note"}
        assert (third["title"], third["url"]) == (DISTRACTOR["title"], DISTRACTOR["url"])
        assert third["note"].startswith("nothing relevant to the question; ")
    elif shape == "blocks":
        first, second, third = content
        assert first == {"type": "text", "text": RELEVANT}
        assert second == {"type": "text", "text": SHORT["content"]}
        assert third["type"] == "text"
        assert third["text"].startswith("[nothing relevant to the question; ")
    elif shape == "artifact":
        assert content.startswith(f"{LONG['title']}\n{RELEVANT}\n\n{SHORT['title']}\n")
        assert f"{DISTRACTOR['title']}\n[nothing relevant to the question; " in content
        assert "Other text here" not in content
    else:
        assert isinstance(content, str)
        assert content != PAGE


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("drop_in", DROP_INS)
async def test_each_shape_in_a_react_loop(drop_in, shape, mode):
    seen: list[Any] = []
    final = await run(build(drop_in, make_stage(), [search_tool(shape)], seen), mode)
    assert len(seen) == 2
    [shown] = tool_messages(seen[1])
    check_shown(shape, shown.content)
    for call in seen:  # valid JSON in every call the model made
        for message in tool_messages(call):
            if shape == "json":
                json.loads(message.content)
    mark = shown.response_metadata[MARKER_KEY]
    assert mark["decision"] == "accepted"
    assert mark["original"] == original_content(shape)
    [in_state] = tool_messages(final["messages"])
    if drop_in in IN_STATE:
        assert in_state.content == shown.content
        assert in_state.response_metadata[MARKER_KEY]["original"] == original_content(shape)
    else:  # per-call drop-ins leave state as it was: the original is the message itself
        assert in_state.content == original_content(shape)
    assert find_original(mark["id"], final) == original_content(shape)
    if shape == "artifact":
        assert in_state.artifact == RESULTS, "the artifact is never altered"
    records = final.get(DECISIONS_KEY, [])
    if drop_in == "CompressingChatModel":  # no state to write to: the decisions ride on replies
        records = final["messages"][-1].response_metadata[DECISIONS_KEY]
    [record] = records
    assert record["decision"] == "accepted"
    assert record["id"] == mark["id"]
    if shape == "text":
        assert "results" not in record
        return
    decisions = [entry["decision"] for entry in record["results"]]
    assert decisions == ["accepted", "fallback", "pruned"], "one decision per result"
    assert record["input_tokens"] == sum(entry["input_tokens"] for entry in record["results"])
    assert "3 results judged one by one: 1 kept, 1 compressed, 1 pruned" in record["reason"]
    assert "text" not in json.dumps(record["results"][0]["attempts"][0].get("compression", {}))


# --- the budget is the tool output's ----------------------------------------------------------


SHORT_ITEMS = [
    "Boeing capital expenditure was $1,722 million in 2018. Other text here. Other text.",
    "3M capital expenditure in 2018 was $1,577 million. Other text here. More text.",
]


@pytest.mark.parametrize("mode", MODES)
async def test_a_group_over_budget_has_every_item_judged(mode):
    stage = make_stage()
    stage.token_budget = 30  # each item is under it alone; together they are over
    grouped = [ContextItem(text, "tool:search", group="t1") for text in SHORT_ITEMS]
    alone = [ContextItem(text, "tool:search") for text in SHORT_ITEMS]
    for items, judged in ((grouped, True), (alone, False)):
        if mode == "sync":
            results = stage.run(items, QUESTION)
        else:
            results = await stage.arun(items, QUESTION)
        if judged:
            assert all(result.attempts for result in results), "every result judged"
            assert results[0].decision == "pruned"
        else:
            assert [result.decision for result in results] == ["passthrough"] * 2


def test_a_group_within_budget_passes_through():
    stage = make_stage()
    stage.token_budget = 500
    items = [ContextItem(text, "tool:search", group="t1") for text in SHORT_ITEMS]
    results = stage.run(items, QUESTION)
    assert [result.decision for result in results] == ["passthrough"] * 2
    assert "with its group" in results[0].reason


# --- records, nothing to judge, failures ---------------------------------------------------------


def history(content: Any, **fields: Any) -> list[Any]:
    call = ToolCall(name="search", args={"query": "3M capex 2018"}, id="c1")
    return [
        HumanMessage(QUESTION, id="h1"),
        AIMessage("", tool_calls=[call], id="a1"),
        ToolMessage(content, tool_call_id="c1", name="search", id="t1", **fields),
    ]


async def compress(compressor: MessageCompressor, messages: list[Any], mode: str) -> Any:
    if mode == "sync":
        return compressor.compress(messages)
    return await compressor.acompress(messages)


@pytest.mark.parametrize("mode", MODES)
async def test_a_record_has_its_long_fields_compressed_in_place(mode):
    record = {
        "id": 7,
        "filed": "2019-02-07",
        "filing": {
            "overview": "3M capital expenditure was $1,577 million in 2018. " + "More words. " * 30,
            "segments": ["Safety", "Industrial"],
        },
    }
    out = await compress(MessageCompressor(make_stage()), history(json.dumps(record)), mode)
    data = json.loads(out.messages[2].content)
    assert data == {**record, "filing": {**record["filing"], "overview": RELEVANT}}


@pytest.mark.parametrize("mode", MODES)
async def test_json_with_nothing_to_judge_is_left_whole(mode):
    rows = json.dumps({"rows": [{"k": "x", "v": index} for index in range(300)]})
    out = await compress(MessageCompressor(make_stage()), history(rows), mode)
    assert out.messages[2].content == rows
    assert out.decisions == []


@pytest.mark.parametrize("mode", MODES)
async def test_a_failure_putting_it_back_forwards_the_original(mode, monkeypatch):
    def broken(self: Shape, results: Any, *, reference: str = "") -> Any:
        raise ValueError("cannot write")

    monkeypatch.setattr(Shape, "write", broken)
    content = json.dumps(RESULTS)
    out = await compress(MessageCompressor(make_stage()), history(content), mode)
    assert out.messages[2].content == content
    [record] = out.decisions
    assert record["decision"] == "fallback"
    assert "putting the output back together failed (ValueError: cannot write)" in record["reason"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_failure_reading_it_leaves_the_message_alone(mode, monkeypatch):
    def broken(message: Any) -> Any:
        raise ValueError("cannot read")

    monkeypatch.setattr("ib_middleware.langgraph._messages.read_shape", broken)
    messages = history(json.dumps(RESULTS))
    out = await compress(MessageCompressor(make_stage()), messages, mode)
    assert out.messages == messages
    assert out.decisions == []


@pytest.mark.parametrize("mode", MODES)
async def test_control_flow_passes_through_reassembly(mode, monkeypatch):
    def interrupted(self: Shape, results: Any, *, reference: str = "") -> Any:
        raise GraphInterrupt(())

    monkeypatch.setattr(Shape, "write", interrupted)
    with pytest.raises(GraphInterrupt):
        await compress(MessageCompressor(make_stage()), history(json.dumps(RESULTS)), mode)
    assert outcome_module.judged  # the guard lives there


# --- reading the shapes -----------------------------------------------------------------------


def test_each_shape_is_read_once_as_structure():
    read = {
        "json": read_shape(history(json.dumps(RESULTS))[2]),
        "blocks": read_shape(history(original_content("blocks"))[2]),
        "artifact": read_shape(history(PAGE, artifact=RESULTS)[2]),
        "text": read_shape(history(PAGE)[2]),
    }
    assert {name: shape.kind for name, shape in read.items() if shape} == {
        "json": "json",
        "blocks": "blocks",
        "artifact": "artifact",
        "text": "text",
    }
    assert read["json"].texts[0] == f"title: {LONG['title']}\ncontent: {LONG['content']}"
    assert read["blocks"].texts[1] == SHORT["content"]
    assert len(read["artifact"].texts) == 3
    assert read["text"].texts == [PAGE]


def test_other_content_is_left_alone_or_read_as_text():
    image = {"type": "image", "url": "https://example.com/chart.png"}
    assert read_shape(history([{"type": "text", "text": PAGE}, image])[2]) is None
    unmatched = read_shape(history("A summary of the results.", artifact=RESULTS)[2])
    assert unmatched is not None
    assert unmatched.kind == "text", "an artifact not found in the text: the text as it is"
    wrapped = read_shape(history([{"type": "text", "text": json.dumps(RESULTS)}])[2])
    assert wrapped is not None
    assert (wrapped.kind, wrapped.block) == ("json", 0)


@pytest.mark.parametrize("mode", MODES)
async def test_json_in_one_content_block_stays_json_in_that_block(mode):
    messages = history([{"type": "text", "text": json.dumps(RESULTS)}])
    out = await compress(MessageCompressor(make_stage()), messages, mode)
    [block] = out.messages[2].content
    check_shown_json = json.loads(block["text"])
    assert check_shown_json["results"][0]["content"] == RELEVANT


@pytest.mark.parametrize("mode", MODES)
async def test_a_cached_output_is_judged_once(mode):
    stage = make_stage()
    cache = CompressionCache(8)
    compressor = MessageCompressor(stage, cache=cache)
    messages = history(json.dumps(RESULTS))
    first = await compress(compressor, messages, mode)
    calls = len(stage.estimator.scorer.history)  # type: ignore[attr-defined]
    second = await compress(compressor, messages, mode)
    assert len(stage.estimator.scorer.history) == calls  # type: ignore[attr-defined]
    assert second.messages[2].content == first.messages[2].content
    assert (len(cache), second.decisions) == (1, [])


# --- the bench, on the scripted stage -----------------------------------------------------------


def test_the_bench_measures_both_shapes_of_one_question():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "structured_outputs.py"
    spec = importlib.util.spec_from_file_location("structured_outputs_bench", path)
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from ib_middleware.lab.data.hotpotqa import load_hotpotqa

    question = load_hotpotqa()[0]
    stage = make_stage()
    compressor = MessageCompressor(stage)
    count = stage.token_counter.count_tokens
    rows = [bench.one(compressor, question, shape, count) for shape in bench.SHAPES]
    as_json = bench.summary(rows, "json")
    assert as_json["decisions_per_output"] == 10
    assert as_json["valid_json_share"] == 1.0
    assert bench.summary(rows, "text")["decisions_per_output"] == 1

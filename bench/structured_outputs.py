"""Search results as the template's tool returns them (JSON) against the same results as text.

For each question of the bundled HotpotQA sample, its ten paragraphs are given to the default
stage (``build_stage()``, the embedded models) through ``MessageCompressor`` twice, as a tool
output: in the langchain-ai/react-agent template's shape (a dict with a ``results`` list of
``{url, title, content, score}``, sent as JSON text as ``ToolNode`` sends it) and as one text
page of the same ten results (title line, then the paragraph). The order of the two alternates
question by question, and the scorer's cache is emptied before each. Per shape: decisions per
result (the JSON output's record has one entry per result), the share of outputs shown to the
model that are valid JSON, the forwarded share (tokens of the content shown over tokens of the
tool output, counted by the stage's counter), the share of supporting sentences still shown,
and the decision time. The last line is one JSON object with the JSON shape against the text
shape, measured in the same run.

Run: uv run python bench/structured_outputs.py [--limit 27]
Data: HotpotQA (Yang et al., 2018; CC BY-SA 4.0), dev set, distractor setting, bundled sample.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage

from ib_middleware.build import build_stage
from ib_middleware.lab.data.hotpotqa import HotpotQuestion, load_hotpotqa
from ib_middleware.langgraph import MessageCompressor

SHAPES = ("json", "text")


def results(question: HotpotQuestion) -> dict[str, Any]:
    """The template's search shape (Tavily's): a dict holding a ``results`` list."""
    count = len(question.paragraphs)
    return {
        "query": question.question,
        "results": [
            {
                "url": f"https://en.wikipedia.org/wiki/{quote(p.title.replace(' ', '_'))}",
                "title": p.title,
                "content": p.text,
                "score": round(1.0 - index / count, 3),
            }
            for index, p in enumerate(question.paragraphs)
        ],
    }


def page(question: HotpotQuestion) -> str:
    """The same ten results as one text page."""
    return "\n\n".join(f"{p.title}\n{p.text}" for p in question.paragraphs)


def messages(question: HotpotQuestion, content: str) -> list[BaseMessage]:
    call = ToolCall(name="search", args={"query": question.question}, id="call-1")
    return [
        HumanMessage(question.question, id="h1"),
        AIMessage("", tool_calls=[call], id="a1"),
        ToolMessage(content, tool_call_id="call-1", name="search", id="t1"),
    ]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def shown_text(shape: str, content: str) -> tuple[str, bool]:
    """The text the model reads, and whether a JSON output is still valid JSON."""
    if shape != "json":
        return content, True
    try:
        return "\n".join(_strings(json.loads(content))), True
    except ValueError:
        return content, False


def kept_evidence(question: HotpotQuestion, text: str) -> tuple[int, int]:
    """Supporting sentences shown whole, of those the sample has."""
    flat = " ".join(text.split())
    needed = [" ".join(s.split()) for s in question.supporting_sentences()]
    return sum(sentence in flat for sentence in needed), len(needed)


def one(
    compressor: MessageCompressor,
    question: HotpotQuestion,
    shape: str,
    count: Callable[[str], int],
) -> dict[str, Any]:
    content = (
        json.dumps(results(question), ensure_ascii=False) if shape == "json" else page(question)
    )
    started = time.perf_counter()
    out = compressor.compress(messages(question, content))
    seconds = time.perf_counter() - started
    shown = out.messages[2].content
    assert isinstance(shown, str)
    text, valid = shown_text(shape, shown)
    kept, needed = kept_evidence(question, text)
    [record] = out.decisions or [{"decision": "untouched"}]
    entries = record.get("results", [record])
    return {
        "shape": shape,
        "decision": record["decision"],
        "decisions": len(entries),
        "results_pruned": sum(entry.get("decision") == "pruned" for entry in entries),
        "results_compressed": sum(entry.get("decision") == "accepted" for entry in entries),
        "valid_json": valid,
        "input_tokens": count(content),
        "shown_tokens": count(shown),
        "evidence_kept": kept,
        "evidence_needed": needed,
        "seconds": seconds,
    }


def summary(rows: Sequence[dict[str, Any]], shape: str) -> dict[str, Any]:
    mine = [row for row in rows if row["shape"] == shape]
    return {
        "outputs": len(mine),
        "decisions_per_output": statistics.mean(row["decisions"] for row in mine),
        "valid_json_share": sum(row["valid_json"] for row in mine) / len(mine),
        "forwarded_share": sum(r["shown_tokens"] for r in mine)
        / sum(r["input_tokens"] for r in mine),
        "evidence_kept_share": sum(r["evidence_kept"] for r in mine)
        / max(1, sum(r["evidence_needed"] for r in mine)),
        "results_pruned": sum(row["results_pruned"] for row in mine),
        "results_compressed": sum(row["results_compressed"] for row in mine),
        "decision_s_total": sum(row["seconds"] for row in mine),
        "decision_s_median": statistics.median(row["seconds"] for row in mine),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=27, help="questions (27 in the sample)")
    args = parser.parse_args(argv)
    stage = build_stage()
    compressor = MessageCompressor(stage)
    scorer: Any = getattr(stage.estimator, "scorer", None)
    reset: Callable[[], None] = getattr(scorer, "clear_cache", lambda: None)
    count = stage.token_counter.count_tokens
    rows = []
    for number, question in enumerate(load_hotpotqa()[: args.limit]):
        order = SHAPES if number % 2 == 0 else SHAPES[::-1]
        for shape in order:
            reset()
            row = one(compressor, question, shape, count)
            rows.append(row)
            print(
                f"{number:>2} {shape:<4} {row['decision']:<11} decisions={row['decisions']:>2} "
                f"tokens {row['input_tokens']:>5} -> {row['shown_tokens']:>5} "
                f"evidence {row['evidence_kept']}/{row['evidence_needed']} {row['seconds']:.2f}s",
                file=sys.stderr,
            )
    as_json, as_text = summary(rows, "json"), summary(rows, "text")
    line = {
        "bench": "structured_outputs",
        "questions": len(rows) // 2,
        "json": as_json,
        "text": as_text,
        "decisions_per_result": as_json["decisions_per_output"] / 10,
        "valid_json_share": as_json["valid_json_share"],
        "forwarded_share_gap_points": 100
        * (as_json["forwarded_share"] - as_text["forwarded_share"]),
        "decision_time_ratio": as_json["decision_s_total"] / as_text["decision_s_total"],
        "scorer": getattr(scorer, "model_id", None),
        "machine": platform.machine(),
        "data": "HotpotQA dev sample (CC BY-SA 4.0)",
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()

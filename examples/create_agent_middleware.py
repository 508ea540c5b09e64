"""LangChain v1 ``create_agent`` with ``IBMiddleware``: one keyword added to your agent.

    agent = create_agent(model, tools=[search_filings],
                         middleware=[IBMiddleware(stage)])   # <- the only new line

``mode="tool"`` (default) compresses each tool output as it arrives and the agent's state keeps
the compression; ``mode="call"`` compresses what each model call sees and keeps the originals
in state. The example streams the agent's messages (the compressor's own calls are tagged
``nostream``, so they never appear in the stream) and prints every decision.

Models, all offline: the stage is the library default (SmolLM2-135M, then Gemma-3-270M, CXMI
scored by Gemma-3-270M, then the full page). The predictor is the embedded
SmolLM2-135M-Instruct; its tool call is **scripted** (a 135M model cannot call tools
reliably). For a real tool-calling model on an OpenAI-compatible endpoint, see
``examples/react_agent_openai.py``.

Runtime, measured on 2 CPU cores shared with other model jobs: 1 min 32 s with
``IB_EXAMPLES_QUICK=1``
(1 question); the default 2 questions take about twice that.

    python examples/create_agent_middleware.py [--questions 2] [--mode tool|call]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from langchain.agents import create_agent
from langchain_core.tools import tool

from ib_middleware.lab.data import load_financebench
from ib_middleware.lab.demo import FilingPages
from ib_middleware.langgraph import DECISIONS_KEY, IBMiddleware

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _support import ScriptedToolCaller, example_models, quick, timed

CASES = load_financebench()
FIRST_HELP = (
    "index of the first question (one per company, as in `make demo`); 0 is Activision "
    "Blizzard, whose page the tiny compressors do not summarise well enough: a fallback"
)


@tool
def search_filings(company: str) -> str:
    """Return the 10-K pages on file for a company (whole pages: long)."""
    case = next((c for c in CASES if c.company.lower() == company.lower()), None)
    return "No filings found." if case is None else case.context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=quick(2, 1))
    parser.add_argument("--mode", choices=["tool", "call"], default="tool")
    parser.add_argument("--first", type=int, default=1, help=FIRST_HELP)
    args = parser.parse_args(argv)

    stage, smollm2 = example_models()
    questions = FilingPages(CASES, stage.token_counter).questions(args.first + args.questions)
    for case in questions[args.first :]:
        print(f"\n{case.company}: {case.query}\n  gold answer: {case.answer}")
        model = ScriptedToolCaller(  # scripted tool call, then SmolLM2-135M answers
            generator=smollm2,
            tool_call={"name": "search_filings", "args": {"company": case.company}},
        )
        agent = create_agent(
            model,
            tools=[search_filings],
            system_prompt="Answer the question from the filings, in one sentence.",
            middleware=[IBMiddleware(stage, mode=args.mode)],
        )
        decisions = []
        with timed("  run"):
            for mode, chunk in agent.stream(
                {"messages": [("user", case.query)]}, stream_mode=["messages", "updates"]
            ):
                if mode == "messages":
                    message, metadata = chunk
                    if message.type == "ai" and message.content:
                        print(f"  streamed from {metadata['langgraph_node']}: {message.content}")
                else:
                    for update in chunk.values():
                        decisions += (update or {}).get(DECISIONS_KEY, [])
        for record in decisions:
            bits = record["bits_per_token"]
            print(
                f"  decision on {record.get('tool_call_id')}: {record['decision']} "
                f"(rung {record['rung']}), {record['input_tokens']} -> {record['output_tokens']} "
                f"tokens, {'-' if bits is None else f'{bits:.3f}'} bits/token"
            )
            print(f"    why: {record['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Wrap an existing tool-calling ReAct agent with ib-middleware, on an OpenAI-compatible model.

The agent is LangChain v1 ``create_agent`` with one tool that returns long 10-K pages (from the
bundled FinanceBench sample). ``IBMiddleware`` compresses each tool output with the embedded
local models (SmolLM2-135M, then Gemma-3-270M, CXMI scored by Gemma) before your model reads
it, and falls back to the full page when no compression carries enough bits per token.

The orchestrator must be a real tool-calling model: the embedded 135M model cannot call tools
reliably, so it only compresses here. Point the example at any OpenAI-compatible endpoint:

    OPENAI_BASE_URL   e.g. http://localhost:8000/v1 (vLLM, SGLang, Ollama, llama.cpp server);
                      unset means api.openai.com
    OPENAI_API_KEY    if the endpoint needs one
    IB_DEMO_MODEL     the model name (or pass --model)

    pip install langchain-openai
    python examples/react_agent_openai.py --model gpt-4.1-mini "What was 3M's FY2018 capex?"

Other ways to wrap the same agent: ``create_agent(CompressingChatModel(model, stage), tools)``
compresses inside the model call, and ``with_compression(agent, stage)`` compresses the
incoming history once, before the agent starts (both from ``ib_middleware.langgraph``).
Without a model name and an endpoint the example says what to set and exits with status 0.

Runtime: the endpoint's time for two model calls, plus the local compression of the tool
output, under a minute per page on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from langchain.agents import create_agent
from langchain_core.tools import tool

from ib_middleware.build import build_stage
from ib_middleware.lab.data import load_financebench
from ib_middleware.langgraph import DECISIONS_KEY, IBMiddleware

DEFAULT_QUESTION = "What was 3M's FY2018 capital expenditure in USD millions?"

SETUP = """\
This example needs an OpenAI-compatible chat model that can call tools (the embedded
135M model cannot call tools reliably; here it only compresses). Set:

  export OPENAI_BASE_URL=http://localhost:8000/v1   # your vLLM / SGLang / Ollama endpoint,
                                                   # or leave unset for api.openai.com
  export OPENAI_API_KEY=...                         # if the endpoint needs one
  export IB_DEMO_MODEL=<model name>                 # or pass --model

then run it again. It also needs `pip install langchain-openai`."""


@tool
def search_filings(company: str) -> str:
    """Return the 10-K pages on file for a company (full pages: long)."""
    pages = [
        page
        for case in load_financebench()
        if company.lower() in case.company.lower()
        for page in case.pages
    ]
    if not pages:
        companies = sorted({case.company for case in load_financebench()})
        return f"No filings for {company!r}. Companies on file: {', '.join(companies)}"
    return "\n\n".join(dict.fromkeys(pages[:2]))


def configured_model(cli_model: str | None) -> str | None:
    """The model name when an endpoint is configured, else None."""
    model = cli_model or os.environ.get("IB_DEMO_MODEL")
    endpoint = os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY")
    return model if model and endpoint else None


def print_decisions(decisions: list[dict[str, Any]]) -> None:
    for record in decisions:
        rate = record.get("bits_per_token")
        bits = "-" if rate is None else f"{rate:.3f}"
        print(
            f"  {record.get('tool_call_id', '-')}: {record['decision']} (rung {record['rung']}), "
            f"{record['input_tokens']} -> {record['output_tokens']} tokens, {bits} bits/token"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default=DEFAULT_QUESTION)
    parser.add_argument("--model", help="model name on the endpoint (default: $IB_DEMO_MODEL)")
    parser.add_argument("--mode", choices=["tool", "call"], default="tool")
    args = parser.parse_args(argv)

    model_name = configured_model(args.model)
    if model_name is None:
        print(SETUP, file=sys.stderr)
        return 0
    try:
        from langchain_openai import ChatOpenAI  # noqa: PLC0415  # optional: only this example
    except ImportError:
        print("This example needs langchain-openai: pip install langchain-openai", file=sys.stderr)
        return 1

    agent = create_agent(
        ChatOpenAI(model=model_name, temperature=0),
        tools=[search_filings],
        system_prompt="Answer from the filings. Call search_filings with the company name.",
        middleware=[IBMiddleware(build_stage(), mode=args.mode)],
    )
    state = agent.invoke({"messages": [("user", args.question)]})
    print(state["messages"][-1].content)
    print("compression decisions:")
    print_decisions(state.get(DECISIONS_KEY, []))
    return 0


if __name__ == "__main__":
    sys.exit(main())

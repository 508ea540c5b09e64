"""The default stage side by side with the incumbents, on the same FinanceBench pages.

Each case (``ib_middleware.lab.filing_labels.containment_cases``: an evidence page, a window of
it, or another filing's page that holds nothing the question needs; a question; and the figures the
question needs) goes through four arms:

- ``none``: no compression; the page is forwarded as it is.
- ``summarization``: LangChain v1's ``SummarizationMiddleware`` inside a real
  ``langchain.agents.create_agent``. The agent's model is a scripted tool caller
  (``ib_middleware.testing.ScriptedChatModel``, which records every call's messages): it calls
  ``search`` (the tool returns the page), then ``note`` (returns ``noted``), then answers. The
  summarizer is the embedded SmolLM2-135M-Instruct as a chat model
  (``ib_middleware.langgraph.GeneratorChatModel``, greedy; a prompt over its window raises
  ``ContextOverflowError``, so the middleware takes its own overflow path), with the
  middleware's own default prompt. The middleware keeps every AI/tool pair together, so it
  never summarizes the newest tool result: the page can only be summarized once another turn
  follows it, hence the ``note`` step. Trigger ``{"tokens": B, "messages": 5}`` (B the stage's
  token budget, LangChain's approximate count; the message clause keeps it from summarizing the
  lone question on the call right after the page), ``keep=("messages", 2)``. Forwarded: what the
  model's call after the summary holds in place of the page (the summary message; the page
  itself when the trigger did not fire). The model read the whole page once before that: that
  is ``read_before_summary_tokens``.
- ``truncation``: the page's first N tokens, N the tokens the stage forwarded for that same
  case (per case, not a mean).
- ``ib_stage``: the shipped default (``build_stage(StageConfig.load(None))``), ``stage.run``.

Per arm: forwarded tokens (summed, and as a fraction of the raw pages'), evidence containment
(the ``facts`` judge: does the forwarded text hold the figures the question needs), its 95%
bootstrap interval over cases, and the median wall time per page. Containment counts only the
cases that need evidence (``needs_evidence``); forwarded tokens count every case. Tokens are
counted with the scorer's tokenizer (Gemma-3-270M) for every arm. The table goes to stderr; the
last line of stdout is one JSON object with the figures, the ratios of the stage against each
arm (measured in this run), the machine and the command.

Run: uv run python bench/peers.py [--quick] [--cases 24]
Data: FinanceBench sample (Islam et al., 2023; CC BY-NC 4.0), bundled with the package.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from _sampling import spread_sample
from ib_integrations.llamacpp import LlamaCppEngine
from langchain.agents import create_agent
from langchain.agents.middleware import SummarizationMiddleware
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from ib_middleware.build import build_stage
from ib_middleware.config import StageConfig
from ib_middleware.engines import TokenCounter
from ib_middleware.lab.data import financebench_path
from ib_middleware.lab.filing_labels import containment_cases
from ib_middleware.lab.judges import JUDGES
from ib_middleware.langgraph import GeneratorChatModel, message_text
from ib_middleware.stage import CompressionStage
from ib_middleware.testing import ScriptedChatModel, tool_call

QUICK_CASES = 6
DEFAULT_CASES = 24
ARMS = ("none", "summarization", "truncation", "ib_stage")
ARM_LABELS = {
    "none": "no compression",
    "summarization": "SummarizationMiddleware (SmolLM2)",
    "truncation": "truncation to the stage's tokens",
    "ib_stage": "ib-middleware default stage",
}
SUMMARY_SOURCE = "summarization"


# Sampling, truncation, intervals -------------------------------------------------------------


def truncate_tokens(counter: TokenCounter, text: str, limit: int) -> str:
    """The longest head of ``text`` with at most ``limit`` tokens of ``counter``.

    Cut on token ids when the counter can tokenize and detokenize (the embedded engines);
    otherwise on the longest word prefix that fits.
    """
    if counter.count_tokens(text) <= limit:
        return text
    tokenize = getattr(counter, "tokenize", None)
    detokenize = getattr(counter, "detokenize", None)
    if callable(tokenize) and callable(detokenize):
        return str(detokenize(tokenize(text)[:limit]))
    words = text.split(" ")
    low, high = 0, len(words)  # words[:low] fits; words[:high + 1] does not
    while low < high:
        middle = (low + high + 1) // 2
        if counter.count_tokens(" ".join(words[:middle])) <= limit:
            low = middle
        else:
            high = middle - 1
    return " ".join(words[:low])


def bootstrap_mean(
    values: Sequence[float], *, seed: int = 0, resamples: int = 2000, confidence: float = 0.95
) -> tuple[float | None, float | None, float | None]:
    """Mean of ``values`` with a percentile bootstrap interval over them (None when empty)."""
    if not values:
        return None, None, None
    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if np.ptp(data) == 0.0:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return mean, float(low), float(high)


# The summarizer's calls --------------------------------------------------------------------


class CallCounter(BaseCallbackHandler):
    """Counts the chat model calls that finished (the summarizer's, retries included)."""

    def __init__(self) -> None:
        self.calls = 0

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        """Count one finished call."""
        del response, kwargs
        self.calls += 1


# The arms ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forwarded:
    """What one arm forwarded for one page."""

    text: str
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SummarizationArm:
    """A real ``create_agent`` with ``SummarizationMiddleware``; see the module docstring."""

    summarizer: BaseChatModel
    trigger_tokens: int
    keep_messages: int = 2

    def middleware(self) -> SummarizationMiddleware:
        """The middleware as configured for this benchmark."""
        return SummarizationMiddleware(
            self.summarizer,
            trigger={"tokens": self.trigger_tokens, "messages": 5},
            keep=("messages", self.keep_messages),
        )

    def __call__(self, page: str, query: str) -> Forwarded:
        """Run the agent on ``query`` with ``page`` as the search result."""

        @tool
        def search(query: str) -> str:
            """Search the filings."""
            del query
            return page

        @tool
        def note(text: str) -> str:
            """Write a note for later."""
            del text
            return "noted"

        model = ScriptedChatModel(
            script=[
                tool_call("search", query=query),
                tool_call("note", text="read the search result"),
                "Done.",
            ]
        )
        agent = create_agent(model, tools=[search, note], middleware=[self.middleware()])
        started = time.perf_counter()
        try:
            agent.invoke({"messages": [HumanMessage(query)]})
        except Exception as error:  # the summarizer failed: counted, and the page stays
            wall_s = time.perf_counter() - started
            extra = {**read_by_agent(model.history), "error": f"{type(error).__name__}: {error}"}
            return Forwarded(page, wall_s, extra)
        wall_s = time.perf_counter() - started
        return Forwarded(forwarded_by_agent(model.history), wall_s, read_by_agent(model.history))


def _is_summary(message: BaseMessage) -> bool:
    return message.additional_kwargs.get("lc_source") == SUMMARY_SOURCE


def forwarded_by_agent(history: Sequence[Sequence[BaseMessage]]) -> str:
    """What the agent's last call held in place of the page: summaries, else search results."""
    last = history[-1] if history else []
    parts = [
        message_text(m) or ""
        for m in last
        if _is_summary(m) or (isinstance(m, ToolMessage) and m.name == "search")
    ]
    return "\n\n".join(parts)


def read_by_agent(history: Sequence[Sequence[BaseMessage]]) -> dict[str, Any]:
    """Whether the summarizer ran, and the search result the model read before any summary."""
    summarized = any(_is_summary(m) for call in history for m in call)
    before = next(
        (
            message_text(m) or ""
            for call in history
            for m in call
            if isinstance(m, ToolMessage) and m.name == "search"
        ),
        "",
    )
    return {"summarized": summarized, "read_before_summary": before}


# Running and reporting -----------------------------------------------------------------------


def evaluate(
    cases: Sequence[Any],
    stage: CompressionStage,
    summarization: Callable[[str, str], Forwarded],
    *,
    judge: Callable[[str, str], bool] = JUDGES["facts"],
    progress: Callable[[str], None] = lambda line: None,
) -> list[dict[str, Any]]:
    """One row per case: every arm's forwarded tokens, containment and wall time."""
    counter = stage.token_counter
    rows = []
    for number, case in enumerate(cases, start=1):
        page, query = case.context, case.query
        started = time.perf_counter()
        [result] = stage.run([page], query)
        ours = Forwarded(result.text, time.perf_counter() - started, {"decision": result.decision})
        budget = counter.count_tokens(ours.text)
        started = time.perf_counter()
        cut = truncate_tokens(counter, page, budget)
        truncated = Forwarded(cut, time.perf_counter() - started)
        arms = {
            "none": Forwarded(page, 0.0),
            "summarization": summarization(page, query),
            "truncation": truncated,
            "ib_stage": ours,
        }
        row: dict[str, Any] = {
            "case_id": case.case_id,
            "needs_evidence": bool(getattr(case, "needs_evidence", True)),
            "raw_tokens": counter.count_tokens(page),
            "decision": result.decision,
        }
        for name, forwarded in arms.items():
            row[name] = {
                "tokens": counter.count_tokens(forwarded.text),
                "contained": judge(forwarded.text, case.answer),
                "wall_s": forwarded.wall_s,
            }
        extra = arms["summarization"].extra
        row["summarized"] = bool(extra.get("summarized", False))
        row["summarizer_error"] = extra.get("error")
        row["read_before_summary_tokens"] = counter.count_tokens(
            extra.get("read_before_summary", "")
        )
        rows.append(row)
        cells = " ".join(
            f"{name}={row[name]['tokens']}{'+' if row[name]['contained'] else '-'}" for name in ARMS
        )
        progress(f"[{number}/{len(cases)}] {case.case_id} ({result.decision}) {cells}")
    return rows


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


def summarize(rows: Sequence[dict[str, Any]], *, seed: int = 0) -> dict[str, Any]:
    """Per-arm figures and the stage's ratios against each other arm."""
    raw = sum(row["raw_tokens"] for row in rows)
    needing = [row for row in rows if row["needs_evidence"]]
    arms: dict[str, dict[str, Any]] = {}
    for name in ARMS:
        tokens = sum(row[name]["tokens"] for row in rows)
        share, low, high = bootstrap_mean(
            [float(row[name]["contained"]) for row in needing], seed=seed
        )
        arms[name] = {
            "forwarded_tokens": tokens,
            "forwarded_fraction": _rounded(tokens / raw if raw else None),
            "containment": _rounded(share),
            "containment_ci": [_rounded(low), _rounded(high)],
            "n_contained": sum(row[name]["contained"] for row in needing),
            "median_wall_s": _rounded(
                statistics.median(row[name]["wall_s"] for row in rows) if rows else None, 4
            ),
        }
    arms["summarization"]["summarizer_ran"] = sum(row["summarized"] for row in rows)
    arms["summarization"]["errors"] = sum(bool(row.get("summarizer_error")) for row in rows)
    arms["summarization"]["read_before_summary_tokens"] = sum(
        row["read_before_summary_tokens"] for row in rows
    )
    arms["ib_stage"]["decisions"] = dict(Counter(str(row["decision"]) for row in rows))
    ours = arms["ib_stage"]
    versus = {}
    for name in ARMS:
        if name == "ib_stage":
            continue
        difference, low, high = bootstrap_mean(
            [
                float(row["ib_stage"]["contained"]) - float(row[name]["contained"])
                for row in needing
            ],
            seed=seed,
        )
        theirs = arms[name]["forwarded_tokens"]
        ratio = ours["forwarded_tokens"] / theirs if theirs else None
        versus[name] = {
            "tokens_stage_over_arm": _rounded(ratio),
            "containment_difference": _rounded(difference),
            "containment_difference_ci": [_rounded(low), _rounded(high)],
        }
    return {
        "n_cases": len(rows),
        "n_needing_evidence": len(needing),
        "raw_tokens": raw,
        "arms": arms,
        "ib_stage_versus": versus,
    }


def table(summary: dict[str, Any]) -> str:
    """The per-arm figures as a readable text table."""

    def interval(cell: dict[str, Any]) -> str:
        low, high = cell["containment_ci"]
        if cell["containment"] is None:
            return "-"
        return f"{cell['containment']:.2f} [{low:.2f}, {high:.2f}]"

    lines = [
        f"{summary['n_cases']} cases ({summary['n_needing_evidence']} need evidence), "
        f"{summary['raw_tokens']} raw tokens",
        f"{'arm':36s}{'tokens':>9s}{'of raw':>8s}  {'containment [95% CI]':22s}{'median s':>9s}",
    ]
    for name in ARMS:
        cell = summary["arms"][name]
        fraction = cell["forwarded_fraction"]
        lines.append(
            f"{ARM_LABELS[name]:36s}{cell['forwarded_tokens']:>9d}"
            f"{'-' if fraction is None else f'{fraction:.3f}':>8s}  "
            f"{interval(cell):22s}{cell['median_wall_s'] or 0.0:>9.3f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=DEFAULT_CASES, help="cases, spread evenly")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_CASES} cases (minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--summary-tokens", type=int, default=256, help="summarizer's cap")
    parser.add_argument("--summarizer-ctx", type=int, default=8192, help="SmolLM2's window")
    args = parser.parse_args(argv)
    wanted = QUICK_CASES if args.quick else args.cases
    every = containment_cases(financebench_path())
    cases = [every[i] for i in spread_sample(len(every), wanted, args.seed)]
    stage = build_stage(StageConfig.load(None))
    smollm2 = LlamaCppEngine.smollm2(n_ctx=args.summarizer_ctx)
    counter = CallCounter()
    summarizer = GeneratorChatModel(
        generator=smollm2,
        max_tokens=args.summary_tokens,
        profile={"max_input_tokens": args.summarizer_ctx - args.summary_tokens},
        callbacks=[counter],
    )
    arm = SummarizationArm(summarizer, trigger_tokens=stage.token_budget)
    print(f"{len(cases)} of {len(every)} cases", file=sys.stderr)
    started = time.perf_counter()
    rows = evaluate(
        cases, stage, arm, progress=lambda line: print(line, file=sys.stderr, flush=True)
    )
    summary = summarize(rows, seed=args.seed)
    print(table(summary), file=sys.stderr)
    scorer = getattr(stage.estimator, "scorer", stage.token_counter)
    result = {
        "benchmark": "peers",
        **summary,
        "token_counter": getattr(scorer, "model_id", type(stage.token_counter).__name__),
        "summarizer": {
            "model": smollm2.model_id,
            "max_tokens": args.summary_tokens,
            "trigger": {"tokens": stage.token_budget, "messages": 5},
            "keep": ["messages", 2],
            "calls": counter.calls,
        },
        "stage": {
            "token_budget": stage.token_budget,
            "rungs": [rung.label for rung in stage.rungs],
        },
        "truncation_budget": "per case: the tokens the stage forwarded for that case",
        "seed": args.seed,
        "wall_s": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "command": "uv run python bench/peers.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

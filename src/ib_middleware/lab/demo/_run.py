"""Run the demo, with progress and tables, and the command-line entry point."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from langchain_core.documents import Document
from langchain_core.runnables import RunnableConfig
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ib_middleware.build import EngineCache, build_stage
from ib_middleware.config import StageConfig
from ib_middleware.engines import Generator
from ib_middleware.errors import IBMiddlewareError
from ib_middleware.lab.data import load_financebench
from ib_middleware.lab.data.hotpotqa import load_hotpotqa
from ib_middleware.lab.demo._graph import FilingPages, build_demo_graph, resolve_answerer
from ib_middleware.lab.demo._report import (
    DemoQuestion,
    DemoReport,
    holds_answer,
    page_rows,
    page_text,
    render_question,
)
from ib_middleware.lab.demo._research import (
    ResearchReport,
    build_research_agent,
    render_call,
    research_call,
    search_tool,
)
from ib_middleware.langgraph import DECISIONS_KEY
from ib_middleware.stage import CompressionStage
from ib_middleware.telemetry.setup import configure_span_file

__all__ = ["COMPRESSION_TOKENS", "demo_app", "demo_command", "demo_config", "run_demo"]


COMPRESSION_TOKENS = 96
"""Most tokens per abstractive compression in the demo: a three-sentence summary fits easily."""


def demo_config(path: Path | None) -> StageConfig:
    """The stage config: the file when given, else the default with abstractive rungs capped.

    Small models sometimes run on to their token limit; the cap keeps an abstractive rung
    within minutes on two cores (a summary of the usual length is not affected). Extractive
    rungs, the default ladder's, are left as they are: the shipped policy was fitted for them.

    Example:
        >>> demo_config(None) == StageConfig.load(None)
        True
    """
    config = StageConfig.load(path)
    if path is not None:
        return config
    rungs = [
        rung.model_copy(
            update={
                "compressor": rung.compressor.model_copy(
                    update={"max_tokens": min(rung.compressor.max_tokens, COMPRESSION_TOKENS)}
                )
            }
        )
        if rung.compressor.kind == "abstractive"
        else rung
        for rung in config.rungs
    ]
    return config.model_copy(update={"rungs": rungs})


def run_demo(
    questions: int = 1,
    json_output: bool = False,
    spans: Path | None = None,
    *,
    model: str | None = None,
    config: Path | None = None,
    pages: int = 3,
    seed: int = 0,
    searches: int = 2,
    stage: CompressionStage | None = None,
    answerer: Generator | None = None,
    console: Console | None = None,
) -> DemoReport:
    """Run the research agent on ``searches`` questions, then ``questions`` FinanceBench ones.

    The research agent (``ib_middleware.lab.demo._research``) is a ReAct loop whose search
    tool returns ten results per call, compressed by ``add_compression`` on its tool node; the
    FinanceBench questions go through retrieve -> compress -> answer. Prints progress (to
    standard error), a table per call and per question and a summary (tokens saved next
    to evidence containment: see ``DemoReport.summary``); with
    ``json_output`` the output ends with one JSON object (``DemoReport.to_dict``). ``spans``
    receives one JSON line per traced run (graph, nodes, the compression stage).

    Args:
        questions: How many FinanceBench questions (one per company).
        json_output: End the output with one JSON line.
        spans: File for OpenTelemetry spans (JSON Lines), if wanted.
        model: Answer with this model on an OpenAI-compatible endpoint.
        config: Stage config file; when None, the library default with compressions capped at
            ``COMPRESSION_TOKENS``.
        pages: Pages per question, evidence included.
        seed: Seed of the distractor choice and page order.
        searches: How many questions the research agent answers (the bundled HotpotQA sample).
        stage: A ready stage (tests); built from ``config`` when None.
        answerer: A ready answering model (tests); resolved from ``model`` when None.
        console: Where the tables go; standard output by default.

    Raises:
        IBMiddlewareError: When no endpoint is configured for ``model``, or an engine fails.

    Example:
        ::

            report = run_demo(questions=1)
            print(report.summary_line())
    """
    console = console or Console()
    progress_console = Console(stderr=True) if console.file is sys.stdout else console
    started = time.perf_counter()
    engines = EngineCache()
    if answerer is None:
        answerer = resolve_answerer(model, engines)
    if stage is None:
        stage = build_stage(demo_config(config), engines=engines)
    filings = FilingPages(load_financebench(), stage.token_counter, pages=pages, seed=seed)
    graph = build_demo_graph(stage, answerer, filings)
    # Spans go to an OpenTelemetry JSONL file: the stage's own, nested under LangChain's runs
    # when OpenInference instruments LangChain.
    sink = configure_span_file(spans) if spans is not None else None
    if sink is not None:
        sink.telemetry().instrument(stage)
    try:
        research = _run_research(stage, answerer, searches, console, progress_console)
        run_config: RunnableConfig = {}
        answered = []
        with _spinner(progress_console) as progress:
            for number, case in enumerate(filings.questions(questions), start=1):
                task = progress.add_task(f"Q{number} {case.company}: retrieve", total=None)
                begun = time.perf_counter()
                state: dict[str, Any] = {}
                raw: list[Document] = []  # the pages as retrieved, before compression
                inputs = {"case_id": case.case_id, "question": case.query}
                for update in graph.stream(inputs, run_config, stream_mode="updates"):
                    for node, values in update.items():
                        state.update(values or {})
                        if node == "retrieve":
                            raw = list((values or {}).get("documents", []))
                        following = {"retrieve": "compress", "compress": "answer"}.get(node)
                        if following:
                            progress.update(
                                task, description=f"Q{number} {case.company}: {following}"
                            )
                progress.remove_task(task)
                forwarded = state.get("documents", [])
                decisions = state.get(DECISIONS_KEY, [])
                question = DemoQuestion(
                    case_id=case.case_id,
                    company=case.company,
                    question=case.query,
                    gold=case.answer,
                    answer=" ".join(str(state.get("answer", "")).split()),
                    pages=tuple(page_rows(forwarded, decisions, raw=raw, gold=case.answer)),
                    wall_s=time.perf_counter() - begun,
                    evidence_contained=holds_answer(
                        page_text(raw), page_text(forwarded), case.answer
                    ),
                )
                answered.append(question)
                render_question(console, number, question)
    finally:
        if sink is not None:
            sink.shutdown()
    report = DemoReport(
        tuple(answered), answerer.model_id, time.perf_counter() - started, research=research
    )
    if research.calls:
        console.print(f"[bold]research agent[/] {escape(research.summary_line())}")
    console.print(f"[bold]summary[/] {escape(report.summary_line())}")
    if json_output:
        console.out(json.dumps(report.to_dict(), ensure_ascii=False), highlight=False)
    return report


def _spinner(console: Console) -> Progress:
    """A transient spinner with the step's name and the time it has taken."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    return Progress(*columns, console=console, transient=True)


def _run_research(
    stage: CompressionStage,
    answerer: Generator,
    searches: int,
    console: Console,
    progress_console: Console,
) -> ResearchReport:
    """The research agent on the first ``searches`` questions of the HotpotQA sample."""
    if searches <= 0:
        return ResearchReport(())
    questions = load_hotpotqa()[:searches]
    agent = build_research_agent(stage, answerer, search_tool(questions))
    calls = []
    with _spinner(progress_console) as progress:
        for number, question in enumerate(questions, start=1):
            task = progress.add_task(f"S{number}: search, compress, answer", total=None)
            call = research_call(agent, question, stage.token_counter.count_tokens)
            progress.remove_task(task)
            calls.append(call)
            render_call(console, number, call)
    return ResearchReport(tuple(calls))


def demo_command(  # noqa: PLR0917  # typer reads options from the signature
    questions: Annotated[
        int, typer.Option("--questions", "-n", min=0, help="FinanceBench questions.")
    ] = 1,
    searches: Annotated[
        int, typer.Option("--searches", "-s", min=0, help="Research-agent questions (search).")
    ] = 2,
    json_output: Annotated[
        bool, typer.Option("--json", help="End the output with one JSON object.")
    ] = False,
    spans: Annotated[
        Path | None, typer.Option("--spans", help="Write OpenTelemetry spans (JSONL) here.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Answer with this OpenAI-compatible model (IB_DEMO_MODEL)."
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Stage config (.yaml, .yml or .toml).")
    ] = None,
) -> None:
    """A research agent's search calls, then FinanceBench questions, compressed offline."""
    try:
        run_demo(questions, json_output, spans, model=model, config=config, searches=searches)
    except (IBMiddlewareError, OSError, ValueError) as error:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(code=1) from None


demo_app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)
demo_app.command(name="demo")(demo_command)

"""The ``ib-middleware`` command line: compress a context, estimate a compressor, calibrate.

Every command takes ``--config PATH`` (a YAML or TOML ``StageConfig``; environment variables
``IB_MIDDLEWARE_*`` apply on top) and ``--json``, which prints exactly one JSON object as the
last line of standard output. Errors print one line to standard error and exit with status 1.
"""

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel
from rich.progress import MofNCompleteColumn, Progress
from rich.table import Table
from rich.text import Text

from ib_middleware.build import EngineCache, build_stage
from ib_middleware.compressors import AbstractiveCompressor, Compressor, ExtractiveCompressor
from ib_middleware.config import EngineConfig, RungConfig, StageConfig
from ib_middleware.engines import Generator, Scorer, TokenCounter
from ib_middleware.errors import IBMiddlewareError
from ib_middleware.lab._cli_support import clean_errors, data_path, emit, fmt, read_context
from ib_middleware.lab._cli_support import err as err_console
from ib_middleware.lab._cli_support import out as console
from ib_middleware.lab.calibration import (
    load_cases,
)
from ib_middleware.lab.calibration.command import register_calibrate_command
from ib_middleware.lab.demo import demo_command
from ib_middleware.lab.estimation import estimate_compressor_mi
from ib_middleware.lab.report import register_report_command
from ib_middleware.lab.sweep.command import register_sweep_command
from ib_middleware.telemetry.setup import span_file_or_none

__all__ = ["app"]

app = typer.Typer(
    name="ib-middleware",
    help="Compress agent context, estimate its bits per token, and calibrate the routing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Stage config (.yaml, .yml or .toml).")
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON object as the last line of stdout.")
]
DataOption = Annotated[
    str,
    typer.Option(
        "--data",
        "-d",
        help=(
            "Labelled JSON Lines file, or `financebench` for the bundled sample; calibrate also "
            "takes `evidence`: the sample's pages, alone and with two distractor pages, labelled "
            "by whether a compression keeps the evidence's figures."
        ),
    ),
]


@app.command()
def compress(
    *,
    query: Annotated[str, typer.Option("--query", "-q", help="The query the context serves.")],
    file: Annotated[
        Path | None, typer.Argument(help="Context file; stdin when omitted or `-`.")
    ] = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
    spans: Annotated[
        Path | None, typer.Option("--spans", help="Also write OpenTelemetry spans (JSONL) here.")
    ] = None,
) -> None:
    """Run the stage on one context and show what the orchestrator would see, and why."""
    with clean_errors(json_output), span_file_or_none(spans) as sink:
        context = read_context(file)
        stage = build_stage(StageConfig.load(config))
        if sink is not None:
            sink.telemetry().instrument(stage)
        [result] = stage.run([context], query)
    payload = result.to_dict(include_text=False)
    payload["text"] = result.text
    if json_output:
        emit(payload)
        return
    summary = Table.grid(padding=(0, 2))
    summary.add_row("decision", f"[bold]{result.decision}[/]")
    summary.add_row("rung", "-" if result.rung is None else str(result.rung))
    summary.add_row("tokens", f"{result.input_tokens} -> {result.output_tokens}")
    summary.add_row("ratio", f"{result.compression_ratio:.2f}x")
    summary.add_row("bits/token", fmt(result.bits_per_token))
    summary.add_row("reason", Text(result.reason))
    summary.add_row("time", f"{result.wall_s:.1f} s")
    console.print(summary)
    if result.attempts:
        attempts = Table("rung", "name", "threshold", "bits/token", "accepted", "reason")
        for attempt in result.attempts:
            estimate = attempt.estimate
            attempts.add_row(
                str(attempt.rung),
                Text(attempt.name),
                fmt(attempt.threshold_bits_per_token),
                fmt(estimate.bits_per_token if estimate else None),
                "yes" if attempt.accepted else "no",
                Text(attempt.reason),
            )
        console.print(attempts)
    console.print(Panel(Text(result.text), title="forwarded text", expand=False))


def _pick_rung(config: StageConfig, name: str | None) -> RungConfig:
    if not config.rungs:
        msg = "the config has no rungs: there is no compressor to estimate"
        raise ValueError(msg)
    found = next((r for r in config.rungs if name in (None, r.name)), None)
    if found is not None:
        return found
    known = ", ".join(rung.name for rung in config.rungs)
    msg = f"no rung named {name!r} in the config (rungs: {known})"
    raise ValueError(msg)


def _scorer_config(config: StageConfig, model: str | None) -> EngineConfig:
    base = config.estimator.scorer
    if model is None:
        return base
    key = "model_path" if base.engine == "llamacpp" or "model_path" in base.options else "model"
    return EngineConfig(engine=base.engine, options={**base.options, key: model})


def _samplers(
    rung: RungConfig, engines: EngineCache, counter: TokenCounter | None, m: int, temperature: float
) -> list[Compressor]:
    settings = rung.compressor
    if settings.kind == "extractive":
        return [ExtractiveCompressor(budget_tokens=settings.budget_tokens, token_counter=counter)]
    generator = engines.get(settings.engine)
    if not isinstance(generator, Generator):
        msg = f"engine {settings.engine.engine!r} cannot generate, so it cannot compress"
        raise IBMiddlewareError(msg)
    return [
        AbstractiveCompressor(
            generator,
            style=settings.style,
            sentences=settings.sentences,
            max_tokens=settings.max_tokens,
            temperature=temperature,
            seed=settings.seed + j,
            name=rung.name,
        )
        for j in range(m)
    ]


def _progress() -> Progress:
    return Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=err_console)


@app.command()
def estimate(
    *,
    data: DataOption,
    n: Annotated[int, typer.Option("--n", "-n", min=2, help="Contexts N (first N cases).")] = 8,
    m: Annotated[int, typer.Option("--m", "-m", min=1, help="Compressions M per context.")] = 2,
    compressor: Annotated[
        str | None, typer.Option(help="Rung whose compressor to estimate; the first by default.")
    ] = None,
    scorer: Annotated[
        str | None,
        typer.Option(help="Scoring model for the configured scorer engine (a GGUF path or alias)."),
    ] = None,
    temperature: Annotated[
        float, typer.Option(min=0.0, help="Sampling temperature of the M compressions.")
    ] = 0.7,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Offline Monte Carlo I(X; Z | Q) of a compressor on a dataset (He et al., 2025)."""
    started = time.perf_counter()
    with clean_errors(json_output):
        stage_config = StageConfig.load(config)
        cases = load_cases(data_path(data))[:n]
        if len(cases) < 2:
            msg = f"mutual information needs at least 2 contexts; the data holds {len(cases)}"
            raise ValueError(msg)
        rung = _pick_rung(stage_config, compressor)
        engines = EngineCache()
        scoring = engines.get(_scorer_config(stage_config, scorer))
        if not isinstance(scoring, Scorer):
            msg = f"engine {stage_config.estimator.scorer.engine!r} cannot score"
            raise IBMiddlewareError(msg)
        counter = scoring if isinstance(scoring, TokenCounter) else None
        samplers = _samplers(rung, engines, counter, m, temperature)
        compressions: list[list[str]] = []
        with _progress() as bar:
            task = bar.add_task(f"compressing with {rung.name}", total=len(cases))
            for case in cases:
                texts = [sampler.compress(case.context, case.query).text for sampler in samplers]
                compressions.append((texts * m)[:m])  # a deterministic rung repeats its text
                bar.advance(task)
        result = estimate_compressor_mi(
            [case.context for case in cases],
            [case.query for case in cases],
            compressions,
            scoring,
            progress=not json_output,
        )
    mi = result.estimate
    payload = {
        "compressor": rung.name,
        "scorer": result.scorer_model,
        "n_contexts": mi.n_contexts,
        "n_samples": mi.n_samples,
        "temperature": temperature if rung.compressor.kind == "abstractive" else None,
        "mi_nats": mi.nats,
        "mi_bits": mi.bits,
        "ci_nats": list(mi.ci_nats),
        "ci_bits": list(mi.ci_bits),
        "confidence": mi.confidence,
        "upper_bound_bits": mi.upper_bound_bits,
        "saturated": mi.saturated,
        "clipped": mi.clipped,
        "mean_tokens": float(result.lengths.mean()),
        "bits_per_token": result.bits_per_token,
        "wall_s": time.perf_counter() - started,
    }
    if json_output:
        emit(payload)
        return
    table = Table.grid(padding=(0, 2))
    table.add_row("compressor", f"{rung.name} (N={mi.n_contexts}, M={mi.n_samples})")
    table.add_row("scorer", result.scorer_model)
    table.add_row("I(X; Z | Q)", f"{mi.nats:.3f} nats = {mi.bits:.3f} bits")
    low, high = mi.ci_bits
    table.add_row(f"{mi.confidence:.0%} CI", f"[{low:.3f}, {high:.3f}] bits")
    table.add_row("bound log2 N", f"{mi.upper_bound_bits:.3f} bits")
    table.add_row("bits/token", f"{result.bits_per_token:.4f} (mean {payload['mean_tokens']:.1f})")
    console.print(table)
    if mi.saturated:
        err_console.print(
            "[yellow]saturated:[/] the estimate sits at log N; raise --n to resolve it"
        )


register_calibrate_command(app)
register_report_command(app)
register_sweep_command(app)
app.command("demo")(demo_command)

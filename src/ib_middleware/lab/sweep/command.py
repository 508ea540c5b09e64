"""The ``ib-middleware sweep`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ib_middleware.lab._cli_support import clean_errors, emit
from ib_middleware.lab._cli_support import out as console

__all__ = ["register_sweep_command", "sweep_command"]


def sweep_command(
    config: Annotated[
        Path, typer.Argument(help="Sweep config (YAML), e.g. examples/sweeps/quick.yaml.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for results and report.")] = Path(
        "sweep-out"
    ),
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object as the last line of stdout.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Run a sweep: compressors x predictors x seeds, MI, judges, analyses, report.html."""
    from ib_middleware.lab.sweep import run_sweep  # noqa: PLC0415  # keeps `--help` fast

    with clean_errors(json_output):
        results = run_sweep(config, out, progress=not (quiet or json_output))
    summary = {
        "out": str(out),
        "report": str(out / "report.html"),
        "runtime_s": results["runtime_s"],
        "cells": len(results["cells"]),
        "headline": results["headline"],
        "cache": results["cache"],
    }
    if json_output:
        emit(summary)
        return
    for label, value in results["summary"].items():
        console.print(f"{label}: {value}", highlight=False)
    console.print(f"report written to {out / 'report.html'}", highlight=False)


def register_sweep_command(app: typer.Typer) -> None:
    """Add the ``sweep`` command to a typer app.

    Example:
        >>> app = typer.Typer()
        >>> register_sweep_command(app)
        >>> [command.name for command in app.registered_commands]
        ['sweep']
    """
    app.command(name="sweep")(sweep_command)

"""``ib-middleware report``: a self-contained HTML dashboard from a JSON Lines span file.

The page embeds every figure as a PNG data URI and its CSS inline; it has no scripts and loads
nothing at view time, so it can be mailed, archived or opened offline. Figures: bits per token
by rung and decision, decisions over time, compression ratio against bits per token, fallback
rate, tokens (and cost) saved, slowest calls. Drawing needs matplotlib, imported on use.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from ib_estimators import DEFAULT_PRICES, Price

from ib_middleware.errors import IBMiddlewareError
from ib_middleware.lab.report.data import ReportData, load_spans, summarise
from ib_middleware.lab.report.page import render_page

__all__ = ["ReportData", "load_prices", "register_report_command", "render_report"]

_MISSING_MATPLOTLIB = "the report draws with matplotlib: pip install matplotlib"


def load_prices(path: str | Path) -> dict[str, Price]:
    """A price table from JSON: ``{"model": {"input_per_million": 2.5, "output_per_million": 10}}``.

    The default table (``ib_estimators.DEFAULT_PRICES``) is extended, entries in the file win.

    Raises:
        ValueError: When an entry lacks a price or a price is negative.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "prices.json"
        >>> _ = path.write_text('{"my-model": {"input_per_million": 1, "output_per_million": 2}}')
        >>> load_prices(path)["my-model"]
        Price(input_per_million=1.0, output_per_million=2.0)
    """
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        msg = f"{path} must hold a JSON object of model -> prices"
        raise ValueError(msg)  # noqa: TRY004  # bad file content, not a bad argument type
    table = dict(DEFAULT_PRICES)
    for model, entry in raw.items():
        try:
            price = Price(float(entry["input_per_million"]), float(entry["output_per_million"]))
        except (KeyError, TypeError, ValueError) as error:
            msg = f"{path}: {model!r} needs numeric input_per_million and output_per_million"
            raise ValueError(msg) from error
        if min(price.input_per_million, price.output_per_million) < 0 or not all(
            map(math.isfinite, (price.input_per_million, price.output_per_million))
        ):
            msg = f"{path}: prices of {model!r} must be finite and non-negative"
            raise ValueError(msg)
        table[str(model)] = price
    return table


def render_report(
    spans_path: str | Path,
    out_path: str | Path,
    *,
    price_model: str = "gpt-4o-mini",
    prices: Mapping[str, Price] | None = None,
) -> ReportData:
    """Write the HTML dashboard for a span file; returns the data it shows.

    Args:
        spans_path: A JSON Lines span file (``configure_span_file``, or the CLI's ``--spans``).
        out_path: The HTML file to write (its folder is created).
        price_model: The orchestrator model whose input price values the tokens saved.
        prices: Price table; ``ib_estimators.DEFAULT_PRICES`` when None.

    Raises:
        FileNotFoundError: When the span file does not exist.
        ValueError: When a line of it is not JSON.
        IBMiddlewareError: When matplotlib is not installed.

    Example:
        ::

            data = render_report("spans.jsonl", "report.html", price_model="gpt-4o")
            print(data.counts, data.tokens_saved)
    """
    try:
        from ib_middleware.lab.report.plots import render_figures  # noqa: PLC0415  # optional
    except ImportError as error:
        raise IBMiddlewareError(_MISSING_MATPLOTLIB) from error
    data = summarise(load_spans(spans_path), price_model=price_model, prices=prices)
    page = render_page(data, render_figures(data), source=Path(spans_path).name)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return data


def report_command(
    spans: Annotated[
        Path,
        typer.Argument(help="JSON Lines span file, as written by --spans.", show_default=False),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path(
        "report.html"
    ),
    price_model: Annotated[
        str, typer.Option("--price-model", help="Orchestrator model that prices tokens saved.")
    ] = "gpt-4o-mini",
    prices: Annotated[
        Path | None,
        typer.Option(
            "--prices",
            help="JSON price table: {model: {input_per_million, output_per_million}}.",
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object as the last line of stdout.")
    ] = False,
) -> None:
    """Turn a span file into a self-contained HTML dashboard."""
    try:
        table = load_prices(prices) if prices is not None else None
        data = render_report(spans, out, price_model=price_model, prices=table)
    except (IBMiddlewareError, OSError, ValueError) as error:
        message = str(error) or type(error).__name__
        if isinstance(error, FileNotFoundError) and error.filename:
            message = f"no such file: {error.filename}"
        typer.echo(f"error: {message}", err=True)
        if json_output:
            typer.echo(json.dumps({"error": message, "error_type": type(error).__name__}))
        raise typer.Exit(code=1) from None
    summary = {
        "out": str(out),
        "decisions": len(data.decisions),
        "counts": data.counts,
        "fallback_rate": data.fallback_rate,
        "tokens_saved": data.tokens_saved,
        "cost_saved": data.cost_saved,
        "price_model": data.price_model,
    }
    if json_output:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(f"report written to {out} ({len(data.decisions)} decisions)")


def register_report_command(app: typer.Typer) -> None:
    """Add the ``report`` command to a typer app.

    Example:
        >>> app = typer.Typer()
        >>> register_report_command(app)
        >>> [command.name for command in app.registered_commands]
        ['report']
    """
    app.command(name="report")(report_command)

"""Shared plumbing of the command line: JSON output, clean errors, inputs."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from ib_middleware.errors import IBMiddlewareError
from ib_middleware.lab.data import financebench_path

__all__ = ["clean_errors", "data_path", "emit", "err", "fmt", "json_ready", "out", "read_context"]

out = Console()
err = Console(stderr=True)


def json_ready(value: Any) -> Any:
    """JSON-ready copy of ``value``: non-finite floats become null, tuples lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    return value


def emit(payload: dict[str, Any]) -> None:
    """Print ``payload`` as one JSON line (non-finite floats as null)."""
    typer.echo(json.dumps(json_ready(payload), ensure_ascii=False, allow_nan=False))


@contextmanager
def clean_errors(json_mode: bool) -> Iterator[None]:
    """Turn expected failures into one line on stderr and exit status 1, with no traceback."""
    try:
        yield
    except (IBMiddlewareError, OSError, ValueError, ImportError) as error:
        message = str(error) or type(error).__name__
        if isinstance(error, FileNotFoundError) and error.filename:
            message = f"no such file: {error.filename}"
        err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        if json_mode:
            emit({"error": message, "error_type": type(error).__name__})
        raise typer.Exit(code=1) from None


def data_path(value: str) -> Path:
    """The data file named by ``--data`` (``financebench``: the bundled sample)."""
    if value == "financebench" and not Path(value).exists():
        return financebench_path()
    path = Path(value)
    if not path.is_file():
        msg = f"no such data file: {value} (or pass `financebench` for the bundled sample)"
        raise FileNotFoundError(msg)
    return path


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for tables, ``-`` when missing or not finite."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def read_context(file: Path | None) -> str:
    """The context from ``file``, or from stdin when it is None or ``-``."""
    if file is None or str(file) == "-":
        if sys.stdin.isatty():
            msg = "give a context FILE, or pipe the context on stdin"
            raise ValueError(msg)
        data = sys.stdin.buffer.read()
    else:
        data = file.read_bytes()
    # Non-UTF-8 bytes are replaced, not fatal: the stage then sees (and may reject) them.
    return data.decode("utf-8", errors="replace")

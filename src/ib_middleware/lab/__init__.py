"""The lab: what measures the middleware rather than serves a request.

Offline estimation (``estimation``), judges (``judges``, ``model_judges``), calibration of the
ladder's thresholds (``calibration``), sweeps (``sweep``), the telemetry report (``report``),
the demo (``demo``), datasets and their row type (``data``), and the ``ib-middleware``
command line (``cli``). The runtime never imports from here.

Most of the lab needs the ``lab`` extra (matplotlib, rich, typer):
``pip install "ib-middleware[lab]"``.
"""

from __future__ import annotations

import sys

__all__ = ["main"]

_LAB_EXTRA = frozenset({"click", "matplotlib", "rich", "typer"})


def main() -> None:
    """Run the ``ib-middleware`` command line (the console script's entry point).

    Without the ``lab`` extra installed it says which extra to install and exits with status
    1, rather than ending in a traceback.
    """
    try:
        from ib_middleware.lab.cli import app  # noqa: PLC0415  # the lab extra may be missing
    except ModuleNotFoundError as error:
        missing = (error.name or "").partition(".")[0]
        if missing not in _LAB_EXTRA:
            raise
        sys.stderr.write(
            f"ib-middleware: the command line needs the lab extra ({missing} is not installed):"
            '\n    pip install "ib-middleware[lab]"\n'
        )
        raise SystemExit(1) from None
    app()

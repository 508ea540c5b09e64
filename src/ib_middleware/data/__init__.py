"""Data shipped with the package: the FinanceBench development sample (CC BY-NC 4.0).

See README.md in this folder for its attribution and terms.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["financebench_path"]


def financebench_path() -> Path:
    """Path of the bundled FinanceBench sample (75 cases, JSON Lines).

    Example:
        >>> financebench_path().name
        'financebench_dev.jsonl'
    """
    return Path(str(files(__package__).joinpath("financebench_dev.jsonl")))

"""Data shipped with the package, the dataset row type, and loaders for benchmark files.

The FinanceBench development sample (CC BY-NC 4.0) ships here; see README.md in this folder for
its attribution and terms. Every loader returns ``LabelledCase`` rows (``cases``);
``load_dataset`` reads the bundled sample and the other supported formats
(``ib_middleware.lab.data.loaders`` documents each).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from ib_middleware.lab.data.cases import LabelledCase, load_cases
from ib_middleware.lab.data.loaders import (
    DatasetKind,
    financebench_cases,
    load_dataset,
    load_longhealth,
    load_qasper,
)
from ib_middleware.lab.data.support_cases import SupportCase, load_support_cases

__all__ = [
    "DatasetKind",
    "FinanceBenchCase",
    "LabelledCase",
    "SupportCase",
    "financebench_cases",
    "financebench_path",
    "load_cases",
    "load_dataset",
    "load_financebench",
    "load_longhealth",
    "load_qasper",
    "load_support_cases",
]


def financebench_path() -> Path:
    """Path of the bundled FinanceBench sample (75 cases, JSON Lines).

    Example:
        >>> financebench_path().name
        'financebench_dev.jsonl'
    """
    return Path(str(files(__package__).joinpath("financebench_dev.jsonl")))


@dataclass(frozen=True)
class FinanceBenchCase:
    """One FinanceBench question with its evidence pages.

    Attributes:
        case_id: The upstream ``financebench_id``.
        company: Company name.
        query: The question.
        answer: The gold answer.
        pages: Full text of each evidence page (the raw context X).
    """

    case_id: str
    company: str
    query: str
    answer: str
    pages: tuple[str, ...]

    @property
    def context(self) -> str:
        """The evidence pages joined with blank lines."""
        return "\n\n".join(self.pages)


def load_financebench(path: Path | None = None) -> list[FinanceBenchCase]:
    """Load FinanceBench cases (the bundled sample by default).

    Example:
        >>> cases = load_financebench()
        >>> len(cases), cases[0].company
        (75, '3M')
    """
    source = path or financebench_path()
    cases = []
    with source.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            pages = tuple(
                dict.fromkeys(item["evidence_text_full_page"] for item in row["evidence"])
            )
            cases.append(
                FinanceBenchCase(
                    case_id=row["financebench_id"],
                    company=row["company"],
                    query=row["question"],
                    answer=row["answer"],
                    pages=pages,
                )
            )
    return cases

"""The measured table on disk: JSON Lines, one ``CaseRecord`` a line (``save_records``).

Reading it back lets other targets, folds or baselines be explored without running a model.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from ib_middleware.lab.calibration.simulation import CaseRecord, RungOutcome

__all__ = ["load_meta", "load_records"]


def load_records(path: str | Path) -> list[CaseRecord]:
    r"""Read a measured table written by ``save_records`` (``calibrate --records``; ``.gz`` too).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "table.jsonl"
        >>> _ = path.write_text('{"case_id": "a", "input_tokens": 90, "fallback_correct": true, '
        ...                     '"rungs": [{"bits_per_token": 0.5, "correct": true}]}\n')
        >>> load_records(path)[0].rungs[0].bits_per_token
        0.5
    """
    records = []
    lines = _lines(path)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if "meta" in row:
                continue
            rungs = tuple(RungOutcome(**outcome) for outcome in row.pop("rungs"))
            records.append(CaseRecord(**row, rungs=rungs))
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            msg = f"{path}:{number}: not a measured case ({error})"
            raise ValueError(msg) from error
    return records


def _lines(path: str | Path) -> list[str]:
    raw = Path(path).read_bytes()
    return (gzip.decompress(raw) if str(path).endswith(".gz") else raw).decode("utf-8").splitlines()


def load_meta(path: str | Path) -> dict[str, Any]:
    r"""What a measured table was measured with (its ``{"meta": ...}`` line; {} without one).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "table.jsonl"
        >>> _ = path.write_text('{"meta": {"judge": "facts"}}\n')
        >>> load_meta(path)
        {'judge': 'facts'}
    """
    for line in _lines(path):
        if line.strip():
            row = json.loads(line)
            meta = row.get("meta") if isinstance(row, dict) else None
            return dict(meta) if isinstance(meta, dict) else {}
    return {}

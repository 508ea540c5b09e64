"""The measured table on disk: JSON Lines, one ``CaseRecord`` a line (``save_records``).

Reading it back lets other targets, folds or baselines be explored without running a model.
"""

from __future__ import annotations

import json
from pathlib import Path

from ib_middleware.lab.calibration.simulation import CaseRecord, RungOutcome

__all__ = ["load_records"]


def load_records(path: str | Path) -> list[CaseRecord]:
    r"""Read a measured table written by ``save_records`` (``calibrate --records``).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "table.jsonl"
        >>> _ = path.write_text('{"case_id": "a", "input_tokens": 90, "fallback_correct": true, '
        ...                     '"rungs": [{"bits_per_token": 0.5, "correct": true}]}\n')
        >>> load_records(path)[0].rungs[0].bits_per_token
        0.5
    """
    records = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rungs = tuple(RungOutcome(**outcome) for outcome in row.pop("rungs"))
            records.append(CaseRecord(**row, rungs=rungs))
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            msg = f"{path}:{number}: not a measured case ({error})"
            raise ValueError(msg) from error
    return records

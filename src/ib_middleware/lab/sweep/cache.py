"""A results cache on disk: one JSON file per unit of work, keyed by its whole configuration.

A sweep that is interrupted, or rerun with one more compressor, redoes only what is missing:
every compression, score tensor and prediction is stored under the SHA-256 of the settings
that produced it, so a changed setting is a new key and never a stale hit.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["ResultCache"]


class ResultCache:
    """JSON files under ``root/<kind>/<sha256>.json``.

    Example:
        >>> import tempfile
        >>> cache = ResultCache(tempfile.mkdtemp())
        >>> cache.get("demo", {"a": 1}) is None
        True
        >>> cache.put("demo", {"a": 1}, {"answer": 42})
        >>> cache.get("demo", {"a": 1})
        {'answer': 42}
    """

    def __init__(self, root: str | Path) -> None:
        """Use (and create when needed) the folder ``root``."""
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def _path(self, kind: str, key: Any) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()
        return self.root / kind / f"{digest}.json"

    def get(self, kind: str, key: Any) -> Any:
        """The stored value for ``key``, or None."""
        path = self._path(kind, key)
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            self.misses += 1
            return None
        self.hits += 1
        return stored["value"]

    def put(self, kind: str, key: Any, value: Any) -> None:
        """Store ``value``; the write is atomic, so a killed sweep leaves no half file."""
        path = self._path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"key": key, "value": value}, sort_keys=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(payload)
        Path(temporary).replace(path)

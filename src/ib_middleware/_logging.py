"""The library's logging defaults: quiet unless something is wrong.

A library should not decide where an application's logs go, so the root logger is never
touched and the ``ib_middleware`` logger gets only a ``NullHandler``. Yet an application that
configures root logging at DEBUG (``logging.basicConfig(level=logging.DEBUG)``) would get a
line per compression it never asked for: bm25s, which the segment selection calls, sets its
own logger to DEBUG when imported and logs each index it builds.
``quiet_dependencies`` sets such loggers to WARNING, unless the application chose a level: one
set before ``import ib_middleware`` is restored after bm25s overwrote it, and one set after wins
(``logging.getLogger("bm25s").setLevel(logging.DEBUG)`` brings its lines back).

The engines are quieted where they are made: the embedded llama.cpp engine drops llama.cpp's
native log lines unless built with ``verbose=True``.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["CHATTY_LOGGERS", "LIBRARY_LOGGER", "quiet_dependencies"]

LIBRARY_LOGGER = "ib_middleware"
"""The parent of every logger of the library."""

CHATTY_LOGGERS = ("bm25s",)
"""Loggers of dependencies that log at DEBUG on every call the library makes."""


def _chosen_level(name: str) -> int:
    """The level an application set on logger ``name`` (NOTSET when it set none)."""
    existing = logging.Logger.manager.loggerDict.get(name)
    return existing.level if isinstance(existing, logging.Logger) else logging.NOTSET


def quiet_dependencies(names: tuple[str, ...] = CHATTY_LOGGERS) -> None:
    """Set ``names`` to WARNING where the level is unset or the DEBUG a library set itself.

    Example:
        >>> chatty = logging.getLogger("example-chatty")
        >>> chatty.setLevel(logging.DEBUG)
        >>> quiet_dependencies(("example-chatty",))
        >>> logging.getLevelName(chatty.level)
        'WARNING'
        >>> chatty.setLevel(logging.INFO)  # an application's choice is kept
        >>> quiet_dependencies(("example-chatty",))
        >>> logging.getLevelName(chatty.level)
        'INFO'
    """
    for name in names:
        logger = logging.getLogger(name)
        if logger.level in (logging.NOTSET, logging.DEBUG):
            logger.setLevel(logging.WARNING)


def _quiet_bm25s() -> None:
    """Import bm25s, keeping a level the application set before bm25s overwrote it."""
    chosen = logging.NOTSET if "bm25s" in sys.modules else _chosen_level("bm25s")
    import bm25s  # noqa: F401, PLC0415  # its import sets its logger to DEBUG

    if chosen != logging.NOTSET:
        logging.getLogger("bm25s").setLevel(chosen)
    else:
        quiet_dependencies()


logging.getLogger(LIBRARY_LOGGER).addHandler(logging.NullHandler())
_quiet_bm25s()

"""Find engines by name.

Engines register under the entry-point group ``ib_middleware.engines``, the way plugins register
in simonw/llm: the built-in ``llamacpp``, ``sglang`` and ``openai`` engines of ``ib-integrations``
are found exactly as a third-party package's engine would be. The core never imports them.

A third-party package registers an engine in its ``pyproject.toml``::

    [project.entry-points."ib_middleware.engines"]
    myengine = "my_package.engine:MyEngine"
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from ib_middleware.errors import EngineNotFoundError

__all__ = [
    "ENTRY_POINT_GROUP",
    "available_engines",
    "create_engine",
    "get_engine",
    "register_engine",
]

ENTRY_POINT_GROUP = "ib_middleware.engines"

_registered: dict[str, Callable[..., Any]] = {}


def register_engine(name: str, factory: Callable[..., Any]) -> None:
    """Register an engine factory in-process (for tests and notebooks).

    Entry points are the normal route; a name registered here takes precedence over one.

    Example:
        >>> register_engine("echo", dict)
        >>> get_engine("echo") is dict
        True
    """
    _registered[name] = factory


def available_engines() -> list[str]:
    """Names of every engine that can be created, sorted.

    Example:
        >>> isinstance(available_engines(), list)
        True
    """
    names = {entry.name for entry in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names | set(_registered))


def get_engine(name: str) -> Callable[..., Any]:
    """Return the factory (usually a class) registered under ``name``.

    Raises:
        EngineNotFoundError: When no engine has that name; the message lists the known ones.

    Example:
        >>> register_engine("echo", dict)
        >>> get_engine("echo")(a=1)
        {'a': 1}
    """
    if name in _registered:
        return _registered[name]
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == name:
            factory: Callable[..., Any] = entry.load()
            return factory
    known = ", ".join(available_engines()) or "none"
    msg = (
        f"no engine named {name!r} (known: {known}). Install the package that provides it, "
        "for example `pip install 'ib-middleware[embedded]'` (llama.cpp), `[sglang]` or `[openai]`"
    )
    raise EngineNotFoundError(msg)


def create_engine(name: str, **options: Any) -> Any:
    """Create the engine registered under ``name`` with keyword options.

    Example:
        >>> register_engine("echo", dict)
        >>> create_engine("echo", model="m")
        {'model': 'm'}
    """
    return get_engine(name)(**options)

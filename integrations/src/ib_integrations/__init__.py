"""Engines for ib-middleware (the framework adapters live in ``ib_middleware.langgraph``).

Engines register under the entry-point group ``ib_middleware.engines``; the core resolves them
by name and never imports this package directly.
"""

__all__: list[str] = []

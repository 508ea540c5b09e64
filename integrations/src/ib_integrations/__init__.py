"""Engines and framework adapters for ib-middleware.

Engines register under the entry-point group ``ib_middleware.engines``; the core resolves them
by name and never imports this package directly.
"""

__all__: list[str] = []

"""Fixtures shared by every test folder: the embedded models, loaded once per session."""

from __future__ import annotations

import pytest
from ib_integrations.llamacpp import LlamaCppEngine


@pytest.fixture(scope="session")
def smollm2_engine() -> LlamaCppEngine:
    """The embedded SmolLM2-135M-Instruct, shared by the session's tests."""
    return LlamaCppEngine.smollm2(n_ctx=4096)


@pytest.fixture(scope="session")
def gemma_engine() -> LlamaCppEngine:
    """The embedded Gemma-3-270M, shared by the session's tests."""
    return LlamaCppEngine.gemma3_270m(n_ctx=4096)

"""Shared pieces of the examples: the embedded models as a LangChain predictor, quick mode.

Every example runs offline on the embedded models. The *compressor stage* is the library
default (``build_stage``, as in ``make demo``: ``ib_middleware.lab.demo.demo_config``). The
*predictor* is the embedded SmolLM2-135M-Instruct, as a LangChain chat model through
``ib_middleware.langgraph.GeneratorChatModel``: a real model, but a tiny one, so read its
answers as plumbing, not accuracy. A 135M model cannot call tools reliably (and
``GeneratorChatModel`` never does): ``ScriptedToolCaller`` makes the tool call from a script
(labelled as such in every output) and lets SmolLM2 write the answer.

Set ``IB_EXAMPLES_QUICK=1`` (the tests do) for a smaller run of every example.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from langchain_core.messages import BaseMessage

from ib_middleware.build import EngineCache, build_stage
from ib_middleware.config import EngineConfig
from ib_middleware.engines import Generator
from ib_middleware.lab.demo import ScriptedToolCaller as DemoScriptedToolCaller
from ib_middleware.lab.demo import demo_config
from ib_middleware.langgraph import message_text
from ib_middleware.stage import CompressionStage

__all__ = [
    "QUICK",
    "ScriptedToolCaller",
    "example_models",
    "quick",
    "timed",
]

QUICK = os.environ.get("IB_EXAMPLES_QUICK", "").lower() in {"1", "true", "yes", "on"}
"""Smaller runs: the examples' tests set IB_EXAMPLES_QUICK=1."""


def quick(full: int, small: int) -> int:
    """``small`` in quick mode, else ``full``."""
    return small if QUICK else full


@contextmanager
def timed(label: str) -> Iterator[None]:
    """Print how long the block took."""
    started = time.perf_counter()
    yield
    print(f"{label}: {time.perf_counter() - started:.1f} s")


def example_models() -> tuple[CompressionStage, Generator]:
    """The default stage (compressions capped at 96 tokens) and the embedded SmolLM2 predictor.

    The predictor and rung 0 share one SmolLM2 instance (engines are created once).
    """
    engines = EngineCache()
    stage = build_stage(demo_config(None), engines=engines)
    predictor = engines.get(EngineConfig(options={"model_path": "smollm2"}))
    assert isinstance(predictor, Generator)
    return stage, predictor


class ScriptedToolCaller(DemoScriptedToolCaller):
    """The demo's scripted tool caller, with shorter answers in quick mode."""

    max_tokens: int = quick(96, 32)


def predictor_input_tokens(messages: Sequence[BaseMessage], counter: Any) -> int:
    """Tokens of what the predictor reads (message texts, by the stage's counter)."""
    return sum(counter.count_tokens(message_text(m) or "") for m in messages)

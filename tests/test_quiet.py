"""Quiet by default: a compression at default settings writes nothing to stderr.

Each check runs in a fresh interpreter whose application configures root logging at DEBUG
(``logging.basicConfig(level=logging.DEBUG)``, which logs to stderr), so any log record of the
library or of a dependency it calls shows up, and so does anything llama.cpp prints from C.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

ROOT_AT_DEBUG = "import logging\nlogging.basicConfig(level=logging.DEBUG)\n"

SCRIPTED_STAGE = textwrap.dedent(
    """
    from ib_middleware import CompressionStage, Rung
    from ib_middleware.judging.relevance import RelevantInformationEstimator
    from ib_middleware.selection import SegmentCompressor
    from ib_middleware.testing import FakeScorer

    stage = CompressionStage(
        [Rung(SegmentCompressor(budget_tokens=40), threshold_bits_per_token=0.0)],
        estimator=RelevantInformationEstimator(FakeScorer(lambda prompt, z: -1.0)),
        token_budget=20,
    )
    page = "Capex was $1,577 million in 2018. " + "The logo is red. The office is in Paris. " * 40
    [result] = stage.run([page], query="What was capex in 2018?")
    print(result.decision)
    """
)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=600
    )


def test_a_segment_compression_logs_nothing_when_the_app_logs_at_debug():
    done = _run(ROOT_AT_DEBUG + SCRIPTED_STAGE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in {"accepted", "fallback", "pruned"}
    assert done.stderr == "", done.stderr


def test_the_application_keeps_control_of_bm25s_logging():
    # bm25s sets its logger to DEBUG on import; the library sets it to WARNING after, and an
    # application that wants those lines sets the level itself, after importing the library.
    wants_them = ROOT_AT_DEBUG + textwrap.dedent(
        """
        import ib_middleware
        logging.getLogger("bm25s").setLevel(logging.DEBUG)
        """
    )
    done = _run(wants_them + SCRIPTED_STAGE)
    assert done.returncode == 0, done.stderr
    assert "DEBUG:bm25s:" in done.stderr
    chosen_before = ROOT_AT_DEBUG + textwrap.dedent(
        """
        logging.getLogger("bm25s").setLevel(logging.INFO)
        import ib_middleware
        assert logging.getLogger("bm25s").level == logging.INFO
        """
    )
    done = _run(chosen_before)
    assert done.returncode == 0, done.stderr


def test_the_root_logger_is_left_alone():
    done = _run(
        textwrap.dedent(
            """
            import logging
            import ib_middleware
            root = logging.getLogger()
            assert root.handlers == [] and root.level == logging.WARNING, root
            handlers = logging.getLogger("ib_middleware").handlers
            assert [type(h).__name__ for h in handlers] == ["NullHandler"], handlers
            """
        )
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_the_default_stage_on_the_embedded_models_writes_nothing_to_stderr():
    # build_stage() loads Gemma-3-270M through llama.cpp: its load-time and per-call lines
    # (the sliding-window cache warning among them) are dropped at default settings.
    pytest.importorskip("llama_cpp", reason="needs the embedded engine: the embedded extra")
    code = ROOT_AT_DEBUG + textwrap.dedent(
        """
        from ib_middleware import build_stage
        from ib_middleware.lab.data import load_financebench

        stage = build_stage()
        case = load_financebench()[0]
        [result] = stage.run([case.context], query=case.query)
        print(result.decision, result.input_tokens, result.output_tokens)
        """
    )
    done = _run(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] in {"accepted", "fallback", "pruned"}, done.stdout
    assert done.stderr == "", done.stderr


@pytest.mark.slow
def test_verbose_engine_prints_llama_cpp_lines_so_the_capture_would_see_them():
    pytest.importorskip("llama_cpp", reason="needs the embedded engine: the embedded extra")
    code = textwrap.dedent(
        """
        from ib_integrations.llamacpp import LlamaCppEngine

        engine = LlamaCppEngine.smollm2(verbose=True, n_ctx=512)
        print(engine.count_tokens("hello"))
        """
    )
    done = _run(code)
    assert done.returncode == 0, done.stderr
    assert "llama" in done.stderr, done.stderr[-2000:]

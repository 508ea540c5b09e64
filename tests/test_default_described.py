"""The documentation shows what ``build_stage()`` builds as ``describe_stage`` prints it.

README.md and docs/langgraph.md each have a Python block that prints
``describe_stage(...)`` of the default stage, followed by a ``text`` block with its output. The
Python blocks run in tests/test_docs.py; this test checks that each text block is what the
default prints today, so a change of the default (a new ladder, a recalibrated policy) fails
here and says what to paste.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from test_docs import ROOT, code_blocks

from ib_middleware.describe import describe_stage

DOCUMENTS = [ROOT / "README.md", ROOT / "docs" / "langgraph.md"]


def described_outputs(path: Path) -> list[str]:
    """The text block after each Python block that prints ``describe_stage(``."""
    blocks = code_blocks(path)
    return [
        following.code
        for block, following in pairwise(blocks)
        if block.language == "python"
        and "print(describe_stage(" in block.code
        and following.language == "text"
    ]


def test_each_document_prints_the_default_and_shows_its_output():
    for path in DOCUMENTS:
        assert len(described_outputs(path)) == 1, f"{path.name}: no describe_stage block"


@pytest.mark.slow
def test_the_shown_description_is_what_the_default_prints():
    pytest.importorskip("llama_cpp", reason="the default stage needs the embedded extra")
    from ib_middleware import build_stage

    printed = describe_stage(build_stage()) + "\n"
    for path in DOCUMENTS:
        [shown] = described_outputs(path)
        assert shown == printed, (
            f"{path.relative_to(ROOT)} shows another default than build_stage() builds; "
            f"paste this into its text block:\n{printed}"
        )

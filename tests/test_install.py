"""One pip line: the three distributions, built fresh, installed into a new virtual environment.

``uv build`` makes the wheels of ib-estimators, ib-integrations and ib-middleware; a virtual
environment outside the workspace (no dev group) gets ``ib-middleware[embedded,langchain]`` from
those wheels, the README's line, with every other dependency from the package index at the
versions uv.lock pins. llama-cpp-python has no wheel for Linux on the index: ``make setup``
compiles it from the source distribution once, and uv keeps that wheel in its cache
(``uv cache dir``). The test offers it to the installer next to our wheels, so the new
environment does not compile it a second time (when it is not there, the install compiles it:
several minutes on two cores). In that environment the public names import, a scripted stage
compresses (the ``ib_middleware.testing`` fakes: no model is loaded), no lab-only package
(statsmodels, pandas, matplotlib, ...) is installed, and ``ib-middleware --help`` says which
extra it needs; after adding the ``lab`` extra it prints the commands and the knob analysis
runs. Two fast checks, in this workspace, need no build: the runtime imports no lab-only
package, and ``knob_analysis`` without statsmodels names the extra that installs it.

Skipped, with the reason, only where nothing can be built: no uv, or no package index to install
from. Deselect with ``-m "not install"``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# rich is lab-only too, but httpx imports it whenever it is installed (for its own CLI).
LAB_ONLY = ("statsmodels", "pandas", "patsy", "matplotlib", "typer")

ROOT = Path(__file__).resolve().parents[1]
PIP_LINE = "ib-middleware[embedded,langchain]"
# Words uv prints when it cannot reach an index (as opposed to a resolution or build error).
NETWORK_TROUBLE = ("dns error", "failed to connect", "connection refused", "network is unreachable")

CHECK = textwrap.dedent(
    """
    import importlib.util

    import ib_middleware
    from ib_middleware import CompressionStage, CXMIEstimator, AbstractiveCompressor, Rung
    from ib_middleware.langgraph import (
        ChatModelGenerator, CompressingChatModel, GeneratorChatModel, IBMiddleware,
        add_compression, compression_node, with_compression,
    )
    from ib_middleware.lab.data import LabelledCase, load_financebench
    from ib_middleware.testing import FakeCompressor, FakeScorer
    from ib_integrations.llamacpp import LlamaCppEngine, gemma3_270m_path, smollm2_path

    lab_names = {"CompressorMI", "estimate_compressor_mi", "score_tensor"}
    runtime_names = [n for n in ib_middleware.__all__ if n not in lab_names]
    missing = [n for n in runtime_names if not hasattr(ib_middleware, n)]
    assert not missing, missing
    assert smollm2_path().is_file() and gemma3_270m_path().is_file()
    assert len(load_financebench()) == 75
    for lab_only in ("typer", "rich", "matplotlib", "statsmodels", "pandas", "patsy"):
        assert importlib.util.find_spec(lab_only) is None, f"{lab_only} is not a core dependency"
    try:
        ib_middleware.estimate_compressor_mi
    except ModuleNotFoundError as error:
        assert 'ib-middleware[lab]' in str(error), error
    else:
        raise AssertionError("the offline estimator needs the lab extra")

    compressor = FakeCompressor(default="Capex was $1,577 million.")
    scorer = FakeScorer(lambda prompt, z: -1.0 if "Capex was" in prompt else -9.0)
    stage = CompressionStage(
        [Rung(AbstractiveCompressor(compressor), threshold_bits_per_token=0.1)],
        estimator=CXMIEstimator(scorer),
        token_budget=10,
    )
    page = "Capex was $1,577 million. " + "The logo is red. " * 60
    [result] = stage.run([page], query="What was capex?")
    assert result.decision == "accepted", result.reason
    assert result.text == "Capex was $1,577 million.", result.text
    print("scripted stage:", result.decision, result.input_tokens, "->", result.output_tokens)
    """
)


def _uv() -> list[str]:
    for candidate in (os.environ.get("UV"), shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return [candidate]
    probe = subprocess.run(
        [sys.executable, "-m", "uv", "--version"], capture_output=True, text=True, check=False
    )
    if probe.returncode == 0:
        return [sys.executable, "-m", "uv"]
    pytest.skip("uv is not installed (`pip install uv`): the wheels cannot be built")


def _run(command: list[str], cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, **kwargs)


def _install(uv: list[str], python: Path, requirement: str, dist: Path, constraints: Path) -> None:
    command = [*uv, "pip", "install", "--python", str(python), "--find-links", str(dist)]
    command += ["--constraint", str(constraints), requirement]
    done = _run(command, cwd=dist.parent)
    if done.returncode == 0:
        return
    if any(word in done.stderr.lower() for word in NETWORK_TROUBLE):
        pytest.skip(f"no package index to install from: {done.stderr.strip()[-400:]}")
    pytest.fail(f"uv pip install {requirement} failed:\n{done.stderr[-3000:]}")


def _offer_compiled_llama_cpp(uv: list[str], constraints: Path, dist: Path) -> None:
    """Copy the llama-cpp-python wheel uv compiled for the workspace next to our wheels."""
    lines = constraints.read_text().splitlines()
    pinned = [line for line in lines if line.startswith("llama-cpp-python==")]
    cache = _run([*uv, "cache", "dir"], cwd=dist.parent).stdout.strip()
    if not pinned or not cache:
        return
    version = pinned[0].split("==")[-1].split(";")[0].strip()
    built = Path(cache).glob(
        f"sdists-*/*/llama-cpp-python/{version}/*/llama_cpp_python-{version}-*.whl"
    )
    newest = max(built, key=lambda path: path.stat().st_mtime, default=None)
    if newest is not None:
        shutil.copy2(newest, dist / newest.name)


RUNTIME_IMPORTS = (
    "import sys, ib_middleware, ib_middleware.build, ib_middleware.langgraph;"
    "import ib_middleware.langgraph._middleware, ib_integrations.llamacpp;"
    "print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))"
)


def test_the_runtime_imports_no_lab_only_package():
    # This workspace has the lab installed, so a stray import would show here.
    done = _run([sys.executable, "-c", RUNTIME_IMPORTS, *LAB_ONLY], cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


def test_knob_analysis_without_statsmodels_names_the_extra():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["statsmodels"] = None  # as if the analysis extra were not installed
        from ib_estimators import knob_analysis
        try:
            knob_analysis([0, 1, 0, 1], {"size": [1.0, 2.0, 3.0, 4.0]})
        except ModuleNotFoundError as error:
            print(error)
        """
    )
    done = _run([sys.executable, "-c", code], cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert 'pip install "ib-estimators[analysis]"' in done.stdout, done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Path, Path, Path]:
    uv = _uv()
    work = tmp_path_factory.mktemp("install")
    dist = work / "dist"
    built = _run([*uv, "build", "--all-packages", "--wheel", "--out-dir", str(dist)], cwd=ROOT)
    if built.returncode != 0:
        if any(word in built.stderr.lower() for word in NETWORK_TROUBLE):
            pytest.skip(f"no package index for the build backend: {built.stderr.strip()[-400:]}")
        pytest.fail(f"uv build failed:\n{built.stderr[-3000:]}")
    wheels = sorted(path.name.split("-")[0] for path in dist.glob("*.whl"))
    assert wheels == ["ib_estimators", "ib_integrations", "ib_middleware"], wheels
    constraints = work / "constraints.txt"
    export = ["export", "--frozen", "--no-dev", "--all-extras", "--no-hashes"]
    export += ["--no-emit-workspace"]
    exported = _run([*uv, *export, "--output-file", str(constraints)], cwd=ROOT)
    assert exported.returncode == 0, exported.stderr
    _offer_compiled_llama_cpp(uv, constraints, dist)
    venv = work / "venv"
    created = _run([*uv, "venv", "--python", sys.executable, str(venv)], cwd=work)
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    _install(uv, python, PIP_LINE, dist, constraints)
    return uv, python, dist, constraints


@pytest.mark.install
@pytest.mark.timeout(900)
def test_the_pip_line_gives_the_public_names_and_a_working_stage(installed):
    _, python, _, _ = installed
    # Run from a folder outside the workspace, so nothing of the checkout is importable.
    checked = _run([str(python), "-c", CHECK], cwd=python.parents[2])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "scripted stage: accepted" in checked.stdout


@pytest.mark.install
@pytest.mark.timeout(900)
def test_the_command_line_names_the_lab_extra_then_runs_with_it(installed):
    uv, python, dist, constraints = installed
    command = python.parent / "ib-middleware"
    without = _run([str(command), "--help"], cwd=python.parents[2])
    assert without.returncode == 1, without.stdout + without.stderr
    assert 'pip install "ib-middleware[lab]"' in without.stderr
    assert "Traceback" not in without.stderr

    _install(uv, python, "ib-middleware[embedded,langchain,lab]", dist, constraints)
    with_lab = _run([str(command), "--help"], cwd=python.parents[2])
    assert with_lab.returncode == 0, with_lab.stdout + with_lab.stderr
    for name in ("compress", "estimate", "calibrate", "report", "sweep", "demo"):
        assert name in with_lab.stdout
    knobs = "from ib_estimators import knob_analysis; print(knob_analysis.__name__)"
    analysed = _run([str(python), "-c", knobs], cwd=python.parents[2])
    assert analysed.returncode == 0, analysed.stderr  # the lab extra brings statsmodels

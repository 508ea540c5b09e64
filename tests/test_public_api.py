import importlib
import subprocess
import sys

import pytest

PACKAGES = [
    "ib_estimators",
    "ib_middleware",
    "ib_middleware.prompts",
    "ib_middleware.langgraph",
    "ib_middleware.lab",
    "ib_middleware.lab.calibration",
    "ib_middleware.lab.data",
    "ib_middleware.lab.data.cases",
    "ib_middleware.lab.data.loaders",
    "ib_middleware.lab.estimation",
    "ib_middleware.lab.model_judges",
    "ib_middleware.lab.sweep",
    "ib_integrations",
    "ib_integrations.llamacpp",
]

# Where each wing's public names are imported from (README "Install in your project").
LAYOUT = {
    "ib_middleware": [
        "build_stage",
        "CompressionStage",
        "StageConfig",
        "ScoringTemplate",
        "DEFAULT_SCORING_TEMPLATE",
        "estimate_compressor_mi",
        "score_tensor",
        "CompressorMI",
    ],
    "ib_middleware.prompts": ["ScoringTemplate", "DEFAULT_SCORING_TEMPLATE", "build_messages"],
    "ib_middleware.langgraph": [
        "compression_node",
        "with_compression",
        "CompressingChatModel",
        "IBMiddleware",
        "IBState",
        "ChatModelGenerator",
        "COMPRESSOR_TAGS",
    ],
    "ib_middleware.lab.data": ["LabelledCase", "load_cases", "load_dataset", "load_financebench"],
    "ib_middleware.lab.calibration": ["measure", "build_policy", "LabelledCase", "load_cases"],
    "ib_middleware.lab.estimation": ["estimate_compressor_mi", "score_tensor", "CompressorMI"],
    "ib_middleware.lab.judges": ["get_judge", "JUDGES"],
    "ib_middleware.lab.sweep": ["SweepConfig", "run_sweep"],
    "ib_integrations.llamacpp": ["LlamaCppEngine", "ScoringCounters"],
}


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_explicit_and_resolves(name):
    module = importlib.import_module(name)
    assert isinstance(module.__all__, list)
    assert sorted(set(module.__all__)) == sorted(module.__all__), "duplicates in __all__"
    for symbol in module.__all__:
        assert hasattr(module, symbol), f"{name}.__all__ names missing {symbol}"


@pytest.mark.parametrize("module", sorted(LAYOUT))
def test_names_import_from_their_wing(module):
    imported = importlib.import_module(module)
    for name in LAYOUT[module]:
        assert hasattr(imported, name), f"{name} is not importable from {module}"


def test_moved_names_are_the_same_objects_everywhere():
    import ib_middleware
    from ib_middleware.lab import estimation
    from ib_middleware.lab.calibration import LabelledCase, load_cases
    from ib_middleware.lab.data import cases
    from ib_middleware.langgraph import _generator
    from ib_middleware.prompts import DEFAULT_SCORING_TEMPLATE, ScoringTemplate

    assert ib_middleware.estimate_compressor_mi is estimation.estimate_compressor_mi
    assert ib_middleware.ScoringTemplate is ScoringTemplate is estimation.ScoringTemplate
    assert ib_middleware.DEFAULT_SCORING_TEMPLATE is DEFAULT_SCORING_TEMPLATE
    assert LabelledCase is cases.LabelledCase
    assert load_cases is cases.load_cases
    import ib_middleware.langgraph as adapters

    assert adapters.ChatModelGenerator is _generator.ChatModelGenerator
    with pytest.raises(AttributeError):
        _ = adapters.NoSuchName
    with pytest.raises(AttributeError):
        _ = ib_middleware.NoSuchName


def test_importing_the_runtime_imports_neither_adapters_nor_lab():
    """The runtime serves a request without the adapters, the lab or the lab's dependencies."""
    code = (
        "import sys, ib_middleware, ib_middleware.build, ib_middleware.telemetry;"
        "print(sorted(m for m in sys.modules if m.startswith(('ib_middleware.lab',"
        " 'ib_middleware.langgraph', 'ib_integrations', 'typer', 'rich', 'matplotlib'))"
        " or m == 'langchain'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_command_line_entry_point_is_the_lab():
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["scripts"]["ib-middleware"] == "ib_middleware.lab:main"
    assert not {"typer", "rich", "matplotlib"} & {
        dep.split(">")[0].split("=")[0] for dep in project["dependencies"]
    }
    assert set(project["optional-dependencies"]) == {
        "embedded", "sglang", "openai", "langchain", "otel", "lab", "all"
    }  # fmt: skip


def test_estimator_api_names():
    import ib_estimators

    required = {
        "mc_mutual_information",
        "MIEstimate",
        "bit_efficiency",
        "contrastive_pmi",
        "cxmi",
        "fit_rate_distortion",
        "RateDistortionFit",
        "correlate",
        "ModelSpec",
        "flops_per_generation",
        "api_cost",
        "knob_analysis",
    }
    assert required <= set(ib_estimators.__all__)


def test_public_callables_have_docstring_examples():
    import ib_estimators

    for symbol in ib_estimators.__all__:
        obj = getattr(ib_estimators, symbol)
        if callable(obj) and not isinstance(obj, type):
            assert obj.__doc__, f"{symbol} needs a docstring"
            assert "Example:" in obj.__doc__, f"{symbol} needs a docstring example"


def test_modules_stay_small():
    """House rule: no module over ~400 lines (a little slack for docstrings)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sources = [
        *root.glob("src/ib_middleware/**/*.py"),
        *root.glob("estimators/src/ib_estimators/**/*.py"),
        *root.glob("integrations/src/ib_integrations/**/*.py"),
    ]
    too_long = {
        str(path.relative_to(root)): count
        for path in sources
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > 430
    }
    assert not too_long, f"split these modules: {too_long}"

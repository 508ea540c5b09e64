"""Sweep configuration: the grid, the dataset, the scorer, the judge and the prices.

A sweep is a grid over compressors x predictors x seeds on one dataset. Every compressor is run
on N contexts with M samples each (the Monte Carlo MI needs M compressions per context); every
predictor answers from every compression and from the full context (the fallback's answer).
Load it from YAML with ``SweepConfig.load``; unknown keys are errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ib_middleware.config import EngineConfig
from ib_middleware.prompts import PromptStyle

__all__ = [
    "DatasetConfig",
    "JudgeConfig",
    "ModelSpecConfig",
    "PredictorConfig",
    "PriceConfig",
    "SweepCompressorConfig",
    "SweepConfig",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def key(self) -> str:
        """A stable identity for cache keys."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)


def _engine(model_path: str) -> EngineConfig:
    return EngineConfig(engine="llamacpp", options={"model_path": model_path})


class DatasetConfig(_Strict):
    """Which cases to run (see ``ib_middleware.lab.data.load_dataset``)."""

    kind: Literal["financebench", "jsonl", "longhealth", "qasper"] = "financebench"
    path: Path | None = Field(default=None, description="the bundled sample when omitted")
    limit: int | None = Field(default=8, ge=2, description="N, the number of contexts")
    answerable_only: bool = Field(
        default=True, description="keep cases whose context holds every figure of the answer"
    )
    distractor_pages: int = Field(default=0, ge=0, description="FinanceBench only")
    max_context_chars: int | None = Field(default=None, ge=1)
    seed: int = 0


class ModelSpecConfig(_Strict):
    """Architecture figures for FLOPs accounting, for engines whose GGUF cannot be read.

    The embedded llama.cpp engine reads them from the model file; a remote engine (SGLang,
    vLLM, an API) needs them written here, or its FLOPs are reported as unknown.
    """

    n_params: float = Field(gt=0)
    n_layers: int = Field(gt=0)
    d_attn: int = Field(gt=0, description="attention heads x head dimension")


class SweepCompressorConfig(_Strict):
    """One compressor of the grid.

    ``abstractive`` prompts an engine; ``extractive`` keeps BM25-ranked sentences under a token
    budget; ``truncation`` keeps the first ``budget_tokens`` tokens (the no-skill baseline).
    """

    name: str
    kind: Literal["abstractive", "extractive", "truncation"] = "abstractive"
    engine: EngineConfig = Field(default_factory=lambda: _engine("smollm2"))
    family: str | None = Field(default=None, description="for the knob analysis; model id")
    style: PromptStyle = "query_specific"
    sentences: Literal[3, 6, 9] = 3
    max_tokens: int = Field(default=160, ge=1)
    temperature: float = Field(
        default=0.7, ge=0.0, description="> 0 so the M samples per context differ"
    )
    budget_tokens: int = Field(default=128, ge=1, description="extractive and truncation")
    scorer: EngineConfig | None = Field(
        default=None, description="proxy scorer for this compressor; the sweep's by default"
    )
    price_model: str = Field(default="local", description="row of the price table")
    spec: ModelSpecConfig | None = Field(default=None, description="FLOPs figures override")

    @property
    def deterministic(self) -> bool:
        """True when every sample is the same text, so one sample per context suffices."""
        return self.kind != "abstractive" or self.temperature == 0.0


class PredictorConfig(_Strict):
    """One predictor: an engine that answers the query from a compression (or the context)."""

    name: str
    engine: EngineConfig = Field(default_factory=lambda: _engine("smollm2"))
    family: str | None = None
    max_tokens: int = Field(default=48, ge=1)
    price_model: str = Field(default="gpt-4o", description="prices the tokens it reads")
    answer_perplexity: bool = Field(
        default=True, description="score the gold answer's perplexity when the engine can"
    )
    spec: ModelSpecConfig | None = Field(default=None, description="FLOPs figures override")


class JudgeConfig(_Strict):
    """How a prediction is marked correct: a string judge by name, or an LLM judge."""

    kind: Literal["numeric", "facts", "contains", "exact", "token_f1", "llm"] = "numeric"
    engine: EngineConfig | None = Field(default=None, description="llm only")

    @model_validator(mode="after")
    def _llm_needs_engine(self) -> JudgeConfig:
        if self.kind == "llm" and self.engine is None:
            msg = "judge kind 'llm' needs an engine (any registered generator)"
            raise ValueError(msg)
        return self


class PriceConfig(_Strict):
    """Price in currency units per million tokens."""

    input_per_million: float = Field(ge=0.0)
    output_per_million: float = Field(ge=0.0)


def _default_prices() -> dict[str, PriceConfig]:
    # List prices in USD per million tokens (2025); override them in the config.
    return {
        "local": PriceConfig(input_per_million=0.0, output_per_million=0.0),
        "gpt-4o": PriceConfig(input_per_million=2.50, output_per_million=10.00),
        "gpt-4o-mini": PriceConfig(input_per_million=0.15, output_per_million=0.60),
    }


class SweepConfig(_Strict):
    """A whole sweep.

    Example:
        >>> config = SweepConfig(
        ...     compressors=[{"name": "extractive-64", "kind": "extractive", "budget_tokens": 64}],
        ...     predictors=[{"name": "smollm2"}],
        ... )
        >>> config.samples, config.compressors[0].deterministic
        (2, True)
    """

    name: str = "sweep"
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    compressors: list[SweepCompressorConfig] = Field(min_length=1)
    predictors: list[PredictorConfig] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    samples: int = Field(default=2, ge=1, description="M compressions per context")
    scorer: EngineConfig = Field(default_factory=lambda: _engine("gemma3-270m"))
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    prices: dict[str, PriceConfig] = Field(default_factory=_default_prices)
    fallback_rates: list[float] = Field(
        default_factory=lambda: [round(0.1 * step, 1) for step in range(11)]
    )
    workers: int = Field(default=1, ge=1, description="parallel calls for engines that allow it")
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _unique_names(self) -> SweepConfig:
        for label, names in (
            ("compressor", [c.name for c in self.compressors]),
            ("predictor", [p.name for p in self.predictors]),
        ):
            if len(set(names)) != len(names):
                msg = f"{label} names must be unique, got {names}"
                raise ValueError(msg)
        missing = {c.price_model for c in self.compressors} | {
            p.price_model for p in self.predictors
        }
        missing -= set(self.prices)
        if missing:
            msg = f"no price for {sorted(missing)}; add them under `prices`"
            raise ValueError(msg)
        return self

    @classmethod
    def load(cls, path: str | Path) -> SweepConfig:
        """Load a YAML sweep file; a relative dataset path may be relative to the file's folder.

        Raises:
            ValueError: On invalid content (pydantic names the field).
        """
        source = Path(path)
        data: Any = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            msg = f"{source.name} must hold a mapping at the top level"
            raise ValueError(msg)  # noqa: TRY004  # bad file content, not a bad argument type
        dataset = data.get("dataset")
        if isinstance(dataset, dict) and dataset.get("path"):
            beside = source.parent / Path(dataset["path"])
            if not Path(dataset["path"]).exists() and beside.exists():
                dataset["path"] = str(beside)
        return cls(**data)

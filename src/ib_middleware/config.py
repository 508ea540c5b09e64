"""Stage configuration: pydantic models, loadable from YAML, TOML and environment variables.

The default runs fully offline at CPU speed: the graded extractive ladder (``graded_rungs()``:
the page's sentences and table rows, with their headers, that best answer the query, at about
10%, 25% and 50% of the item: ``segments-tight``, ``segments-medium``, ``segments-wide``),
then the full-context fallback. Each rung is judged by the accept rule: the support check,
then the relevant-information estimate scored by the embedded Gemma-3-270M. Its thresholds and
relevance gate come from the policy shipped with the package (calibrated on the bundled
HotpotQA and FinanceBench workloads, with a guarantee per workload; ``docs/calibration.md``).
Abstractive rungs (``kind: abstractive`` with the embedded SmolLM2-135M or Gemma-3-270M, or any
engine) are one config entry away. Set ``policy: null`` to use the thresholds written in the
config instead.

Environment variables override the file: ``IB_MIDDLEWARE_TOKEN_BUDGET=512``,
``IB_MIDDLEWARE_ON_FAILURE=raise``, ``IB_MIDDLEWARE_ESTIMATOR__KIND=contrastive_pmi``,
``IB_MIDDLEWARE_POLICY=policy.json`` (nested fields use ``__``).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ib_middleware.judging.routing import MIN_OUTPUT_TOKENS
from ib_middleware.policy import default_policy_path
from ib_middleware.prompts import PromptStyle

__all__ = [
    "CompressorConfig",
    "EngineConfig",
    "EstimatorConfig",
    "RungConfig",
    "StageConfig",
    "graded_rungs",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngineConfig(_Strict):
    """An engine by registry name, with its constructor options.

    For ``llamacpp``, ``model_path`` may name an embedded model: ``smollm2`` or ``gemma3-270m``.
    """

    engine: str = "llamacpp"
    options: dict[str, Any] = Field(default_factory=lambda: {"model_path": "smollm2"})

    def key(self) -> str:
        """A stable identity, so rungs and scorer share one engine instance."""
        return json.dumps({"engine": self.engine, "options": self.options}, sort_keys=True)


class CompressorConfig(_Strict):
    """How a rung compresses."""

    kind: Literal["abstractive", "extractive", "segments"] = "abstractive"
    engine: EngineConfig = Field(default_factory=EngineConfig)
    style: PromptStyle = "query_specific"
    sentences: Literal[3, 6, 9] = 3
    max_tokens: int = Field(default=200, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    seed: int = 0
    budget_tokens: int = Field(default=200, ge=1, description="extractive and segments only")
    max_segments: int | None = Field(
        default=4, ge=1, description="segments only: most segments kept (null: the budget decides)"
    )
    relative_score: float = Field(default=0.6, ge=0.0, le=1.0, description="segments only")
    budget_share: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="segments only: budget grows to this page share"
    )
    context_words: bool = Field(
        default=False, description="segments only: rank with block title and table header words"
    )
    cover_facets: bool = Field(
        default=False, description="segments only: a segment for every year and name of the query"
    )
    second_hop: bool = Field(
        default=False, description="segments only: rank again with the bridge titles the best name"
    )


class RungConfig(_Strict):
    """One rung: a compressor and its threshold in bits per token."""

    name: str
    compressor: CompressorConfig
    threshold_bits_per_token: float = 0.0


class EstimatorConfig(_Strict):
    """The online estimator and its scorer."""

    kind: Literal["cxmi", "contrastive_pmi", "relevant_pmi"] = "relevant_pmi"
    scorer: EngineConfig = Field(
        default_factory=lambda: EngineConfig(options={"model_path": "gemma3-270m"})
    )
    reservoir_size: int = Field(default=16, ge=0)
    relevant_segments: int = Field(
        default=3, ge=1, description="relevant_pmi: segments of the context that make up s"
    )
    witness: Literal["page", "segments"] = Field(
        default="segments",
        description=(
            "relevant_pmi: what stands for what the query needs: the whole page (retention, "
            "pmi(q; z) / pmi(q; x)) or its top BM25 segments"
        ),
    )


_GRADED_RUNGS = (
    ("segments-tight", 0.10, 48),
    ("segments-medium", 0.25, 96),
    ("segments-wide", 0.50, 160),
)
"""The graded ladder's rungs: name, share of the item, and the least tokens kept."""


def graded_rungs(threshold: float = 0.5) -> list[RungConfig]:
    """The graded extractive ladder: selections of about 10%, 25% and 50% of the item.

    The default ladder. Each rung ranks segments with their block's title and table header
    words and a second hop for bridge titles, keeping as many as its share of the item allows
    (``bench/selection_containment.py`` measured each choice). ``threshold`` is a placeholder
    for every rung: the shipped policy replaces it by name.

    Example:
        >>> [rung.name for rung in graded_rungs()]
        ['segments-tight', 'segments-medium', 'segments-wide']
        >>> config = StageConfig(rungs=graded_rungs(), policy=None)
    """
    return [
        RungConfig(
            name=name,
            compressor=CompressorConfig(
                kind="segments",
                budget_tokens=floor,
                budget_share=share,
                max_segments=None,
                relative_score=0.0,
                context_words=True,
                second_hop=True,
            ),
            threshold_bits_per_token=threshold,
        )
        for name, share, floor in _GRADED_RUNGS
    ]


class StageConfig(BaseSettings):
    """Everything ``build_stage`` needs; see the module docstring for the environment.

    Example:
        >>> config = StageConfig()
        >>> [rung.name for rung in config.rungs], config.estimator.kind
        (['segments-tight', 'segments-medium', 'segments-wide'], 'relevant_pmi')
    """

    model_config = SettingsConfigDict(
        env_prefix="IB_MIDDLEWARE_", env_nested_delimiter="__", extra="forbid"
    )

    rungs: list[RungConfig] = Field(default_factory=graded_rungs)
    estimator: EstimatorConfig = Field(default_factory=EstimatorConfig)
    token_budget: int = Field(default=256, ge=0)
    on_failure: Literal["passthrough", "raise"] = "passthrough"
    min_output_tokens: int = Field(
        default=MIN_OUTPUT_TOKENS, ge=1, description="shorter compressions are rejected"
    )
    reject_unsupported_figures: bool = Field(
        default=True,
        description="reject a compression holding a figure or a name its context lacks",
    )
    relevance_gate: bool = Field(
        default=True,
        description="prune items with nothing relevant to the query when a gate is set",
    )
    prune_below: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="the gate's threshold (share of the query explained); the policy's if unset",
    )
    policy: Path | None = Field(
        default_factory=default_policy_path,
        description="calibrated policy file; its thresholds replace the rungs' by name",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment variables win over values from a file (passed as init values)."""
        del settings_cls, dotenv_settings, file_secret_settings
        return (env_settings, init_settings)

    @classmethod
    def load(cls, path: str | Path | None = None) -> StageConfig:
        """Load a YAML (``.yaml``/``.yml``) or TOML (``.toml``) file, then apply the environment.

        Raises:
            ValueError: On an unknown file type or invalid content (pydantic names the field).
        """
        if path is None:
            return cls()
        source = Path(path)
        text = source.read_text(encoding="utf-8")
        if source.suffix in {".yaml", ".yml"}:
            data = yaml.safe_load(text) or {}
        elif source.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            msg = f"config file must be .yaml, .yml or .toml, got {source.name}"
            raise ValueError(msg)
        if not isinstance(data, dict):
            msg = f"{source.name} must hold a mapping at the top level"
            raise ValueError(msg)  # noqa: TRY004  # bad file content, not a bad argument type
        return cls(**data)

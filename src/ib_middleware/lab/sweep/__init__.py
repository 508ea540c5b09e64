"""Sweeps: measure compressors x predictors x seeds on a dataset, then analyse and report.

``ib-middleware sweep CONFIG.yaml --out DIR`` (or ``run_sweep``) compresses N contexts M times
with every compressor, estimates I(X; Z | Q) and bits per token with a proxy scorer, has every
predictor answer from every compression and from the full context, judges the answers, and
writes to DIR:

- ``results.json``: the config, every cell and item, and every analysis;
- ``plots/*.png``: rate-distortion, MI against distortion, length against accuracy, routing
  curves (accuracy by fallback rate and by cost), knob coefficients;
- ``report.html``: one self-contained page with all of it;
- ``cache/``: every unit of work, so an interrupted or extended sweep redoes only what is new.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import time
from pathlib import Path
from typing import Any

from ib_middleware.build import EngineCache
from ib_middleware.lab._cli_support import json_ready
from ib_middleware.lab.data import load_dataset
from ib_middleware.lab.sweep.analysis import CONTAINMENT, analyse, routing_curves
from ib_middleware.lab.sweep.baselines import TruncationCompressor
from ib_middleware.lab.sweep.cache import ResultCache
from ib_middleware.lab.sweep.config import (
    DatasetConfig,
    JudgeConfig,
    ModelSpecConfig,
    PredictorConfig,
    PriceConfig,
    SweepCompressorConfig,
    SweepConfig,
)
from ib_middleware.lab.sweep.page import render_sweep_page
from ib_middleware.lab.sweep.records import SweepRun
from ib_middleware.lab.sweep.runner import run_grid

__all__ = [
    "CONTAINMENT",
    "DatasetConfig",
    "JudgeConfig",
    "ModelSpecConfig",
    "PredictorConfig",
    "PriceConfig",
    "ResultCache",
    "SweepCompressorConfig",
    "SweepConfig",
    "SweepRun",
    "TruncationCompressor",
    "analyse",
    "headline",
    "routing_curves",
    "run_sweep",
]


def _interval(correlation: dict[str, Any]) -> str:
    if "error" in correlation:
        return "n/a"
    low, high = correlation["pearson_ci"]
    interval = "" if math.isnan(low) else f" [{low:+.2f}, {high:+.2f}]"
    return f"{correlation['pearson_r']:+.2f}{interval} (n={correlation['n']})"


def headline(analyses: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The figures a reader wants first, per predictor: r and mean routing gains.

    Routing gains are averaged over the compressors whose routing curve could be drawn.
    """
    result = {}
    for predictor, analysis in analyses.items():
        curves = [c for c in analysis["routing"].values() if "error" not in c]
        gains_random = [c["gain_vs_random"] for c in curves]
        gains_length = [c["gain_vs_length"] for c in curves]
        result[predictor] = {
            "r_bits_per_token_distortion": analysis["correlations"]["bits_per_token_vs_distortion"],
            "gain_vs_random": sum(gains_random) / len(gains_random) if curves else None,
            "gain_vs_length": sum(gains_length) / len(gains_length) if curves else None,
        }
    return result


def _summary(
    config: SweepConfig, run: SweepRun, analyses: dict[str, Any], runtime: float
) -> dict[str, str]:
    cards = {
        "contexts (N)": str(len(run.cases)),
        "samples per context (M)": str(config.samples),
        "cells": str(len(run.cells)),
        "runtime": f"{runtime:.0f} s",
    }
    for predictor, figures in headline(analyses).items():
        cards[f"r(bits/token, distortion): {predictor}"] = _interval(
            figures["r_bits_per_token_distortion"]
        )
        for key, label in (("gain_vs_random", "random"), ("gain_vs_length", "length")):
            value = figures[key]
            cards[f"MI - {label} routing: {predictor}"] = (
                "n/a" if value is None else f"{value:+.3f}"
            )
    return cards


def _stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def run_sweep(
    config: SweepConfig | str | Path,
    out_dir: str | Path,
    *,
    progress: bool = True,
    engines: EngineCache | None = None,
) -> dict[str, Any]:
    """Run a sweep and write ``results.json``, ``plots/`` and ``report.html`` to ``out_dir``.

    Args:
        config: A ``SweepConfig`` or the path of a YAML file.
        out_dir: Output folder (created); its ``cache/`` makes reruns resume.
        progress: Show rich progress bars.
        engines: Engines to reuse (a fresh ``EngineCache`` by default).

    Returns:
        The content of ``results.json``.
    """
    started = time.perf_counter()
    if not isinstance(config, SweepConfig):
        config = SweepConfig.load(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dataset = config.dataset
    cases = load_dataset(
        dataset.kind,
        dataset.path,
        limit=dataset.limit,
        distractor_pages=dataset.distractor_pages,
        seed=dataset.seed,
        answerable_only=dataset.answerable_only,
        max_context_chars=dataset.max_context_chars,
    )
    if len(cases) < 2:
        msg = f"the dataset gave {len(cases)} case(s); mutual information needs at least 2"
        raise ValueError(msg)
    run = run_grid(config, cases, ResultCache(out / "cache"), engines=engines, progress=progress)
    analyses = analyse(run, config.fallback_rates)
    runtime = time.perf_counter() - started
    results: dict[str, Any] = {
        "config": config.model_dump(mode="json"),
        "summary": _summary(config, run, analyses, runtime),
        "headline": headline(analyses),
        "runtime_s": runtime,
        "cache": {"hits": run.cache_hits, "misses": run.cache_misses},
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "cases": run.cases,
        "cells": run.cells,
        "analyses": analyses,
        "items": run.items,
    }
    from ib_middleware.lab.sweep.plots import render_figures  # noqa: PLC0415  # matplotlib is heavy

    images = {_stem(stem): png for stem, png in render_figures(run.cells, analyses).items()}
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    for stem, png in images.items():
        (plots / f"{stem}.png").write_bytes(png)
    (out / "results.json").write_text(
        json.dumps(json_ready(results), indent=1, allow_nan=False), encoding="utf-8"
    )
    (out / "report.html").write_text(
        render_sweep_page(results, images, title=config.name), encoding="utf-8"
    )
    return results

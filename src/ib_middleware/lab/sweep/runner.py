"""Running a sweep: compress, score, answer, judge; every unit of work cached on disk.

For each compressor and seed: M compressions of each of the N contexts (one when the
compressor is deterministic), the (N, M, N) score tensor under the compressor's proxy scorer,
then every predictor's answer from every compression and from each full context. The result is
a flat table of items (one per compression and predictor) that ``analysis`` reads.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from ib_estimators import (
    SATURATION_MARGIN_NATS,
    ModelSpec,
    Price,
    api_cost,
    flops_per_generation,
    mc_mutual_information,
)
from rich.progress import MofNCompleteColumn, Progress, TimeElapsedColumn

from ib_middleware.build import EngineCache, build_compressor
from ib_middleware.compressors import Compressor
from ib_middleware.config import CompressorConfig, EngineConfig
from ib_middleware.engines import Scorer, TokenCounter
from ib_middleware.errors import IBMiddlewareError
from ib_middleware.lab.data.cases import LabelledCase
from ib_middleware.lab.estimation import score_tensor
from ib_middleware.lab.judges import facts_contained
from ib_middleware.lab.sweep.baselines import TruncationCompressor
from ib_middleware.lab.sweep.cache import ResultCache
from ib_middleware.lab.sweep.config import (
    ModelSpecConfig,
    PredictorConfig,
    SweepCompressorConfig,
    SweepConfig,
)
from ib_middleware.lab.sweep.predict import Answer, JudgeFn, answer_query, build_judge
from ib_middleware.lab.sweep.records import SweepRun, summarise_cell
from ib_middleware.prompts import DEFAULT_SCORING_TEMPLATE

__all__ = ["run_grid"]

_T = TypeVar("_T")
_R = TypeVar("_R")
_LN2 = math.log(2.0)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _Fallback:
    """A predictor's answer from one full context: right or not, and what it cost."""

    correct: bool
    contained: bool
    cost: float


class _Grid:
    """The state of one sweep run: engines, cache, cases, progress."""

    def __init__(
        self,
        config: SweepConfig,
        cases: Sequence[LabelledCase],
        cache: ResultCache,
        engines: EngineCache,
        progress: Progress,
    ) -> None:
        self.config = config
        self.cases = list(cases)
        self.cache = cache
        self.engines = engines
        self.progress = progress
        self.prices = {
            name: Price(price.input_per_million, price.output_per_million)
            for name, price in config.prices.items()
        }
        self.judge: JudgeFn = build_judge(config.judge, engines)

    # Helpers ------------------------------------------------------------------------------

    def _map(self, label: str, function: Callable[[_T], _R], inputs: Sequence[_T]) -> list[_R]:
        task = self.progress.add_task(label, total=len(inputs))

        def step(item: _T) -> _R:
            result = function(item)
            self.progress.advance(task)
            return result

        if self.config.workers == 1:
            return [step(item) for item in inputs]
        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            return list(pool.map(step, inputs))

    def _spec(self, config: EngineConfig, override: ModelSpecConfig | None) -> ModelSpec | None:
        if override is not None:
            return ModelSpec(override.n_params, override.n_layers, override.d_attn)
        engine = self.engines.get(config)
        spec = getattr(engine, "model_spec", None)
        return spec() if callable(spec) else None

    def _scorer(self, compressor: SweepCompressorConfig) -> Scorer:
        engine = self.engines.get(compressor.scorer or self.config.scorer)
        if not isinstance(engine, Scorer):
            msg = f"the scorer for {compressor.name!r} cannot score; configure a proxy scorer"
            raise IBMiddlewareError(msg)
        return engine

    def _counter(self, compressor: SweepCompressorConfig) -> TokenCounter | None:
        scorer = self._scorer(compressor)
        return scorer if isinstance(scorer, TokenCounter) else None

    def _compressor(self, config: SweepCompressorConfig, seed: int) -> Compressor:
        if config.kind == "truncation":
            return TruncationCompressor(
                budget_tokens=config.budget_tokens,
                token_counter=self._counter(config),
                name=config.name,
            )
        stage_config = CompressorConfig(
            kind=config.kind,
            engine=config.engine,
            style=config.style,
            sentences=config.sentences,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
            seed=seed,
            budget_tokens=config.budget_tokens,
        )
        return build_compressor(stage_config, self.engines, self._counter(config), name=config.name)

    # Units of work ------------------------------------------------------------------------

    def _compress(self, config: SweepCompressorConfig, seed: int) -> list[list[dict[str, Any]]]:
        samples = 1 if config.deterministic else self.config.samples
        units = [(i, j) for i in range(len(self.cases)) for j in range(samples)]

        def one(unit: tuple[int, int]) -> dict[str, Any]:
            i, j = unit
            case = self.cases[i]
            sample_seed = seed * 1009 + j
            key = {
                "compressor": config.key(),
                # A deterministic compressor gives the same text whatever the seed: share it.
                "seed": None if config.deterministic else sample_seed,
                "context": _digest(case.context),
                "query": case.query,
            }
            cached = self.cache.get("compressions", key)
            if cached is not None:
                return dict(cached)
            record: dict[str, Any]
            try:
                made = self._compressor(config, sample_seed).compress(case.context, case.query)
            except IBMiddlewareError as error:
                record = {"text": "", "error": f"{type(error).__name__}: {error}"}
                record |= {"prompt_tokens": 0, "completion_tokens": 0, "wall_s": 0.0}
            else:
                record = {
                    "text": made.text,
                    "error": None,
                    "prompt_tokens": made.prompt_tokens,
                    "completion_tokens": made.completion_tokens,
                    "wall_s": made.wall_s,
                }
            self.cache.put("compressions", key, record)
            return record

        flat = self._map(f"compress {config.name} (seed {seed})", one, units)
        return [flat[i * samples : (i + 1) * samples] for i in range(len(self.cases))]

    def _scores(
        self, config: SweepCompressorConfig, texts: list[list[str]]
    ) -> tuple[np.ndarray, np.ndarray]:
        scorer = self._scorer(config)
        key = {
            "scorer": (config.scorer or self.config.scorer).key(),
            "template": DEFAULT_SCORING_TEMPLATE.with_context,
            "contexts": [_digest(case.context) for case in self.cases],
            "queries": [case.query for case in self.cases],
            "texts": texts,
        }
        cached = self.cache.get("scores", key)
        if cached is None:
            task = self.progress.add_task(f"score {config.name} with {scorer.model_id}", total=1)
            scores, lengths = score_tensor(
                [case.context for case in self.cases],
                [case.query for case in self.cases],
                texts,
                scorer,
                empty="zero",
            )
            self.progress.advance(task)
            cached = {"scores": scores.tolist(), "lengths": lengths.tolist()}
            self.cache.put("scores", key, cached)
        return np.asarray(cached["scores"], dtype=np.float64), np.asarray(cached["lengths"])

    def _answers(
        self, predictor: PredictorConfig, sources: Iterable[tuple[str, int]]
    ) -> list[Answer]:
        engine = self.engines.get(predictor.engine)
        inputs = list(sources)

        def one(source: tuple[str, int]) -> Answer:
            text, case_index = source
            case = self.cases[case_index]
            key = {
                "predictor": predictor.key(),
                "source": _digest(text),
                "query": case.query,
                "answer": case.answer,
            }
            cached = self.cache.get("answers", key)
            if cached is not None:
                return Answer(**cached)
            answer = answer_query(engine, predictor, text, case.query, case.answer)
            self.cache.put("answers", key, answer.as_dict())
            return answer

        return self._map(f"answer with {predictor.name}", one, inputs)

    def _cost(self, model: str, prompt: int, completion: int) -> float:
        return api_cost(model, prompt, completion, prices=self.prices)

    # The grid -----------------------------------------------------------------------------

    def run(self) -> SweepRun:
        result = SweepRun()
        counters = [self._counter(c) for c in self.config.compressors]
        counter = next((c for c in counters if c is not None), None)
        context_tokens = [
            counter.count_tokens(case.context) if counter else math.ceil(len(case.context) / 4)
            for case in self.cases
        ]
        result.cases = [
            {"id": case.case_id, "query": case.query, "answer": case.answer, "tokens": tokens}
            for case, tokens in zip(self.cases, context_tokens, strict=True)
        ]
        # The fallback's answers; the perplexity analysis is about compressions, so the full
        # contexts (the longest prompts of the sweep) are not scored a second time.
        full = {
            p.name: self._answers(
                p.model_copy(update={"answer_perplexity": False}),
                [(case.context, i) for i, case in enumerate(self.cases)],
            )
            for p in self.config.predictors
        }
        # What falling back gives, judged once per case rather than once per compression.
        fallback = {
            p.name: [
                _Fallback(
                    correct=self.judge(answer.prediction, case.answer, case.query),
                    contained=facts_contained(case.answer, case.context),
                    cost=self._cost(p.price_model, answer.prompt_tokens, answer.completion_tokens),
                )
                for answer, case in zip(full[p.name], self.cases, strict=True)
            ]
            for p in self.config.predictors
        }
        for compressor in self.config.compressors:
            spec = (
                self._spec(compressor.engine, compressor.spec)
                if compressor.kind == "abstractive"
                else None
            )
            for seed in self.config.seeds:
                records = self._compress(compressor, seed)
                texts = [[record["text"] for record in row] for row in records]
                scores, lengths = self._scores(compressor, texts)
                self._record(
                    result,
                    compressor,
                    seed=seed,
                    records=records,
                    scores=scores,
                    lengths=lengths,
                    spec=spec,
                    fallback=fallback,
                )
        result.cache_hits, result.cache_misses = self.cache.hits, self.cache.misses
        return result

    def _record(
        self,
        result: SweepRun,
        compressor: SweepCompressorConfig,
        *,
        seed: int,
        records: list[list[dict[str, Any]]],
        scores: np.ndarray,
        lengths: np.ndarray,
        spec: ModelSpec | None,
        fallback: dict[str, list[_Fallback]],
    ) -> None:
        estimate = mc_mutual_information(scores, confidence=self.config.confidence, seed=seed)
        terms = estimate.per_sample / _LN2
        # A term at log N says "at least": no rate can be read off it (see records.py).
        ceiling = (math.log(len(records)) - SATURATION_MARGIN_NATS) / _LN2
        mean_length = float(lengths.mean())
        flat = [(i, j) for i in range(len(records)) for j in range(len(records[i]))]
        common = {
            "compressor": compressor.name,
            "kind": compressor.kind,
            "family": compressor.family
            or (
                str(compressor.engine.options.get("model_path", compressor.engine.engine))
                if compressor.kind == "abstractive"
                else compressor.kind
            ),
            "sentences": compressor.sentences if compressor.kind == "abstractive" else None,
            "compressor_params": spec.n_params if spec else None,
            "seed": seed,
        }
        for predictor in self.config.predictors:
            predictor_spec = self._spec(predictor.engine, predictor.spec)
            sources = [(records[i][j]["text"], i) for i, j in flat]
            answers = self._answers(predictor, sources)
            items = []
            for (i, j), answer in zip(flat, answers, strict=True):
                record, case, back = records[i][j], self.cases[i], fallback[predictor.name][i]
                length = int(lengths[i, j])
                items.append(
                    common
                    | {
                        "predictor": predictor.name,
                        "predictor_params": predictor_spec.n_params if predictor_spec else None,
                        "case": i,
                        "sample": j,
                        "output_tokens": length,
                        "input_tokens": result.cases[i]["tokens"],
                        "pmi_bits": float(terms[i, j]),
                        "bits_per_token": (
                            float(terms[i, j]) / length
                            if length and terms[i, j] < ceiling
                            else None
                        ),
                        "contained": facts_contained(case.answer, record["text"]),
                        "full_contained": back.contained,
                        "correct": self.judge(answer.prediction, case.answer, case.query),
                        "full_correct": back.correct,
                        "perplexity": answer.perplexity,
                        "failed": record["error"] is not None or answer.error is not None,
                        "compressor_flops": flops_per_generation(
                            spec, record["prompt_tokens"], record["completion_tokens"]
                        )
                        if spec
                        else 0.0,
                        "predictor_flops": flops_per_generation(
                            predictor_spec, answer.prompt_tokens, answer.completion_tokens
                        )
                        if predictor_spec
                        else None,
                        "compressor_cost": self._cost(
                            compressor.price_model,
                            record["prompt_tokens"],
                            record["completion_tokens"],
                        ),
                        "predictor_cost": self._cost(
                            predictor.price_model, answer.prompt_tokens, answer.completion_tokens
                        ),
                        "full_cost": back.cost,
                    }
                )
            result.items.extend(items)
            result.cells.append(
                summarise_cell(common, predictor.name, items, estimate, mean_length)
            )


def run_grid(
    config: SweepConfig,
    cases: Sequence[LabelledCase],
    cache: ResultCache,
    *,
    engines: EngineCache | None = None,
    progress: bool = True,
) -> SweepRun:
    """Run every cell of the grid over ``cases``, reading finished units from ``cache``."""
    columns = (*Progress.get_default_columns(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress) as bar:
        grid = _Grid(config, cases, cache, engines or EngineCache(), bar)
        return grid.run()

"""The predictor's side of a sweep: answer a query from a text, and judge the answer.

The predictor reads a compression (or the full context, for the fallback) and answers at
temperature 0. When its engine can score, the gold answer's perplexity under the same text is
measured too: the paper's predictor-side signal, cheaper and smoother than 0/1 correctness.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ib_middleware.build import EngineCache
from ib_middleware.engines import ChatMessage, GenerationSettings, Generator, Scorer, ScoreRequest
from ib_middleware.errors import IBMiddlewareError
from ib_middleware.lab.judges import get_judge
from ib_middleware.lab.sweep.config import JudgeConfig, PredictorConfig

__all__ = ["Answer", "JudgeFn", "answer_query", "build_judge"]

JudgeFn = Callable[[str, str, str], bool]
"""``judge(prediction, gold_answer, query)``: is the prediction correct?"""

_SYSTEM = (
    "Answer the question from the text between <context> and </context>. Reply with the "
    "answer only: a number with its unit, a name, or a short phrase."
)
_SCORING_PROMPT = "Context:\n{text}\n\nQuestion: {query}\nAnswer:"


@dataclass(frozen=True)
class Answer:
    """A predictor's answer and what it cost.

    Attributes:
        prediction: The answer text ("" when the call failed).
        prompt_tokens: Tokens the predictor read.
        completion_tokens: Tokens it wrote.
        wall_s: Seconds spent.
        perplexity: Perplexity of the gold answer given the text, when measured.
        error: The error, when the call failed.
    """

    prediction: str
    prompt_tokens: int
    completion_tokens: int
    wall_s: float
    perplexity: float | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


def _messages(text: str, query: str) -> list[ChatMessage]:
    body = text.replace("</context>", "</ context>")
    return [
        ChatMessage("system", _SYSTEM),
        ChatMessage("user", f"<context>\n{body}\n</context>\n\nQuestion: {query}"),
    ]


def _perplexity(engine: Scorer, text: str, query: str, answer: str) -> float | None:
    request = ScoreRequest(_SCORING_PROMPT.format(text=text, query=query), " " + answer)
    try:
        score = engine.score([request])[0]
    except IBMiddlewareError:
        return None
    if score.n_tokens == 0 or not math.isfinite(score.total):
        return None
    return math.exp(-score.total / score.n_tokens)


def answer_query(
    engine: Any, predictor: PredictorConfig, text: str, query: str, gold: str
) -> Answer:
    """Ask ``engine`` to answer ``query`` from ``text``; engine errors become a failed answer.

    Example:
        >>> from ib_middleware.testing import FakeCompressor
        >>> answer = answer_query(
        ...     FakeCompressor(default="$5M"), PredictorConfig(name="p"), "Revenue: $5M", "?", "$5M"
        ... )
        >>> answer.prediction, answer.perplexity
        ('$5M', None)
    """
    if not isinstance(engine, Generator):
        msg = f"predictor {predictor.name!r}: engine {predictor.engine.engine!r} cannot generate"
        raise IBMiddlewareError(msg)
    settings = GenerationSettings(temperature=0.0, max_tokens=predictor.max_tokens, seed=0)
    try:
        generation = engine.generate(_messages(text, query), settings)
    except IBMiddlewareError as error:
        return Answer("", 0, 0, 0.0, error=f"{type(error).__name__}: {error}")
    perplexity = None
    if predictor.answer_perplexity and isinstance(engine, Scorer) and gold.strip():
        perplexity = _perplexity(engine, text, query, gold)
    return Answer(
        prediction=generation.text.strip(),
        prompt_tokens=generation.prompt_tokens,
        completion_tokens=generation.completion_tokens,
        wall_s=generation.wall_s,
        perplexity=perplexity,
    )


def build_judge(config: JudgeConfig, engines: EngineCache) -> JudgeFn:
    """The judge a config names: a string judge from ``ib_middleware.lab.judges`` or an LLM judge.

    Example:
        >>> judge = build_judge(JudgeConfig(kind="numeric"), EngineCache())
        >>> judge("It was 1,577 million.", "$1577.00", "Capex?")
        True
    """
    if config.kind == "llm":
        from ib_middleware.lab.model_judges import LLMJudge  # noqa: PLC0415  # only when asked

        assert config.engine is not None  # checked by JudgeConfig
        generator = engines.get(config.engine)
        if not isinstance(generator, Generator):
            msg = f"judge engine {config.engine.engine!r} cannot generate"
            raise IBMiddlewareError(msg)
        return LLMJudge(generator)
    judge = get_judge(config.kind)
    return lambda prediction, answer, query: bool(judge(prediction, answer))

"""Every decision path of the stage, sync and async, with fakes; then with the real engines."""

from __future__ import annotations

import json

import pytest

from ib_middleware import EngineError
from ib_middleware.compressors import AbstractiveCompressor, ExtractiveCompressor
from ib_middleware.judging.online import ContrastivePMIEstimator, CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.judging.support import ContentSpan
from ib_middleware.stage import CompressionStage, ContextItem, StageResult
from ib_middleware.testing import FakeCompressor, FakeScorer

PAGE = "Capital expenditure was $1,577 million in 2018. " + "Other filler text here. " * 60
QUERY = "What was capital expenditure?"
# Scripted compressions state only what PAGE holds, so the support rule (on by default) lets
# them reach the scorer; the scorer grounds those opening with "Capex" and no others.
SUMMARY = "Capex was $1,577 million"
UNGROUNDED = "Other filler text here."


def grounded_scorer() -> FakeScorer:
    """Compressions starting with Capex are far likelier with the document than without."""

    def score(prompt: str, z: str) -> float:
        with_document = "Document:" in prompt
        return -1.0 if with_document and z.startswith("Capex") else -5.0

    return FakeScorer(score)


def make_stage(*replies, thresholds=(0.5, 0.5), scorer=None, **options):
    generators = [FakeCompressor(model_id=f"fake-{k}") for k in range(len(thresholds))]
    for index, reply in enumerate(replies):
        generators[index % len(generators)].enqueue(reply)
    rungs = [
        Rung(AbstractiveCompressor(g, window_tokens=5000), threshold_bits_per_token=t)
        for g, t in zip(generators, thresholds, strict=True)
    ]
    estimator = CXMIEstimator(scorer or grounded_scorer())
    return CompressionStage(rungs, estimator=estimator, token_budget=50, **options), generators


async def run_stage(stage, items, query, mode):
    if mode == "sync":
        return stage.run(items, query)
    return await stage.arun(items, query)


MODES = ["sync", "async"]


def without_timing(value):
    if isinstance(value, dict):
        timing = {"wall_s", "estimate_s", "started_unix_ns"}
        return {k: without_timing(v) for k, v in value.items() if k not in timing}
    if isinstance(value, list | tuple):
        return [without_timing(v) for v in value]
    return value


@pytest.mark.parametrize("mode", MODES)
async def test_passthrough_under_budget(mode):
    stage, generators = make_stage()
    [result] = await run_stage(stage, ["short tool output"], QUERY, mode)
    assert result.decision == "passthrough"
    assert result.text == "short tool output"
    assert result.rung is None
    assert "within the token budget" in result.reason
    assert generators[0].history == []


@pytest.mark.parametrize("mode", MODES)
async def test_accepted_at_rung_zero(mode):
    stage, generators = make_stage(SUMMARY)
    [result] = await run_stage(stage, [PAGE], QUERY, mode)
    assert result.decision == "accepted"
    assert result.rung == 0
    assert result.text == SUMMARY
    assert len(result.attempts) == 1
    assert result.attempts[0].estimate.bits_per_token > 0.5
    assert result.output_tokens < result.input_tokens
    assert result.compression_ratio > 1
    assert generators[1].history == []


@pytest.mark.parametrize("mode", MODES)
async def test_escalated_then_accepted(mode):
    stage, _ = make_stage(UNGROUNDED, SUMMARY)
    [result] = await run_stage(stage, [PAGE], QUERY, mode)
    assert result.decision == "accepted"
    assert result.rung == 1
    first, second = result.attempts
    assert not first.accepted
    assert "low bit efficiency" in first.reason
    assert second.accepted
    assert result.bits_per_token == second.estimate.bits_per_token


@pytest.mark.parametrize("mode", MODES)
async def test_fallback_on_low_estimates(mode):
    stage, _ = make_stage(UNGROUNDED, "Filler text here.")
    [result] = await run_stage(stage, [PAGE], QUERY, mode)
    assert result.decision == "fallback"
    assert result.text == PAGE
    assert result.output_tokens == result.input_tokens
    assert "no rung was good enough" in result.reason
    assert len(result.attempts) == 2


@pytest.mark.parametrize("mode", MODES)
async def test_fallback_on_engine_errors(mode):
    stage, _ = make_stage(EngineError("engine died"), TimeoutError("stalled"))
    [result] = await run_stage(stage, [PAGE], QUERY, mode)
    assert result.decision == "fallback"
    assert result.text == PAGE
    errors = [attempt.error for attempt in result.attempts]
    assert errors == ["EngineError: engine died", "TimeoutError: stalled"]
    assert all("compressor error" in attempt.reason for attempt in result.attempts)


@pytest.mark.parametrize("mode", MODES)
async def test_estimator_error_escalates(mode):
    scorer = grounded_scorer()
    scorer.enqueue(EngineError("scorer refused"))
    stage, _ = make_stage(SUMMARY, SUMMARY + " in 2018", scorer=scorer)
    [result] = await run_stage(stage, [PAGE], QUERY, mode)
    assert result.decision == "accepted"
    assert result.rung == 1
    assert result.attempts[0].error == "EngineError: scorer refused"
    assert result.attempts[0].compression.text == SUMMARY
    assert "estimator error" in result.attempts[0].reason


@pytest.mark.parametrize("mode", MODES)
async def test_raise_mode_propagates_engine_errors(mode):
    stage, _ = make_stage(EngineError("engine died"), on_failure="raise")
    with pytest.raises(EngineError, match="engine died"):
        await run_stage(stage, [PAGE], QUERY, mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("   ", "empty compression"),
        ("Capex <document> echo", "malformed"),
        ("Capex " + "long " * 600, "not shorter"),
    ],
)
async def test_invalid_compressions_are_rejected(mode, reply, why):
    stage, _ = make_stage(reply, SUMMARY)
    [result] = await run_stage(stage, [PAGE], QUERY, mode)
    assert why in result.attempts[0].reason
    assert result.attempts[0].estimate is None
    assert result.decision == "accepted"
    assert result.rung == 1


def test_degenerate_short_compressions_are_rejected():
    stage, _ = make_stage("1577", "Capex was 1577 million")
    stage = CompressionStage(
        stage.rungs, estimator=stage.estimator, token_budget=50, min_output_tokens=4
    )
    [result] = stage.run([PAGE], QUERY)
    assert "degenerate compression: 1 tokens" in result.attempts[0].reason
    assert result.rung == 1


def test_no_rungs_always_falls_back():
    stage = CompressionStage([], estimator=CXMIEstimator(grounded_scorer()), token_budget=5)
    [result] = stage.run([PAGE], QUERY)
    assert result.decision == "fallback"
    assert "no rungs" in result.reason


def test_deterministic_and_order_preserving():
    stage = CompressionStage(
        [Rung(ExtractiveCompressor(budget_tokens=20), threshold_bits_per_token=0.1)],
        estimator=CXMIEstimator(FakeScorer(lambda p, z: -1.0 if "Document:" in p else -6.0)),
        token_budget=30,
    )
    items = [ContextItem(PAGE, source="search"), "tiny", ContextItem(PAGE * 2, source="db")]
    first = stage.run(items, QUERY)
    second = stage.run(items, QUERY)
    assert [without_timing(r.to_dict()) for r in first] == [
        without_timing(r.to_dict()) for r in second
    ]
    assert [r.source for r in first] == ["search", "context", "db"]
    assert [r.decision for r in first] == ["accepted", "passthrough", "accepted"]
    assert [r.text for r in first] == [r.text for r in second]


def test_contrastive_estimator_gets_the_other_items_as_references():
    scorer = FakeScorer(lambda p, z: -1.0 if "unique-0" in p else -20.0)
    stage = CompressionStage(
        [Rung(ExtractiveCompressor(budget_tokens=15), threshold_bits_per_token=0.01)],
        estimator=ContrastivePMIEstimator(scorer, reservoir_size=0),
        token_budget=10,
    )
    pages = [f"Fact unique-{k} is stated here. " + "Padding words. " * 30 for k in range(3)]
    results = stage.run(pages, "What is the fact?")
    estimate = results[0].attempts[0].estimate
    assert estimate.reference_count == 2
    assert estimate.estimator == "contrastive_pmi"


def test_result_dict_can_leave_out_all_text():
    stage, _ = make_stage(SUMMARY)
    [result] = stage.run([PAGE], QUERY)
    data = result.to_dict(include_text=False)
    assert "text" not in data
    assert "text" not in data["attempts"][0]["compression"]
    assert data["decision"] == "accepted"
    assert isinstance(result, StageResult)


# --- the support rule: every figure and name must be the page's, on the page's row -----------

TABLE = (
    "Cash flows (Millions)\n2018\n2017\nCapex\n1,577\n1,373\nDividends\n3,193\n2,803\n"
    + "Other filler text here. " * 60
)
INVENTED = "Capex was $1,823 million"  # no such figure on PAGE


@pytest.mark.parametrize("mode", MODES)
async def test_absent_figure_is_rejected_and_the_ladder_escalates(mode):
    scorer = grounded_scorer()
    stage, _ = make_stage(INVENTED, SUMMARY, scorer=scorer)
    [result] = await run_stage(stage, [PAGE], QUERY, mode)
    first, second = result.attempts
    assert not first.accepted
    assert first.reason == "rejected: unsupported content: unsupported figure at characters 10-24"
    assert first.unsupported == (ContentSpan("unsupported figure", 10, 24, "$1,823 million"),)
    assert first.compression.text == INVENTED
    assert first.estimate is None
    assert not any("1,823" in r.prompt + r.continuation for r in scorer.history), "it was scored"
    assert second.accepted
    assert second.unsupported == ()
    assert (result.decision, result.rung, result.text) == ("accepted", 1, SUMMARY)


@pytest.mark.parametrize("mode", MODES)
async def test_name_neither_page_nor_query_holds_is_rejected(mode):
    stage, _ = make_stage("Capex of Acme was $1,577 million", SUMMARY)
    [result] = await run_stage(stage, [PAGE], QUERY, mode)
    first, _ = result.attempts
    assert first.reason == "rejected: unsupported content: unknown name at characters 9-13"
    assert first.unsupported == (ContentSpan("unknown name", 9, 13, "Acme"),)
    assert result.rung == 1


@pytest.mark.parametrize("mode", MODES)
async def test_figure_from_another_row_is_rejected_as_misplaced(mode):
    # 3,193 is on the page, but in the Dividends row: a swapped row.
    stage, _ = make_stage("Capex 3,193 1,373", "Capex 1,577 1,373")
    [result] = await run_stage(stage, [TABLE], QUERY, mode)
    first, second = result.attempts
    assert first.reason == "rejected: unsupported content: wrong row at characters 6-11"
    assert first.unsupported == (ContentSpan("wrong row", 6, 11, "3,193"),)
    assert first.estimate is None
    assert second.accepted
    assert (result.decision, result.rung, result.text) == ("accepted", 1, "Capex 1,577 1,373")


@pytest.mark.parametrize("mode", MODES)
async def test_supported_compression_passes_the_rule(mode):
    # The page's 1,577 (million) rounded as written, and a name the query (not the page) holds.
    reply = "Capex of 3M was $1.6 billion in 2018"
    stage, _ = make_stage(reply, thresholds=(0.5,))
    [result] = await run_stage(stage, [PAGE], "What was 3M's capital expenditure?", mode)
    assert (result.decision, result.rung, result.text) == ("accepted", 0, reply)
    assert result.attempts[0].unsupported == ()
    assert result.attempts[0].estimate is not None


@pytest.mark.parametrize("mode", MODES)
async def test_the_rule_can_be_turned_off(mode):
    stage, _ = make_stage(INVENTED, thresholds=(0.5,), reject_unsupported_figures=False)
    assert not stage.reject_unsupported_figures
    [result] = await run_stage(stage, [PAGE], QUERY, mode)
    assert (result.decision, result.rung, result.text) == ("accepted", 0, INVENTED)
    assert result.attempts[0].unsupported == ()
    assert result.attempts[0].estimate is not None


def test_result_dict_without_text_keeps_only_the_positions_of_unsupported_spans():
    stage, _ = make_stage(INVENTED, SUMMARY)
    [result] = stage.run([PAGE], QUERY)
    with_text = result.to_dict()["attempts"][0]["unsupported"]
    assert list(with_text) == [
        {"kind": "unsupported figure", "start": 10, "end": 24, "text": "$1,823 million"}
    ]
    data = result.to_dict(include_text=False)
    assert list(data["attempts"][0]["unsupported"]) == [
        {"kind": "unsupported figure", "start": 10, "end": 24}
    ]
    assert not data["attempts"][1]["unsupported"]
    assert "1,823" not in json.dumps(data)


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="on_failure"):
        CompressionStage([], estimator=CXMIEstimator(grounded_scorer()), on_failure="ignore")
    with pytest.raises(ValueError, match="token_budget"):
        CompressionStage([], estimator=CXMIEstimator(grounded_scorer()), token_budget=-1)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_real_embedded_ladder_on_financebench(smollm2_engine, gemma_engine):
    from ib_middleware.lab.data import load_financebench

    case = load_financebench()[0]
    stage = CompressionStage(
        [
            Rung(AbstractiveCompressor(smollm2_engine, max_tokens=96), 0.05, name="smollm2"),
            Rung(ExtractiveCompressor(budget_tokens=120, token_counter=gemma_engine), 0.05),
        ],
        estimator=CXMIEstimator(gemma_engine),
        token_budget=256,
    )
    [result] = stage.run([case.context], case.query)
    assert result.decision in {"accepted", "fallback"}
    assert result.input_tokens > 256
    for attempt in result.attempts:
        assert attempt.error is None
        if attempt.estimate is not None:
            assert attempt.estimate.scorer_model == "gemma-3-270m"
            assert attempt.estimate.n_tokens > 0
    if result.decision == "accepted":
        assert result.output_tokens < result.input_tokens
        assert result.text.strip()
    else:
        assert result.text == case.context


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_real_ladder_async_matches_sync(smollm2_engine, gemma_engine):
    case_text = "Net sales were $32.8 billion in 2018. " + "The board met twice. " * 40
    stage = CompressionStage(
        [Rung(AbstractiveCompressor(smollm2_engine, max_tokens=48), 0.05)],
        estimator=CXMIEstimator(gemma_engine),
        token_budget=64,
    )
    [sync] = stage.run([case_text], "What were net sales?")
    [asynchronous] = await stage.arun([case_text], "What were net sales?")
    assert sync.decision == asynchronous.decision
    assert sync.text == asynchronous.text
    assert sync.attempts[0].estimate.nats == pytest.approx(asynchronous.attempts[0].estimate.nats)


class RecordingObserver:
    def __init__(self, explode: bool = False):
        self.events: list[tuple[str, object]] = []
        self.explode = explode

    def run_started(self, query, items):
        self.events.append(("started", (query, len(items))))
        if self.explode:
            raise RuntimeError("observer bug")
        return "handle"

    def run_finished(self, handle, results):
        self.events.append(("finished", (handle, [r.decision for r in results])))
        if self.explode:
            raise RuntimeError("observer bug")

    def run_failed(self, handle, error):
        self.events.append(("failed", (handle, type(error).__name__)))
        if self.explode:
            raise RuntimeError("observer bug")


@pytest.mark.parametrize("mode", MODES)
async def test_observers_see_every_invocation_and_cannot_break_it(mode):
    good, bad = RecordingObserver(), RecordingObserver(explode=True)
    stage, _ = make_stage(SUMMARY)
    stage = CompressionStage(
        stage.rungs, estimator=stage.estimator, token_budget=50, observers=[bad, good]
    )
    results = await run_stage(stage, [PAGE, "tiny"], QUERY, mode)
    assert [r.decision for r in results] == ["accepted", "passthrough"]
    assert good.events == [
        ("started", (QUERY, 2)),
        ("finished", ("handle", ["accepted", "passthrough"])),
    ]
    assert bad.events[0][0] == "started"  # it raised there, so it is not called again
    assert results[0].started_unix_ns > 0
    assert results[0].attempts[0].estimate_s >= 0.0


@pytest.mark.parametrize("mode", MODES)
async def test_observers_hear_about_failures(mode):
    observer = RecordingObserver()
    stage, _ = make_stage(EngineError("engine died"), on_failure="raise")
    stage = CompressionStage(
        stage.rungs,
        estimator=stage.estimator,
        token_budget=50,
        on_failure="raise",
        observers=[observer],
    )
    with pytest.raises(EngineError):
        await run_stage(stage, [PAGE], QUERY, mode)
    assert observer.events[-1] == ("failed", ("handle", "EngineError"))

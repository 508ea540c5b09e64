"""The side-by-side benchmarks' own logic, on fakes (no model is loaded)."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from langchain_core.language_models.fake_chat_models import FakeListChatModel

from ib_middleware.compressors import ApproximateTokenCounter, ExtractiveCompressor
from ib_middleware.judging.online import CXMIEstimator
from ib_middleware.judging.routing import Rung
from ib_middleware.stage import CompressionStage
from ib_middleware.testing import FakeScorer

BENCH = Path(__file__).resolve().parents[1] / "bench"
PAGE = "Capital expenditure was $1,577 million in 2018. " + "Unrelated filler text. " * 120
QUERY = "What was capital expenditure in 2018?"


def _load(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))  # the scripts share bench/_sampling.py, as when run
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class _Case:
    context: str
    query: str
    answer: str
    case_id: str
    needs_evidence: bool = True


def _stage() -> CompressionStage:
    return CompressionStage(
        [Rung(ExtractiveCompressor(budget_tokens=30), threshold_bits_per_token=0.1)],
        estimator=CXMIEstimator(FakeScorer(lambda p, z: -1.0 if "Document" in p else -9.0)),
        token_budget=64,
    )


def test_spread_sample_is_seeded_spread_and_distinct() -> None:
    peers = _load("peers")
    picks = peers.spread_sample(100, 5, seed=3)
    assert picks == peers.spread_sample(100, 5, seed=3)
    assert len(set(picks)) == 5
    assert [pick // 20 for pick in picks] == [0, 1, 2, 3, 4]
    assert peers.spread_sample(3, 10, seed=0) == [0, 1, 2]


def test_truncate_tokens_fits_the_budget() -> None:
    peers = _load("peers")
    counter = ApproximateTokenCounter()
    cut = peers.truncate_tokens(counter, PAGE, 20)
    assert counter.count_tokens(cut) <= 20 < counter.count_tokens(PAGE)
    assert PAGE.startswith(cut)
    assert peers.truncate_tokens(counter, "short", 20) == "short"


def test_bootstrap_mean_brackets_the_share() -> None:
    peers = _load("peers")
    share, low, high = peers.bootstrap_mean([1.0, 0.0, 1.0, 1.0], seed=0)
    assert share == 0.75
    assert low <= share <= high
    assert peers.bootstrap_mean([]) == (None, None, None)


def test_peers_runs_every_arm_through_a_real_agent() -> None:
    peers = _load("peers")
    stage = _stage()
    summarizer = FakeListChatModel(responses=["Capex was $1,577 million."])
    arm = peers.SummarizationArm(summarizer, trigger_tokens=stage.token_budget)
    cases = [
        _Case(PAGE, QUERY, "$1577.00", "a"),
        _Case("Filler. " * 200, QUERY, "$1577.00", "b", needs_evidence=False),
    ]
    rows = peers.evaluate(cases, stage, arm)
    assert all(row["summarized"] for row in rows)
    assert rows[0]["summarization"]["contained"]
    assert rows[0]["read_before_summary_tokens"] == rows[0]["raw_tokens"]
    summary = peers.summarize(rows)
    assert summary["n_cases"] == 2
    assert summary["n_needing_evidence"] == 1
    assert summary["arms"]["none"]["forwarded_fraction"] == 1.0
    assert summary["arms"]["summarization"]["summarizer_ran"] == 2
    assert (
        summary["arms"]["truncation"]["forwarded_tokens"]
        == (summary["arms"]["ib_stage"]["forwarded_tokens"])
    )
    assert set(summary["ib_stage_versus"]) == {"none", "summarization", "truncation"}
    assert "SummarizationMiddleware" in peers.table(summary)


def test_stage_latency_groups_by_decision() -> None:
    latency = _load("stage_latency")
    stage = _stage()
    prefilled: list[str] = []
    pages = [(PAGE, QUERY), ("Short page.", QUERY)]
    rows = latency.measure(pages, stage, prefilled.append)
    assert prefilled == [PAGE, "Short page."]
    summary = latency.summarize(rows)
    assert summary["n_pages"] == 2
    assert set(summary["by_decision"]) == {row["decision"] for row in rows}
    assert "passthrough" in summary["by_decision"]
    assert "passthrough, not scored" in summary["by_path"]
    assert summary["all"]["n"] == 2
    assert "decision" in latency.table(summary)


def test_calibration_frontier_replays_a_table_at_a_target() -> None:
    from ib_middleware.lab.calibration import CaseRecord, RungOutcome

    frontier = _load("calibration_frontier")
    records = [
        CaseRecord(
            f"c{index}",
            100,
            True,
            (RungOutcome(index / 10, index > 4, 10, None, 0.5),),
            group=f"g{index}",
        )
        for index in range(10)
    ]
    row = frontier.frontier_row(records, 0.0, bootstrap=0)
    assert row["target_distortion"] == 0.0
    assert row["gate"] is None, "no case is a distractor: nothing to prune"
    # Held out, a fold's threshold is fitted without it: the figures are not in-sample ones.
    assert 0.0 <= row["distortion"] <= 0.2
    assert 0.0 < row["forwarded_fraction"] <= 1.0


def test_support_cases_reports_every_kind_and_the_named_kinds() -> None:
    from ib_middleware.lab.data import load_support_cases

    bench = _load("support_cases")
    cases = load_support_cases()
    # A check that rejects every wrong case and names the expected kind for wrong rows only.
    spans = {
        case.compression: [_Span("wrong row" if case.kind == "wrong_row" else "figure")]
        for case in cases
        if case.expected == "reject"
    }
    summary = bench.summarize(bench.run(cases, lambda z, x, q: spans.get(z, [])))
    assert summary["n_cases"] == len(cases)
    assert summary["faithful_passed"] == summary["wrong_rejected"] == 1.0
    assert summary["by_kind"]["wrong_row"]["kind_as_expected"] == 1.0
    assert summary["by_kind"]["year_swap"]["kind_as_expected"] == 0.0
    assert summary["by_kind"]["paraphrase"]["kind_as_expected"] is None
    assert "wrong_derived" in bench.table(summary)


@dataclass(frozen=True)
class _Span:
    kind: str


def test_selection_containment_scores_each_arm_on_a_workload() -> None:
    from ib_middleware.lab.workloads import search_result_cases

    bench = _load("selection_containment")
    cases = search_result_cases("page")[:2]
    full, sent = bench.containment(cases, lambda context, query: context)
    assert (full, sent) == (1.0, 1.0)
    nothing, none_sent = bench.containment(cases, lambda context, query: "")
    assert (nothing, none_sent) == (0.0, 0.0)
    kept, share = bench.containment(cases, bench.selector(bench.arms()["all"], 0.5))
    assert 0.0 <= kept <= 1.0
    assert 0.0 < share <= 0.5
    results = {"search_page": {"all": {"0.10": {"containment": kept, "forwarded": share}}}}
    results["search_page"]["all"].update({"0.25": results["search_page"]["all"]["0.10"]})
    results["search_page"]["all"].update({"0.50": results["search_page"]["all"]["0.10"]})
    assert bench.markdown(results).splitlines()[2].startswith("| all |")


def test_savings_runs_every_arm_on_a_unit_of_search_results() -> None:
    from ib_middleware.lab.workloads import search_result_cases

    savings = _load("savings")
    stage = _stage()
    items = search_result_cases("items")[:10]
    unit = savings.Unit("search_items", items[0].query, tuple(items))
    row = savings.run_unit(unit, stage, None)
    assert len(row["decisions"]) == 10
    assert set(row["arms"]) == {"stage", "none", "bm25", "truncation", "rung:extractive-30"}
    assert row["arms"]["none"]["contained"] is True
    assert row["arms"]["none"]["tokens"] == row["raw_tokens"]
    summary = savings.summarize_workload([row])
    assert summary["arms"]["none"]["forwarded_fraction"] == 1.0
    assert summary["arms"]["none"]["containment"] == 1.0
    timed = savings.latency([row], lambda text: 0.5)
    assert timed["n_items"] == min(len(row["worked_items"]), savings.LATENCY_ITEMS)
    assert timed["median_prefill_s"] == 0.5
    assert savings.guarantee(None, "search_items") is None
    assert "search_items" in savings.table({"search_items": summary})

"""The ``calibrate`` command: measure (or replay) a table, then fit a policy with its guarantee.

One command, three sources: ``--workloads search,filings`` (the bundled workloads,
``ib_middleware.lab.workloads``), ``--data`` (a labelled JSON Lines file, ``financebench`` or
``evidence``) or ``--replay table.jsonl`` (a measured table, no model run). A distortion
target (``--target-distortion``, alpha by default) gets calibration v3 (``procedure``: nested
cross-validation, the Learn-then-Test guarantee at ``--alpha`` / ``--delta``); a fallback
target (``--target-fallback``) gets the version-2 fit, which carries no guarantee.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import MofNCompleteColumn, Progress

from ib_middleware.build import build_stage, fitted_for
from ib_middleware.config import StageConfig
from ib_middleware.lab._cli_support import clean_errors, data_path, emit, fmt
from ib_middleware.lab._cli_support import err as err_console
from ib_middleware.lab._cli_support import out as console
from ib_middleware.lab.calibration.fitting import build_policy, summarise_rungs
from ib_middleware.lab.calibration.measure import judgeable, measure, save_records
from ib_middleware.lab.calibration.nested import Settings
from ib_middleware.lab.calibration.procedure import certified_policy
from ib_middleware.lab.calibration.records import load_meta, load_records
from ib_middleware.lab.calibration.simulation import CaseRecord
from ib_middleware.lab.calibration.summary import print_certified, print_report
from ib_middleware.lab.data import financebench_path
from ib_middleware.lab.data.cases import LabelledCase, load_cases
from ib_middleware.lab.filing_labels import containment_cases
from ib_middleware.lab.judges import get_judge
from ib_middleware.lab.workloads import filing_page_cases, search_result_cases
from ib_middleware.policy import FittedFor

__all__ = ["WORKLOADS", "calibrate_command", "register_calibrate_command", "workload_cases"]

WORKLOADS = {"search": "search_results", "filings": "filing_pages"}
"""Workload names the command takes, and the workload each stands for."""


def workload_cases(names: str) -> list[LabelledCase]:
    """The cases of comma-separated workloads (``search``, ``filings`` or their full names).

    ``search``: the HotpotQA sample as a results page and as ten items (a search tool's JSON
    reaches the stage as its results, one item each, through the LangGraph adapters, so it is
    the items shape); ``filings``: the FinanceBench sample's pages, windows and other filings'
    pages.

    Example:
        >>> cases = workload_cases("filings")
        >>> cases[0].workload, len(cases) > 100
        ('filing_pages', True)
    """
    out: list[Any] = []
    for raw in (part.strip() for part in names.split(",")):
        name = WORKLOADS.get(raw, raw)
        if name == "search_results":
            out += [c for shape in ("page", "items") for c in search_result_cases(shape)]
        elif name == "filing_pages":
            out += filing_page_cases()
        else:
            known = ", ".join(WORKLOADS)
            msg = f"unknown workload {raw!r} (known: {known})"
            raise ValueError(msg)
    return out


def _cases(data: str | None, workloads: str | None) -> list[LabelledCase]:
    if workloads:
        return workload_cases(workloads)
    assert data is not None  # one source is given, checked by the caller
    return (
        containment_cases(financebench_path())
        if data == "evidence"
        else load_cases(data_path(data))
    )


def _reproduce(parts: list[str], options: dict[str, Any]) -> str:
    for flag, value in options.items():
        if value is True:
            parts.append(flag)
        elif value is not None and value is not False:
            parts += [flag, str(value)]
    return shlex.join(parts)


def _prune_grid(config: StageConfig) -> list[float | None] | None:
    """The gate thresholds to try: none when the stage's gate is off, its own when it sets one."""
    if not config.relevance_gate:
        return [None]
    return None if config.prune_below is None else [config.prune_below]


def _progress() -> Progress:
    return Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=err_console)


def _measure(
    config: StageConfig, cases: list[LabelledCase], judge: str, table: Path | None
) -> tuple[list[CaseRecord], FittedFor, list[str]]:
    """Run every rung on every case with the configured stage (its thresholds do not matter).

    With a table path, each case is appended to ``<table>.partial`` as it is measured; a run
    that finds that file, written for the same stage, reuses its cases (an interrupted
    measurement resumes) and removes it when the table is complete.
    """
    stage = build_stage(config.model_copy(update={"policy": None}))
    scorer = getattr(stage.estimator, "scorer", None)
    fitted = fitted_for(config, scorer)
    meta = {"meta": {"fitted_for": fitted.model_dump(mode="json")}}
    partial = table.with_name(f"{table.name}.partial") if table is not None else None
    done: dict[str, CaseRecord] = {}
    if partial is not None and partial.exists() and load_meta(partial) == meta["meta"]:
        done = {record.case_id: record for record in load_records(partial)}
        err_console.print(f"resuming: {len(done)} cases already measured in {partial}")
    elif partial is not None:
        partial.write_text(json.dumps(meta) + "\n", encoding="utf-8")
    label = get_judge(judge)
    with _progress() as bar:
        task = bar.add_task("measuring", total=len(cases))

        def advance(index: int, record: CaseRecord) -> None:
            bar.advance(task)
            if partial is not None and record.case_id not in done:
                with partial.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(asdict(record)) + "\n")
            if not err_console.is_terminal:  # a log file gets a line per case, not a bar
                bits = " ".join(fmt(o.bits_per_token) for o in record.rungs)
                err_console.print(
                    f"case {index + 1}/{len(cases)} {escape(record.case_id)}: signal {bits}"
                )

        measured = measure(stage, cases, label, on_case=advance, done=done)
    return measured, fitted, [rung.label for rung in stage.rungs]


def calibrate_command(  # noqa: PLR0915  # two fits of one command, read top to bottom
    *,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            "-d",
            help="Labelled JSON Lines, `financebench` (the bundled sample) or `evidence`.",
        ),
    ] = None,
    workloads: Annotated[
        str | None,
        typer.Option(help="Bundled workloads, comma-separated: search, filings."),
    ] = None,
    replay: Annotated[
        Path | None, typer.Option(help="Fit on a measured table (--records) with no model run.")
    ] = None,
    target_distortion: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Held-out distortion per workload (default: alpha)."),
    ] = None,
    target_fallback: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Wanted fallback rate (version-2 fit, no guarantee)."),
    ] = None,
    alpha: Annotated[float, typer.Option(min=0.0, max=1.0, help="Guarantee: loss level.")] = 0.05,
    delta: Annotated[float, typer.Option(min=0.0, max=1.0, help="Guarantee: error rate.")] = 0.1,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the policy here.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Use the first N usable cases.")] = None,
    judge: Annotated[str, typer.Option(help="Labels: facts, contains, numeric, ...")] = "facts",
    grid_points: Annotated[int, typer.Option(min=2, help="Version 2: quantiles tried.")] = 21,
    folds: Annotated[int, typer.Option(min=0, help="Outer cross-validation folds.")] = 5,
    inner_folds: Annotated[int, typer.Option(min=2, help="Inner folds (choices).")] = 4,
    seeds: Annotated[int, typer.Option(min=1, help="Fold seeds for the spread.")] = 20,
    bootstrap: Annotated[int, typer.Option(min=0, help="Group resamples (95% CI).")] = 2000,
    keep_uncontained: Annotated[
        bool, typer.Option(help="Keep cases whose raw context lacks the answer.")
    ] = False,
    records: Annotated[
        Path | None,
        typer.Option(help="Write the measured table here (default: beside --out)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Stage config (.yaml, .yml or .toml).")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object as the last line of stdout.")
    ] = False,
) -> None:
    """Fit the ladder's threshold and relevance gate, with a guarantee, as a policy."""
    started = time.perf_counter()
    with clean_errors(json_output):
        given = [(f, str(v)) for f, v in (("--data", data), ("--workloads", workloads),
                                          ("--replay", replay)) if v]  # fmt: skip
        if len(given) != 1:
            msg = "give exactly one of --data, --workloads and --replay"
            raise ValueError(msg)
        targets = [t for t in (target_distortion, target_fallback) if t is not None]
        if len(targets) > 1 or (data and not targets):
            msg = "give exactly one of --target-distortion and --target-fallback"
            raise ValueError(msg)
        get_judge(judge)  # an unknown judge fails before any model loads
        stage_config = StageConfig.load(config)
        beside = out.with_name(f"{out.stem}.records.jsonl") if out and not replay else None
        table_path = records or beside
        measured, fitted, names, judge, loaded = _source(
            stage_config,
            data=data,
            workloads=workloads,
            replay=replay,
            judge=judge,
            limit=limit,
            keep_uncontained=keep_uncontained,
            table=table_path,
        )
        options: dict[str, Any] = {
            "--limit": limit,
            "--judge": judge if judge != "facts" else None,
            "--folds": folds if folds != 5 else None,
            "--bootstrap": bootstrap if bootstrap != 2000 else None,
            "--keep-uncontained": keep_uncontained,
            "--config": config,
        }
        parts = ["ib-middleware", "calibrate", *given[0]]
        selection = None
        if target_fallback is not None:
            options["--grid-points"] = grid_points if grid_points != 21 else None
            parts += ["--target-fallback", f"{target_fallback:g}"]
            policy, selection = build_policy(
                measured,
                rung_names=names,
                estimator=fitted.estimator,
                scorer=fitted.scorer,
                judge=judge,
                target_kind="fallback",
                target_value=target_fallback,
                grid_points=grid_points,
                reproduce=_reproduce(parts, {**options, "--out": out}),
                folds=folds,
                bootstrap=bootstrap,
                prune_grid=_prune_grid(stage_config),
            )
            thresholds, gate = selection.point.thresholds, selection.point.prune_below
            target_met, note = selection.target_met, selection.note
        else:
            target = alpha if target_distortion is None else target_distortion
            if target_distortion is not None:
                parts += ["--target-distortion", f"{target:g}"]
            options |= {
                "--alpha": f"{alpha:g}" if alpha != 0.05 or workloads else None,
                "--delta": f"{delta:g}" if delta != 0.1 or workloads else None,
                "--inner-folds": inner_folds if inner_folds != 4 else None,
                "--seeds": seeds if seeds != 20 else None,
                "--out": out,
            }
            settings = Settings(
                target=target,
                alpha=alpha,
                delta=delta,
                outer_folds=folds,
                inner_folds=inner_folds,
                gate=stage_config.relevance_gate,
            )
            policy = certified_policy(
                measured,
                rung_names=names,
                fitted_for=fitted,
                judge=judge,
                settings=settings,
                seeds=seeds,
                bootstrap=bootstrap,
                reproduce=_reproduce(parts, options),
                records_file=_relative(table_path, out),
            )
            thresholds = [rung.threshold_bits_per_token for rung in policy.rungs]
            gate = policy.prune_below
            target_met, note = _shipped_note(policy.evaluation["shipped"])
        if out is not None:
            policy.save(out)
        if table_path is not None and replay is None:
            meta = {"fitted_for": fitted.model_dump(mode="json"), "rung_names": names}
            save_records(table_path, measured, meta={**meta, "judge": judge})
            table_path.with_name(f"{table_path.name}.partial").unlink(missing_ok=True)
    summaries = summarise_rungs(measured, names, thresholds, prune_below=gate)
    fallback_accuracy = sum(r.fallback_correct for r in measured) / len(measured)
    wall_s = time.perf_counter() - started
    payload = {
        "policy": policy.model_dump(mode="json"),
        "out": str(out) if out else None,
        "records": str(table_path) if table_path else None,
        "target_met": target_met,
        "note": note,
        "prune_below": gate,
        "folds": policy.folds,
        "evaluation": policy.evaluation,
        "cases_loaded": loaded,
        "n_cases": len(measured),
        "fallback_accuracy": fallback_accuracy,
        "rungs": [asdict(summary) for summary in summaries],
        "wall_s": wall_s,
    }
    if json_output:
        emit(payload)
    elif selection is not None:
        print_report(policy, selection, summaries, loaded, fallback_accuracy)
    else:
        print_certified(policy, summaries, note, target_met)
    if not json_output:
        where = f"; policy written to {out}" if out is not None else ""
        console.print(f"took {wall_s / 60:.1f} min{where}", highlight=False)


def _shipped_note(shipped: dict[str, Any]) -> tuple[bool, str]:
    """Whether the fitting target was met, and the note on the shipped choice."""
    note = str(shipped["note"])
    if shipped["target_met"]:
        return True, note
    return False, (
        f"no operating point reaches distortion <= {shipped['fit_target']:g} on every "
        f"workload; the least distortion measured was chosen. {note}"
    )


def _source(
    config: StageConfig,
    *,
    data: str | None,
    workloads: str | None,
    replay: Path | None,
    judge: str,
    limit: int | None,
    keep_uncontained: bool,
    table: Path | None,
) -> tuple[list[CaseRecord], FittedFor, list[str], str, int]:
    """The measured table, what it was measured with, the rung names, the judge, cases loaded."""
    if replay is not None:
        measured = load_records(replay)
        meta = load_meta(replay)
        if "fitted_for" not in meta:
            msg = f"{replay} records no `meta` line (what it was measured with): re-measure it"
            raise ValueError(msg)
        fitted = FittedFor.model_validate(meta["fitted_for"])
        return measured, fitted, list(meta["rung_names"]), str(meta.get("judge", judge)), 0
    loaded = _cases(data, workloads)
    cases = loaded if keep_uncontained else judgeable(loaded, get_judge(judge))
    cases = cases[:limit] if limit else cases
    if not cases:
        msg = f"none of the {len(loaded)} cases has its answer in its context ({judge} judge)"
        raise ValueError(msg)
    measured, fitted, names = _measure(config, cases, judge, table)
    return measured, fitted, names, judge, len(loaded)


def _relative(path: Path | None, out: Path | None) -> str | None:
    """The table's name as the policy records it: beside the policy, its file name."""
    if path is None:
        return None
    if out is not None and path.resolve().parent == out.resolve().parent:
        return path.name
    return str(path)


def register_calibrate_command(app: typer.Typer) -> None:
    """Add the ``calibrate`` command to a typer app.

    Example:
        >>> app = typer.Typer()
        >>> register_calibrate_command(app)
        >>> [command.name for command in app.registered_commands]
        ['calibrate']
    """
    app.command(name="calibrate")(calibrate_command)

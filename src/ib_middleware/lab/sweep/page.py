"""The sweep's report.html: one self-contained page in the telemetry report's style."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ib_middleware.lab._html import escape as _e
from ib_middleware.lab._html import html_page

__all__ = ["render_sweep_page"]


def _n(value: Any, spec: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:{spec}}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "\n".join(
        "<tr>" + "".join(f'<td class="num">{_e(v)}</td>' for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


def _cell_rows(cells: Sequence[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            c["compressor"],
            c["predictor"],
            str(c["seed"]),
            _n(c["accuracy"], ".0%"),
            _n(c["full_context_accuracy"], ".0%"),
            _n(c["containment"], ".0%"),
            _n(c["mean_output_tokens"], ".0f"),
            f"{_n(c['mi_bits'], '.2f')} [{_n(c['mi_ci_bits'][0], '.2f')}, "
            f"{_n(c['mi_ci_bits'][1], '.2f')}]" + (" sat." if c["saturated"] else ""),
            _n(c["bits_per_token"], ".4f"),
            _n(c["perplexity"], ".1f"),
            _n(c["compressor_flops"], ".2e"),
            _n(c["predictor_cost"], ".5f"),
            _n(c["full_cost"], ".5f"),
            f"{c['failures']} / {c['empty']}",
        ]
        for c in cells
    ]


def _correlation_rows(analyses: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for predictor, analysis in analyses.items():
        for name, value in analysis["correlations"].items():
            if "error" in value:
                rows.append([predictor, name, "-", "-", "-", "-", value["error"]])
                continue
            ci = value["pearson_ci"]
            rows.append(
                [
                    predictor,
                    name,
                    _n(value["pearson_r"]),
                    f"[{_n(ci[0], '.2f')}, {_n(ci[1], '.2f')}]",
                    _n(value["spearman_rho"]),
                    str(value["n"]),
                    "",
                ]
            )
    return rows


def _fit_rows(analyses: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for predictor, analysis in analyses.items():
        fit = analysis["rate_distortion"]
        if "error" in fit:
            rows.append([predictor, "-", "-", "-", "-", "-", fit["error"]])
            continue
        rows.append(
            [
                predictor,
                f"{_n(fit['c'])} ± {_n(fit['c_se'])}",
                f"{_n(fit['b'])} ± {_n(fit['b_se'])}",
                f"{_n(fit['d0'])} ± {_n(fit['d0_se'])}",
                _n(fit["r_squared"]),
                str(fit["n_points"]),
                "",
            ]
        )
    return rows


def _routing_rows(analyses: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for predictor, analysis in analyses.items():
        for compressor, curve in analysis["routing"].items():
            if "error" in curve:
                rows.append([predictor, compressor, "-", "-", "-", "-", curve["error"]])
                continue
            low_r, high_r = curve["gain_vs_random_ci"]
            low_l, high_l = curve["gain_vs_length_ci"]
            rows.append(
                [
                    predictor,
                    compressor,
                    _n(curve["compressed_accuracy"], ".0%"),
                    _n(curve["full_accuracy"], ".0%"),
                    f"{_n(curve['gain_vs_random'], '+.3f')} [{low_r:+.3f}, {high_r:+.3f}]",
                    f"{_n(curve['gain_vs_length'], '+.3f')} [{low_l:+.3f}, {high_l:+.3f}]",
                    str(curve["n"]),
                ]
            )
    return rows


def _knob_rows(analyses: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for predictor, analysis in analyses.items():
        knobs = analysis["knobs"]
        if "error" in knobs:
            rows.append([predictor, "-", "-", "-", "-", knobs["error"]])
            continue
        for c in knobs["coefficients"]:
            note = "; ".join(knobs["notes"]) if c["name"] == "intercept" else ""
            interval = f"[{_n(c['ci_low'], '.2f')}, {_n(c['ci_high'], '.2f')}]"
            rows.append([predictor, c["name"], _n(c["coef"]), interval, _n(c["p_value"]), note])
    return rows


def render_sweep_page(
    results: Mapping[str, Any], images: Mapping[str, bytes], *, title: str
) -> str:
    """The whole page: summary, figures and tables, every image inlined.

    Example:
        >>> results = {"cells": [], "analyses": {}, "summary": {}, "runtime_s": 1.0}
        >>> page = render_sweep_page(results, {}, title="demo")
        >>> page.startswith("<!DOCTYPE html>"), "<script" in page
        (True, False)
    """
    summary = results["summary"]
    cards = "\n".join(
        f'<div class="card"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div></div>'
        for label, value in summary.items()
    )
    figures = "\n".join(
        f'<figure><figcaption>{_e(stem.replace("_", " "))}</figcaption><img alt="{_e(stem)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}"></figure>'
        for stem, png in images.items()
    )
    analyses = results["analyses"]
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    cell_headers = [
        "compressor", "predictor", "seed", "accuracy", "full ctx acc.", "containment",
        "tokens", "MI bits [95% CI]", "bits/token", "answer ppl", "compressor FLOPs",
        "predictor cost", "full-context cost", "failed / empty",
    ]  # fmt: skip
    correlations = _table(
        ["predictor", "pair", "Pearson r", "95% CI", "Spearman", "n", "note"],
        _correlation_rows(analyses),
    )
    routing = _table(
        ["predictor", "compressor", "compressed acc.", "full acc.", "MI - random [95% CI]",
         "MI - length [95% CI]", "n"],
        _routing_rows(analyses),
    )  # fmt: skip
    body = f"""<header><h1>ib-middleware sweep: {_e(title)}</h1>
<p>{len(results["cells"])} cells &middot; {_n(results["runtime_s"], ".0f")} s &middot;
generated {generated}</p>
</header>
<main>
<section class="cards">
{cards}
</section>
<section class="figures">
{figures}
</section>
<h2>Cells</h2>
{_table(cell_headers, _cell_rows(results["cells"]))}
<h2>Correlations</h2>
{correlations}
<h2>Rate-distortion fits: D(R) = C exp(-b R) + D0</h2>
{_table(["predictor", "C", "b", "D0", "R²", "points", "note"], _fit_rows(analyses))}
<h2>Routing at equal fallback rates</h2>
{routing}
<h2>Which knobs matter (logistic regression)</h2>
{_table(["predictor", "knob", "coefficient", "95% CI", "p", "note"], _knob_rows(analyses))}
</main>"""
    return html_page(f"ib-middleware sweep: {title}", body)

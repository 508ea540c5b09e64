"""The report's HTML: one self-contained page, inline CSS, images as data URIs, no scripts."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from ib_middleware.lab._html import escape as _e
from ib_middleware.lab._html import html_page
from ib_middleware.lab.report.data import Attempt, ReportData

__all__ = ["render_page"]


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _fmt(value: float | None, spec: str = ".3f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _cards(data: ReportData) -> str:
    counts = data.counts
    p50 = _percentile(data.invocation_durations_s, 0.5)
    p99 = _percentile(data.invocation_durations_s, 0.99)
    cost = data.cost_saved
    cards = [
        ("stage invocations", f"{data.invocations:,}", f"{data.failed_invocations} raised"),
        ("decisions", f"{len(data.decisions):,}", "one per context item"),
        ("passthrough", f"{counts['passthrough']:,}", "within the token budget"),
        ("accepted", f"{counts['accepted']:,}", "compression forwarded"),
        ("fallback", f"{counts['fallback']:,}", "full context forwarded"),
        ("fallback rate", _fmt(data.fallback_rate, ".1%"), "of items that needed compressing"),
        ("tokens saved", f"{data.tokens_saved:,}", "not read by the orchestrator"),
        (
            "cost saved",
            "-" if cost is None else f"${cost:,.4f}",
            f"at {data.price_model} input prices",
        ),
        ("compressor cost", f"${data.compressor_cost:,.4f}", "priced models only; local = 0"),
        ("stage p50 / p99", f"{_fmt(p50, '.3f')} / {_fmt(p99, '.3f')} s", "per invocation"),
    ]
    return "\n".join(
        f'<div class="card"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div><div class="label">{_e(note)}</div></div>'
        for label, value, note in cards
    )


def _rung_rows(attempts: Sequence[Attempt]) -> str:
    rows = []
    for rung in sorted({a.rung for a in attempts}):
        chosen = [a for a in attempts if a.rung == rung]
        accepted = sum(a.accepted for a in chosen)
        rows.append(
            "<tr>"
            f"<td>{rung}</td><td>{_e(chosen[0].rung_name)}</td>"
            f'<td class="num">{len(chosen)}</td><td class="num">{accepted}</td>'
            f'<td class="num">{accepted / len(chosen):.0%}</td>'
            f'<td class="num">{statistics.median(a.bits_per_token for a in chosen):.3f}</td>'
            f'<td class="num">{chosen[-1].threshold:.3f}</td>'
            "</tr>"
        )
    return "\n".join(rows) or '<tr><td colspan="7">no scored attempts</td></tr>'


def _tokens(prompt: int, completion: int) -> str:
    return f"{prompt:,} / {completion:,}" if prompt or completion else "-"


def _call_rows(data: ReportData) -> str:
    calls = sorted(data.calls, key=lambda call: call.duration_s, reverse=True)[:10]
    rows = [
        "<tr>"
        f"<td>{_e(call.name)}</td><td>{_e(call.model or '-')}</td>"
        f'<td class="num">{call.duration_s:.4f}</td>'
        f'<td class="num">{_tokens(call.input_tokens, call.output_tokens)}</td>'
        f"<td>{'error' if call.failed else 'ok'}</td>"
        "</tr>"
        for call in calls
    ]
    return "\n".join(rows) or '<tr><td colspan="5">no calls</td></tr>'


def render_page(data: ReportData, images: Mapping[str, str], *, source: str) -> str:
    """The whole HTML page.

    Args:
        data: The summarised spans.
        images: PNG data URIs by figure title.
        source: The span file's name, shown in the header.

    Example:
        >>> page = render_page(ReportData(), {}, source="spans.jsonl")
        >>> page.startswith("<!DOCTYPE html>"), "<script" in page
        (True, False)
    """
    figures = "\n".join(
        f'<figure><figcaption>{_e(title)}</figcaption><img alt="{_e(title)}" src="{uri}"></figure>'
        for title, uri in images.items()
    )
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = f"""<header><h1>ib-middleware compression report</h1>
<p>{_e(source)} &middot; {len(data.decisions):,} decisions &middot; generated {generated}</p>
</header>
<main>
<section class="cards">
{_cards(data)}
</section>
<section class="figures">
{figures}
</section>
<h2>Rungs</h2>
<table><thead><tr><th>rung</th><th>name</th><th>scored</th><th>accepted</th>
<th>accept rate</th><th>median bits/token</th><th>threshold</th></tr></thead>
<tbody>
{_rung_rows(data.attempts)}
</tbody></table>
<h2>Slowest calls</h2>
<table><thead><tr><th>span</th><th>model</th><th>seconds</th><th>tokens in / out</th>
<th>status</th></tr></thead>
<tbody>
{_call_rows(data)}
</tbody></table>
</main>"""
    return html_page(f"ib-middleware report: {source}", body)

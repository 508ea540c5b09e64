"""The report's figures, drawn with matplotlib's object API and returned as PNG data URIs.

matplotlib is needed only here; ``render_report`` imports this module when it runs and reports
a missing matplotlib with the install command. No global pyplot state is touched.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ib_middleware.lab.report.data import ReportData

__all__ = ["FIGURES", "render_figures"]

COLOURS = {
    "passthrough": "#8d99ae",
    "accepted": "#2a9d8f",
    "fallback": "#e76f51",
    "rejected": "#e76f51",
}
_SIZE = (6.4, 3.6)


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _empty(axes: Axes, message: str = "no data in this span file yet") -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", color="#666", transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


def _time_axis(times: Sequence[float]) -> tuple[np.ndarray, str]:
    """Times relative to the first, in a readable unit."""
    relative = np.asarray(times, dtype=float) - (min(times) if times else 0.0)
    span = float(relative.max()) if len(relative) else 0.0
    if span < 120:
        return relative, "seconds since first decision"
    if span < 7200:
        return relative / 60, "minutes since first decision"
    return relative / 3600, "hours since first decision"


def _bins(values: np.ndarray) -> np.ndarray:
    count = int(min(24, max(1, len(values) // 3)))
    low, high = float(values.min()), float(values.max())
    if high <= low:
        high = low + 1.0
    return np.linspace(low, high, count + 1)


def bits_by_rung(data: ReportData, axes: Axes) -> None:
    """Each scored attempt's bits per token, by rung, accepted or rejected; thresholds."""
    if not data.attempts:
        _empty(axes)
        return
    rungs = sorted({attempt.rung for attempt in data.attempts})
    jitter = np.random.default_rng(0)
    for accepted, label in ((True, "accepted"), (False, "rejected")):
        chosen = [a for a in data.attempts if a.accepted is accepted]
        if chosen:
            x = [rungs.index(a.rung) + jitter.uniform(-0.18, 0.18) for a in chosen]
            y = [a.bits_per_token for a in chosen]
            axes.scatter(x, y, s=18, alpha=0.75, color=COLOURS[label], label=label)
    names: dict[int, str] = {}
    for attempt in data.attempts:
        names.setdefault(attempt.rung, attempt.rung_name)
        position = rungs.index(attempt.rung)
        axes.hlines(attempt.threshold, position - 0.3, position + 0.3, color="#264653", lw=1.5)
    axes.set_xticks(range(len(rungs)), [f"{rung}: {names[rung]}" for rung in rungs])
    axes.plot([], [], color="#264653", lw=1.5, label="threshold")
    axes.set_ylabel("bits per token")
    axes.legend(loc="best", fontsize="small")


def decisions_over_time(data: ReportData, axes: Axes) -> None:
    """Stacked counts of passthrough, accepted and fallback decisions per time bin."""
    if not data.decisions:
        _empty(axes)
        return
    times, unit = _time_axis([d.time_s for d in data.decisions])
    edges = _bins(times)
    bottom = np.zeros(len(edges) - 1)
    width = float(edges[1] - edges[0]) * 0.9
    for kind in ("passthrough", "accepted", "fallback"):
        chosen = times[[d.decision == kind for d in data.decisions]]
        counts, _ = np.histogram(chosen, bins=edges)
        axes.bar(edges[:-1], counts, width, bottom=bottom, align="edge", color=COLOURS[kind])
        bottom += counts
    axes.set_xlabel(unit)
    axes.set_ylabel("decisions")
    axes.legend(["passthrough", "accepted", "fallback"], loc="best", fontsize="small")


def ratio_vs_bits(data: ReportData, axes: Axes) -> None:
    """Compression ratio against bits per token, for every scored attempt."""
    points = [(a.bits_per_token, a.ratio, a.accepted) for a in data.attempts if a.ratio]
    if not points:
        _empty(axes)
        return
    for accepted, label in ((True, "accepted"), (False, "rejected")):
        chosen = [(bits, ratio) for bits, ratio, verdict in points if verdict is accepted]
        if chosen:
            axes.scatter(
                [bits for bits, _ in chosen],
                [ratio for _, ratio in chosen],
                s=18,
                alpha=0.75,
                color=COLOURS[label],
                label=label,
            )
    ratios = [ratio for _, ratio, _ in points]
    if max(ratios) / min(ratios) > 20:  # a wide spread reads better on a log scale
        axes.set_yscale("log")
    axes.set_xlabel("bits per token")
    axes.set_ylabel("compression ratio (input / output tokens)")
    axes.legend(loc="best", fontsize="small")


def fallback_rate(data: ReportData, axes: Axes) -> None:
    """Share of compressed items that fell back, per time bin, with the overall rate."""
    tried = [d for d in data.decisions if d.decision in ("accepted", "fallback")]
    if not tried:
        _empty(axes, "no item needed compressing")
        return
    times, unit = _time_axis([d.time_s for d in tried])
    edges = _bins(times)
    total, _ = np.histogram(times, bins=edges)
    fell, _ = np.histogram(times[[d.decision == "fallback" for d in tried]], bins=edges)
    middle = (edges[:-1] + edges[1:]) / 2
    shown = total > 0
    axes.plot(middle[shown], fell[shown] / total[shown], marker="o", color=COLOURS["fallback"])
    overall = data.fallback_rate or 0.0
    axes.axhline(overall, ls="--", color="#264653", label=f"overall {overall:.0%}")
    axes.set_ylim(-0.05, 1.05)
    axes.set_xlabel(unit)
    axes.set_ylabel("fallback rate (full context forwarded)")
    axes.legend(loc="best", fontsize="small")


def tokens_saved(data: ReportData, axes: Axes) -> None:
    """Cumulative tokens the orchestrator did not read, over time."""
    if not data.decisions:
        _empty(axes)
        return
    times, unit = _time_axis([d.time_s for d in data.decisions])
    saved = np.cumsum([d.input_tokens - d.output_tokens for d in data.decisions])
    cost = data.cost_saved
    label = f"{int(saved[-1]):,} tokens"
    if cost is not None:
        label += f", ${cost:,.4f} at {data.price_model} input prices"
    axes.step(times, saved, where="post", color=COLOURS["accepted"], label=label)
    axes.fill_between(times, saved, step="post", alpha=0.2, color=COLOURS["accepted"])
    axes.set_xlabel(unit)
    axes.set_ylabel("tokens saved (cumulative)")
    axes.legend(loc="upper left", fontsize="small")


def slowest_calls(data: ReportData, axes: Axes) -> None:
    """The ten slowest compressor and scoring calls."""
    calls = sorted(data.calls, key=lambda call: call.duration_s, reverse=True)[:10]
    if not calls:
        _empty(axes)
        return
    labels = [f"{call.name}{' (failed)' if call.failed else ''}" for call in reversed(calls)]
    scale, unit = (1.0, "seconds") if calls[0].duration_s >= 1 else (1e3, "milliseconds")
    durations = [call.duration_s * scale for call in reversed(calls)]
    colours = [COLOURS["fallback"] if call.failed else "#457b9d" for call in reversed(calls)]
    axes.barh(range(len(calls)), durations, color=colours)
    axes.set_yticks(range(len(calls)), labels, fontsize="small")
    axes.xaxis.set_major_locator(MaxNLocator(5))
    axes.set_xlabel(unit)


FIGURES: dict[str, Callable[[ReportData, Axes], None]] = {
    "Bits per token by rung and decision": bits_by_rung,
    "Decisions over time": decisions_over_time,
    "Compression ratio against bits per token": ratio_vs_bits,
    "Fallback rate": fallback_rate,
    "Tokens and cost saved": tokens_saved,
    "Slowest calls": slowest_calls,
}


def render_figures(data: ReportData) -> dict[str, str]:
    """Every figure as a PNG data URI, by title.

    Example:
        >>> from ib_middleware.lab.report.data import ReportData
        >>> images = render_figures(ReportData())
        >>> sorted(images)[0], images["Fallback rate"].startswith("data:image/png;base64,")
        ('Bits per token by rung and decision', True)
    """
    images = {}
    for title, draw in FIGURES.items():
        figure = Figure(figsize=_SIZE, layout="constrained")
        draw(data, figure.add_subplot())
        images[title] = _png(figure)
    return images

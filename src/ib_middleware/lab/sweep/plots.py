"""The sweep's figures, drawn with matplotlib's object API (no global pyplot state).

Each figure is returned as PNG bytes; the caller writes them to ``DIR/plots`` and embeds them in
the report page.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ib_middleware.lab.sweep.analysis import CONTAINMENT

__all__ = ["render_figures"]

_SIZE = (6.4, 3.8)
_METHODS = {
    "mi": ("#2a9d8f", "MI routing"),
    "length": ("#e9c46a", "length"),
    "random": ("#8d99ae", "random"),
}


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _empty(axes: Axes, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", color="#666", transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


def _colours(names: Sequence[str]) -> dict[str, Any]:
    palette = [
        "#264653", "#2a9d8f", "#e76f51", "#e9c46a", "#6a4c93", "#1982c4", "#8ac926", "#ff595e",
    ]  # fmt: skip
    return {name: palette[index % len(palette)] for index, name in enumerate(names)}


def _by_predictor(cells: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for cell in cells:
        grouped.setdefault(cell["predictor"], []).append(cell)
    return grouped


def rate_distortion(
    cells: Sequence[dict[str, Any]], analyses: Mapping[str, Any], axes: Axes
) -> None:
    """Distortion against bits per token, one colour per predictor, with the fitted curves."""
    rows = [c for c in cells if c["bits_per_token"] is not None]
    if not rows:
        _empty(axes, "no compression had a bits-per-token estimate")
        return
    colours = _colours([*dict.fromkeys(c["predictor"] for c in rows), CONTAINMENT])
    for predictor, group in _by_predictor(rows).items():
        axes.scatter(
            [c["bits_per_token"] for c in group],
            [c["distortion"] for c in group],
            color=colours[predictor],
            label=predictor,
            alpha=0.85,
        )
    axes.scatter(
        [c["bits_per_token"] for c in rows],
        [1.0 - (c["containment"] or 0.0) for c in rows],
        color=colours[CONTAINMENT],
        marker="x",
        label="containment (no predictor)",
    )
    saturated = [c for c in cells if c.get("bits_per_token_lower_bound") is not None]
    if saturated:
        axes.scatter(
            [c["bits_per_token_lower_bound"] for c in saturated],
            [c["distortion"] for c in saturated],
            facecolors="none",
            edgecolors="#888",
            marker=">",
            label="saturated (MI ≥ log N: a lower bound, not fitted)",
        )
    grid = np.linspace(0.0, max(c["bits_per_token"] for c in rows) * 1.1, 100)
    for predictor, analysis in analyses.items():
        fit = analysis["rate_distortion"]
        if "error" not in fit:
            curve = fit["c"] * np.exp(-fit["b"] * grid) + fit["d0"]
            axes.plot(grid, curve, color=colours.get(predictor, "#333"), linewidth=1.2)
    axes.set_xlabel("bits per token (MI / compression length)")
    axes.set_ylabel("distortion (1 - accuracy)")
    axes.set_ylim(-0.05, 1.05)
    axes.legend(fontsize=8)


def mi_vs_distortion(cells: Sequence[dict[str, Any]], axes: Axes) -> None:
    """Distortion against MI in bits, one colour per predictor."""
    colours = _colours(list(dict.fromkeys(c["predictor"] for c in cells)))
    for predictor, group in _by_predictor(cells).items():
        axes.errorbar(
            [c["mi_bits"] for c in group],
            [c["distortion"] for c in group],
            xerr=np.array(
                [
                    [c["mi_bits"] - c["mi_ci_bits"][0], c["mi_ci_bits"][1] - c["mi_bits"]]
                    for c in group
                ]
            ).T.clip(min=0.0),
            fmt="o",
            color=colours[predictor],
            label=predictor,
            alpha=0.85,
        )
    axes.axvline(cells[0]["log_n_bits"], color="#999", linestyle=":", label="log2 N (cap)")
    axes.set_xlabel("I(X; Z | Q) in bits (95% CI)")
    axes.set_ylabel("distortion (1 - accuracy)")
    axes.legend(fontsize=8)


def length_vs_accuracy(cells: Sequence[dict[str, Any]], axes: Axes) -> None:
    """Accuracy and containment against compression length, one point per compressor."""
    colours = _colours(list(dict.fromkeys(c["compressor"] for c in cells)))
    for cell in cells:
        axes.scatter(
            cell["mean_output_tokens"], cell["accuracy"], color=colours[cell["compressor"]]
        )
        axes.scatter(
            cell["mean_output_tokens"],
            cell["containment"],
            color=colours[cell["compressor"]],
            marker="x",
        )
    for name, colour in colours.items():
        axes.scatter([], [], color=colour, label=name)
    axes.set_xlabel("mean compression length (scorer tokens)")
    axes.set_ylabel("accuracy (o)  /  containment (x)")
    axes.set_ylim(-0.05, 1.05)
    axes.legend(fontsize=7)


def routing(analysis: Mapping[str, Any], axes: Axes, *, cost: bool) -> None:
    """Routing curves of one predictor: accuracy by fallback rate (or by relative cost)."""
    curves = {name: value for name, value in analysis["routing"].items() if "error" not in value}
    if not curves:
        _empty(axes, "no routing curve could be drawn")
        return
    styles = ["-", "--", ":", "-."]
    for index, (compressor, curve) in enumerate(curves.items()):
        style = styles[index % len(styles)]
        for method, (colour, label) in _METHODS.items():
            if cost and method == "random":
                continue
            x = (
                np.asarray(curve[f"{method}_cost"]) / max(curve["full_cost"], 1e-12)
                if cost
                else curve["rates"]
            )
            axes.plot(x, curve[method], style, color=colour, label=f"{label}: {compressor}")
    axes.set_xlabel("cost relative to the full context" if cost else "fallback rate")
    axes.set_ylabel("accuracy of the routed system")
    axes.legend(fontsize=6, ncol=2)


def knobs(analysis: Mapping[str, Any], axes: Axes) -> None:
    """Logistic-regression coefficients with 95% intervals."""
    result = analysis["knobs"]
    if "error" in result:
        _empty(axes, result["error"][:90])
        return
    rows = [c for c in result["coefficients"] if c["name"] != "intercept"]
    positions = np.arange(len(rows))
    axes.errorbar(
        [c["coef"] for c in rows],
        positions,
        xerr=np.array([[c["coef"] - c["ci_low"], c["ci_high"] - c["coef"]] for c in rows]).T,
        fmt="o",
        color="#264653",
    )
    axes.axvline(0.0, color="#999", linestyle=":")
    axes.set_yticks(positions, [c["name"] for c in rows])
    axes.set_xlabel("coefficient on log-odds of correct (z-scored knobs)")


def render_figures(
    cells: Sequence[dict[str, Any]], analyses: Mapping[str, Any]
) -> dict[str, bytes]:
    """Every figure as PNG bytes, by file stem."""
    drawers: dict[str, Callable[[Axes], None]] = {
        "rate_distortion": lambda axes: rate_distortion(cells, analyses, axes),
        "mi_vs_distortion": lambda axes: mi_vs_distortion(cells, axes),
        "length_vs_accuracy": lambda axes: length_vs_accuracy(cells, axes),
    }
    for predictor, analysis in analyses.items():
        drawers[f"routing_{predictor}"] = partial(routing, analysis, cost=False)
        drawers[f"cost_{predictor}"] = partial(routing, analysis, cost=True)
        drawers[f"knobs_{predictor}"] = partial(knobs, analysis)
    images = {}
    for stem, draw in drawers.items():
        figure = Figure(figsize=_SIZE)
        draw(figure.add_subplot())
        images[stem] = _png(figure)
    return images

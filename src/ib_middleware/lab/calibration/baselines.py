"""The baselines: routers that spend tokens without looking at the signal, in closed form.

``Columns`` holds, per case, what every router reads (with one rung as the compression: an
invalid compression or an item within the token budget goes whole). ``random_at`` is random
routing at given expected forwarded tokens (p_c solved in closed form), ``length_at`` routing
by length (longest first) within given tokens; ``random_routing`` and ``length_routing`` wrap
them for a measured table. ``evaluation`` compares a policy's routes with them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from ib_middleware.lab.calibration.simulation import CaseRecord, route_label, route_tokens

__all__ = [
    "Columns",
    "RouterFigures",
    "finite",
    "length_at",
    "length_routing",
    "random_at",
    "random_routing",
]

Floats = npt.NDArray[np.float64]
Index = npt.NDArray[np.intp]


@dataclass(frozen=True)
class RouterFigures:
    """One router's figures on the evaluated routes.

    Attributes:
        containment: Share of the cases needing evidence whose forwarded text holds it
            (None when no case needs evidence).
        forwarded_fraction: Forwarded tokens over raw tokens (expected, for random routing).
        containment_ci: Bootstrap interval of the containment, when computed.
        forwarded_fraction_ci: Bootstrap interval of the forwarded fraction, when computed.
        compressed_rate: Share of cases compressed (random routing: the probability p_c).
        pruned_rate: Share of cases pruned (random routing: the probability).
    """

    containment: float | None
    forwarded_fraction: float
    containment_ci: tuple[float, float] | None = None
    forwarded_fraction_ci: tuple[float, float] | None = None
    compressed_rate: float = 0.0
    pruned_rate: float = 0.0


@dataclass(frozen=True)
class Columns:
    """Per-case arrays of what every router reads."""

    needs: npt.NDArray[np.bool_]
    inputs: Floats
    notes: Floats
    full_correct: Floats
    compress_correct: Floats
    compress_tokens: Floats

    @classmethod
    def of(cls, records: Sequence[CaseRecord], rung: int = 0) -> Columns:
        """Columns with rung ``rung`` as the compression (invalid or passthrough: full)."""
        first = [
            r.rungs[rung] if len(r.rungs) > rung and not r.passthrough else None for r in records
        ]
        valid = [o is not None and o.bits_per_token is not None for o in first]
        return cls(
            needs=np.asarray([r.needs_evidence for r in records], dtype=np.bool_),
            inputs=np.asarray([r.input_tokens for r in records], dtype=np.float64),
            notes=np.asarray([r.note_tokens for r in records], dtype=np.float64),
            full_correct=np.asarray([r.fallback_correct for r in records], dtype=np.float64),
            compress_correct=np.asarray(
                [
                    route_label(r, rung if ok else None)
                    for r, ok in zip(records, valid, strict=True)
                ],
                dtype=np.float64,
            ),
            compress_tokens=np.asarray(
                [
                    route_tokens(r, rung if ok else None)
                    for r, ok in zip(records, valid, strict=True)
                ],
                dtype=np.float64,
            ),
        )

    def take(self, index: Index) -> Columns:
        """The columns of the cases ``index`` (a resample)."""
        return Columns(*(getattr(self, column.name)[index] for column in fields(self)))

    def total(self) -> float:
        """Raw tokens of the cases (1 when there are none, to divide by)."""
        return float(self.inputs.sum()) or 1.0

    def containment(self, correct: Floats) -> float:
        """Mean of ``correct`` (a label or expected label per case) over cases needing evidence."""
        return float(correct[self.needs].mean()) if self.needs.any() else math.nan


def random_at(columns: Columns, pruned_rate: float, tokens: float) -> tuple[float, float, float]:
    """Random routing at ``tokens`` expected forwarded tokens: (p_c, containment, tokens)."""
    full, notes = columns.inputs.sum(), columns.notes.sum()
    saving = full - columns.compress_tokens.sum()
    p_c = (full - tokens - pruned_rate * (full - notes)) / saving if saving > 0 else 0.0
    p_c = float(min(max(p_c, 0.0), 1.0 - pruned_rate))
    p_full = 1.0 - pruned_rate - p_c
    # A pruned case is right only when it needs no evidence: it adds nothing to containment.
    expected = p_c * columns.compress_correct + p_full * columns.full_correct
    reached = full - pruned_rate * (full - notes) - p_c * saving
    return p_c, columns.containment(expected), float(reached)


def length_at(columns: Columns, tokens: float) -> tuple[float, float, float]:
    """Length routing at most ``tokens``: (share compressed, containment, tokens forwarded)."""
    order = np.argsort(-columns.inputs, kind="stable")
    savings = columns.inputs[order] - columns.compress_tokens[order]
    forwarded = columns.inputs.sum() - np.concatenate([[0.0], np.cumsum(savings)])
    within = np.flatnonzero(forwarded <= tokens + 1e-9 * max(columns.inputs.sum(), 1.0))
    count = int(within[0]) if within.size else len(order)
    compressed = np.zeros(len(order), dtype=np.bool_)
    compressed[order[:count]] = True
    correct = np.where(compressed, columns.compress_correct, columns.full_correct)
    share = count / len(order) if len(order) else 0.0
    return share, columns.containment(correct), float(forwarded[count])


def random_routing(
    records: Sequence[CaseRecord], *, pruned_rate: float, forwarded_tokens: float
) -> RouterFigures:
    """Random routing whose expected forwarded tokens equal ``forwarded_tokens`` (if feasible).

    Prune with probability ``pruned_rate``, compress with rung 0 with probability p_c (an
    invalid compression falls back), else forward the full context; p_c solves
    ``p N + p_c C + (1 - p - p_c) F = T`` for the note, compressed and full token totals N, C, F
    and the target T, clipped to [0, 1 - p].

    Example:
        >>> from ib_middleware.lab.calibration.simulation import RungOutcome
        >>> rows = [CaseRecord("a", 100, True, (RungOutcome(0.5, False, 20),)),
        ...         CaseRecord("b", 100, True, (RungOutcome(0.5, True, 20),))]
        >>> router = random_routing(rows, pruned_rate=0.0, forwarded_tokens=120)
        >>> router.compressed_rate, router.forwarded_fraction, router.containment
        (0.5, 0.6, 0.75)
    """
    columns = Columns.of(records)
    p_c, containment, reached = random_at(columns, pruned_rate, forwarded_tokens)
    return RouterFigures(
        containment=finite(containment),
        forwarded_fraction=reached / columns.total(),
        compressed_rate=p_c,
        pruned_rate=pruned_rate,
    )


def length_routing(records: Sequence[CaseRecord], *, forwarded_tokens: float) -> RouterFigures:
    """Compress the longest contexts (rung 0) until at most ``forwarded_tokens`` are forwarded.

    Example:
        >>> from ib_middleware.lab.calibration.simulation import RungOutcome
        >>> rows = [CaseRecord("short", 100, True, (RungOutcome(0.5, False, 10),)),
        ...         CaseRecord("long", 300, True, (RungOutcome(0.5, False, 10),))]
        >>> router = length_routing(rows, forwarded_tokens=150)
        >>> router.compressed_rate, router.forwarded_fraction, router.containment
        (0.5, 0.275, 0.5)
    """
    columns = Columns.of(records)
    share, containment, reached = length_at(columns, forwarded_tokens)
    return RouterFigures(
        containment=finite(containment),
        forwarded_fraction=reached / columns.total(),
        compressed_rate=share,
    )


def finite(value: float) -> float | None:
    """``value``, or None when it is not finite (JSON has no NaN)."""
    return value if math.isfinite(value) else None

"""Correctness judges: does a text (a compression, a context, a prediction) hold the answer?

Calibration needs a label for every compression it measures. These are pure, deterministic
string functions, so labels are reproducible and cheap; no model is asked.

Normalisation (``normalize_text``): Unicode NFKC, lower case, thousands separators dropped
(``1,577`` -> ``1577``), a decimal point kept only between digits, every other punctuation or
currency mark turned into a space, whitespace collapsed.

Numbers (``extract_numbers``): each number in a text with its optional percent sign or scale
word (``thousand``, ``million``/``mn``/``m``, ``billion``/``bn``/``b``, ``trillion``). A number
with a scale word also counts as its value in millions, because financial filings (and the
FinanceBench answers) state amounts in millions: ``$1.6 billion`` matches ``1600``. Signs are
ignored, because filings write negatives as ``(370)``; ``$``, ``%``, separators and trailing
zeros (``1577.00``) never matter.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable

__all__ = [
    "JUDGES",
    "Judge",
    "answer_contained",
    "exact_match",
    "extract_numbers",
    "facts_contained",
    "get_judge",
    "is_numeric_answer",
    "normalize_text",
    "numeric_match",
    "token_f1",
]

Judge = Callable[[str, str], bool]
"""A judge takes ``(text, answer)`` and says whether ``text`` holds ``answer``."""

_SCALES = {
    "thousand": 1e3,
    "k": 1e3,
    "million": 1e6,
    "millions": 1e6,
    "mn": 1e6,
    "mm": 1e6,
    "m": 1e6,
    "billion": 1e9,
    "billions": 1e9,
    "bn": 1e9,
    "b": 1e9,
    "trillion": 1e12,
    "tn": 1e12,
}
_SCALE_PATTERN = "|".join(sorted(_SCALES, key=len, reverse=True))
_NUMBER = re.compile(
    r"(?<![\w.])"  # not inside a word or after a decimal point
    r"(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?"  # integer part (with separators), decimals
    r"(?:\s*(%|percent\b|(?:" + _SCALE_PATTERN + r")\b))?",
    re.IGNORECASE,
)
_NUMERIC_ANSWER = re.compile(
    r"[-+(]?\s*[$\u20ac\u00a3]?\s*-?\s*"
    r"(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s*"
    r"(%|percent|" + _SCALE_PATTERN + r")?\s*\)?\.?",
    re.IGNORECASE,
)
_ABS_TOL = 1e-9
_CONTAINMENT_REL_TOL = 1e-6


def normalize_text(text: str) -> str:
    """Normalise text for comparison (see the module docstring).

    Example:
        >>> normalize_text("  Capex was $1,577.00 (in millions)!  ")
        'capex was 1577.00 in millions'
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)
    text = re.sub(r"[^\w.]+|_", " ", text)
    return " ".join(text.split())


def extract_numbers(text: str) -> list[float]:
    """Every number in ``text`` as its candidate values (sign dropped, in millions too).

    A number followed by a scale word contributes two values: as written, and in millions.

    Example:
        >>> extract_numbers("Capex of $1,577 million, up 12.4% from $1.4 bn")
        [1577.0, 1577.0, 12.4, 1.4, 1400.0]
    """
    values: list[float] = []
    for match in _NUMBER.finditer(unicodedata.normalize("NFKC", text)):
        value = float(match.group(1).replace(",", "") + (match.group(2) or ""))
        values.append(value)
        unit = (match.group(3) or "").lower()
        if unit in _SCALES:
            values.append(value * _SCALES[unit] / 1e6)
    return values


def is_numeric_answer(answer: str) -> bool:
    """Whether a gold answer is a single number (with optional currency, sign, %, scale).

    Example:
        >>> [is_numeric_answer(a) for a in ["$1577.00", "12.4%", "-0.4", "$1.8 bn", "Yes"]]
        [True, True, True, True, False]
    """
    return _NUMERIC_ANSWER.fullmatch(unicodedata.normalize("NFKC", answer).strip()) is not None


def _close(a: float, b: float, rel_tol: float) -> bool:
    return math.isclose(a, b, rel_tol=rel_tol, abs_tol=_ABS_TOL)


def _numbers_match(text: str, answer: str, rel_tol: float) -> bool:
    gold = extract_numbers(answer)
    if not gold:
        return False
    return any(_close(g, value, rel_tol) for value in extract_numbers(text) for g in gold)


def answer_contained(answer: str, text: str) -> bool:
    """Whether ``text`` holds ``answer``: normalised containment, or the same number.

    Text containment compares whole normalised words (``4.2`` is not found in ``14.25``). A
    numeric gold answer (see ``is_numeric_answer``) is also found when any number of ``text``
    equals it after normalising separators, currency, percent signs, trailing zeros and scale
    words (``$1577.00`` is in ``capex of 1,577`` and in ``$1.577 billion``).

    Args:
        answer: The gold answer.
        text: The text to search (a compression, or the raw context).

    Example:
        >>> answer_contained("$1577.00", "Purchases of PP&E (1,577) (1,373)")
        True
        >>> answer_contained("12.4%", "margin rose to 12.4 percent")
        True
        >>> answer_contained("Data Center", "The data-center segment grew.")
        True
        >>> answer_contained("4.2%", "grew 14.25%")
        False
    """
    needle = normalize_text(answer)
    if needle and f" {needle} " in f" {normalize_text(text)} ":
        return True
    return is_numeric_answer(answer) and _numbers_match(text, answer, _CONTAINMENT_REL_TOL)


def facts_contained(answer: str, text: str) -> bool:
    """Whether ``text`` holds the answer's facts: every number in it, or the whole answer.

    Free-text gold answers ("The segment shrank by 0.9% organically.") are almost never found
    word for word; the figures they state are the facts a compression must keep. So an answer
    that holds numbers is found when each of them is in ``text`` (read as in
    ``answer_contained``); an answer without numbers must be contained whole. For a numeric
    gold answer this is exactly ``answer_contained``.

    Args:
        answer: The gold answer.
        text: The text to search.

    Example:
        >>> facts_contained("Adj. EBITDA was $2,018mn in 2023", "2023: EBITDA 2,018")
        True
        >>> facts_contained("Shrank by 0.9% organically.", "Organic sales fell 1.9%")
        False
        >>> facts_contained("Data Center", "the data center segment")
        True
    """
    if answer_contained(answer, text):
        return True
    figures = [match.group(0) for match in _NUMBER.finditer(unicodedata.normalize("NFKC", answer))]
    return bool(figures) and all(
        _numbers_match(text, figure, _CONTAINMENT_REL_TOL) for figure in figures
    )


def numeric_match(prediction: str, answer: str, rel_tol: float = 0.01) -> bool:
    """Whether any number in ``prediction`` is within ``rel_tol`` of the gold number.

    Numbers are read as in ``extract_numbers``; False when ``answer`` holds no number.

    Args:
        prediction: A model's answer.
        answer: The gold answer.
        rel_tol: Relative tolerance (0.01 accepts rounding to three significant figures).

    Example:
        >>> numeric_match("About $1.58 billion.", "$1577.00")
        True
        >>> numeric_match("24.9", "24.26")
        False
        >>> numeric_match("a number", "none here")
        False
    """
    return _numbers_match(prediction, answer, rel_tol)


def exact_match(prediction: str, answer: str) -> bool:
    """Whether the two strings are equal after ``normalize_text``.

    Example:
        >>> exact_match("  Data-Center. ", "data center")
        True
        >>> exact_match("data centers", "data center")
        False
    """
    return normalize_text(prediction) == normalize_text(answer)


def token_f1(prediction: str, answer: str) -> float:
    """Harmonic mean of token precision and recall, over normalised words (SQuAD style).

    Example:
        >>> token_f1("capex was 1577 million", "1577 million")
        0.6666666666666666
        >>> token_f1("", "")
        1.0
        >>> token_f1("yes", "no")
        0.0
    """
    predicted = normalize_text(prediction).split()
    gold = normalize_text(answer).split()
    if not predicted or not gold:
        return float(predicted == gold)
    overlap = sum((Counter(predicted) & Counter(gold)).values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(predicted)
    recall = overlap / len(gold)
    return 2 * precision * recall / (precision + recall)


def _contains(text: str, answer: str) -> bool:
    return answer_contained(answer, text)


def _numeric(text: str, answer: str) -> bool:
    if is_numeric_answer(answer):
        return numeric_match(text, answer)
    return answer_contained(answer, text)


def _facts(text: str, answer: str) -> bool:
    return facts_contained(answer, text)


_TOKEN_F1_THRESHOLD = 0.5


def _exact(text: str, answer: str) -> bool:
    return exact_match(text, answer)


def _token_f1(text: str, answer: str) -> bool:
    return token_f1(text, answer) >= _TOKEN_F1_THRESHOLD


JUDGES: dict[str, Judge] = {
    "facts": _facts,
    "contains": _contains,
    "numeric": _numeric,
    "exact": _exact,
    "token_f1": _token_f1,
}
"""Judges by name, each called as ``judge(text, answer)``.

- ``facts`` (calibration's default): ``facts_contained``, every figure of the answer.
- ``contains``: ``answer_contained`` (exact numbers for numeric answers).
- ``numeric``: numeric answers match any number within 1% (``numeric_match``); other answers
  fall back to ``answer_contained``.
- ``exact``: ``exact_match``, the whole text equals the answer after ``normalize_text``; for
  short predictions, not for compressions (which hold more than the answer).
- ``token_f1``: ``token_f1`` of at least 0.5 (SQuAD-style word overlap); also meant for short
  predictions, since a long text's precision drags its F1 down.
"""


def get_judge(name: str) -> Judge:
    """The judge registered under ``name`` in ``JUDGES``.

    Raises:
        ValueError: For an unknown name; the message lists the known ones.

    Example:
        >>> get_judge("facts")("Capex was 1,577.", "$1577.00")
        True
    """
    try:
        return JUDGES[name]
    except KeyError:
        known = ", ".join(sorted(JUDGES))
        raise ValueError(f"unknown judge {name!r}; choose one of: {known}") from None

"""Names in a compression and whether its page or query knows them.

A name is a word with a capital inside a sentence, a word mixed with digits or ``&`` (``3M``,
``PP&E``), or a possessive (``Honeywell's``, ``honeywell's``). A capitalised word that opens a
sentence, or a lowercase one there, is a name too unless it is an ordinary word: one the page
or query writes in lowercase, or one of a short list of common words. A name is known when the
page or the query holds it (any case, possessive dropped) or spells it out: ``J&J`` and ``IPO``
are the initials of "Johnson & Johnson" and "initial public offering".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ib_middleware.judging.lexicon import COMMON, PREFIXES, STOPWORDS

__all__ = ["NameSpan", "Vocabulary", "name_spans", "unknown_names", "vocabulary"]

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9&'\u2019\-]*")
_OPENER = re.compile(r"(?:^|[.!?:;]\s+|\n\s*|[\"(\[\u2022*\-]\s*)$")
_AFTER_PLACE = re.compile(r"\b(?:at|by)\s+$")
_CORPORATE = re.compile(r"\s+(?:inc|corp|corporation|company|co|ltd|plc|group|llc)\b", re.I)
_PERIOD_WORD = re.compile(r"(?:FY|Q[1-4]|H[12])'?\d{2,4}|\d+(?:st|nd|rd|th|s)?|\d+[-\u2013]\w+")
_CALENDAR = frozenset(
    (  # noqa: SIM905
        "january february march april may june july august september october november december "
        "jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday "
        "friday saturday sunday i"
    ).split()
)
_JOINERS = frozenset({"and", "&", "of", "the", "for", "a", "an"})


@dataclass(frozen=True)
class NameSpan:
    """A word of a compression taken for a name."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Vocabulary:
    """The words of a text, for telling names from ordinary words.

    Attributes:
        words: Every word, lowercased, possessive dropped.
        lowercase: Words the text writes in lowercase (ordinary words).
        content: Its words in order, joiners ("and", "of", "&") left out, to spell short forms.
    """

    words: frozenset[str]
    lowercase: frozenset[str]
    content: tuple[str, ...]

    def spells(self, letters: str) -> bool:
        """Whether a run of its words has ``letters`` as initials (``jj``, ``ipo``).

        Example:
            >>> vocabulary("Johnson & Johnson (the Company)").spells("jj")
            True
        """
        length = len(letters)
        firsts = "".join(token[0] for token in self.content).lower()
        return any(firsts.startswith(letters, start) for start in range(len(firsts) - length + 1))


def _base(word: str) -> str:
    word = word.rstrip("'\u2019-.")
    for ending in ("'s", "\u2019s"):
        word = word.removesuffix(ending).removesuffix(ending.upper())
    return word


@lru_cache(maxsize=32)
def vocabulary(text: str) -> Vocabulary:
    """The words and lowercase words of ``text`` (cached per text).

    Example:
        >>> sorted(vocabulary("Johnson & Johnson (the Company)").lowercase)
        ['the']
    """
    tokens = [_base(match.group(0)) for match in _WORD.finditer(text)]
    words = {token.lower() for token in tokens} | {token.lower().rstrip("s") for token in tokens}
    lowercase = {token for token in tokens if token.islower()}
    lowercase |= {token.rstrip("s") for token in lowercase}
    content = tuple(token for token in tokens if token and token.lower() not in _JOINERS | {"&"})
    return Vocabulary(frozenset(words), frozenset(lowercase), content)


def _ordinary(word: str, known: tuple[Vocabulary, ...]) -> bool:
    lower = word.lower()
    if "-" in lower:
        parts = [part for part in lower.split("-") if part and part not in PREFIXES]
        return all(_ordinary(part, known) for part in parts)
    return (
        (len(lower) > 5 and lower.endswith("ly"))  # an adverb opening a sentence ("Notably")
        or lower in COMMON
        or lower in STOPWORDS
        or lower in _CALENDAR
        or any(lower in v.lowercase or lower.rstrip("s") in v.lowercase for v in known)
    )


def name_spans(text: str, known: tuple[Vocabulary, ...] = ()) -> list[NameSpan]:
    """The words of ``text`` taken for names, in order (``known`` tells ordinary words).

    Example:
        >>> [s.text for s in name_spans("Honeywell's capex rose. Net sales at 3M and Kenvue.")]
        ["Honeywell's", '3M', 'Kenvue']
    """
    spans = []
    # The text's own lowercase use shows a capitalised opener is an ordinary word, never a
    # lowercase word (a misspelt or wrong name written twice stays a name).
    with_own = (*known, vocabulary(text))
    for match in _WORD.finditer(text):
        word = match.group(0).rstrip("'\u2019-")
        base = _base(word)
        if not any(char.isalpha() for char in base) or _PERIOD_WORD.fullmatch(base):
            continue
        if base.lower() in _CALENDAR:
            continue
        possessive = base != word.rstrip(".")
        mixed = any(c.isdigit() for c in base) or "&" in base or sum(c.isupper() for c in base) > 1
        opener = bool(_OPENER.search(text[: match.start()]))
        corporate = bool(_CORPORATE.match(text, match.start() + len(word)))
        # "capex at honeywell": a lowercase word where a company's name goes.
        corporate = corporate or bool(_AFTER_PLACE.search(text, 0, match.start()))
        if mixed:
            if base.lower() in COMMON or base.lower().rstrip("s") in COMMON:
                continue  # a finance short form (EPS, SG&A), not a name
        elif base[0].isupper() and not opener:
            if base.lower() in STOPWORDS:
                continue
        elif base[0].isupper():
            if not possessive and _ordinary(base, with_own):
                continue
        elif not (possessive or corporate or opener) or _ordinary(base, known):
            continue
        spans.append(NameSpan(match.start(), match.start() + len(word), word))
    return spans


def _known(word: str, known: tuple[Vocabulary, ...]) -> bool:
    base = _base(word)
    lower = base.lower()
    letters = "".join(char for char in lower if char.isalnum())
    spelt = lower.replace("&", "n")  # J&J is also written JnJ
    for v in known:
        if any(form in v.words for form in (lower, lower.rstrip("s"), letters, spelt)):
            return True
        if base.isupper() or "&" in base:
            initials = "".join(char for char in lower if char.isalpha())
            if 2 <= len(initials) <= 5 and v.spells(initials):
                return True
    return False


def unknown_names(text: str, context: str, query: str = "") -> list[NameSpan]:
    """The names of ``text`` that neither ``context`` nor ``query`` holds or spells out.

    Example:
        >>> page = "Johnson & Johnson completed its initial public offering."
        >>> [s.text for s in unknown_names("J&J's IPO beat Pfizer's.", page)]
        ["Pfizer's"]
    """
    known = (vocabulary(context), vocabulary(query))
    return [span for span in name_spans(text, known) if not _known(span.text, known)]

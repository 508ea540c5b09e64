"""Word lists the support check reads: how a compression names rows, signs and ordinary words.

Kept small and in one place: function words that name nothing; the words with which a
compression may state a negative cell as a positive magnitude (money that went out or a value
that fell); finance short forms that name a row in other words; and ordinary words that may
open a sentence capitalised without being a name.
"""

from __future__ import annotations

import re

__all__ = [
    "COMMON",
    "DOWNWARD",
    "OUTFLOW",
    "PREFIXES",
    "STOPWORDS",
    "SYNONYMS",
    "UPWARD",
    "direction",
    "direction_around",
    "normal_words",
    "stem",
    "synonyms",
]

STOPWORDS = frozenset(
    (  # noqa: SIM905  # a word list reads better as words
        "a an the this that these those it its in on at of for to and or but by as is was were be "
        "been being are not no from with into than then so such via per over under about after "
        "before during between which who whom whose what when where while also both each any all "
        "our we us their they them he she his her has have had do does did will would can could "
        "may might shall should up down out its own same other amount amounts year "
        "years ended ending fiscal quarter quarters months month period million millions billion "
        "billions thousand thousands usd dollar dollars compared vs versus respectively "
        "approximately about around roughly nearly some there here if"
    ).split()
)

OUTFLOW = frozenset(
    (  # noqa: SIM905
        "outflow outflows used use uses using loss losses lost decrease decreased decreases "
        "decreasing decline declined declines declining fell fall falls falling drop dropped "
        "drops down lower lowered less reduce reduced reduces reduction reductions spent spend "
        "spends spending paid pay pays paying payment payments capex expenditure expenditures "
        "purchase purchases purchased purchasing buyback buybacks repurchase repurchases "
        "repurchased repaid repay repayment repayments dividend dividends expense expenses cost "
        "costs provision tax taxes charge charges deficit negative minus shrank shrink contraction "
        "contracted invested investing investment investments acquisition acquisitions acquired "
        "impairment impairments writeoff write-off adverse adversely unfavorable unfavourable "
        "headwind contribution contributions contributed deduction deductions burn burned"
    ).split()
)

DOWNWARD = frozenset(
    (  # noqa: SIM905
        "used outflow outflows decrease decreased decreases decreasing decline declined declines "
        "declining fell fall falls falling drop dropped drops loss losses lost reduced reduction "
        "negative deficit burn burned shrank"
    ).split()
)
"""Words that say a value went down or out: a positive table cell they describe is a wrong sign."""

UPWARD = frozenset(
    (  # noqa: SIM905
        "provided increase increased increases increasing rose rise rises grew grow grows growth "
        "gain gains gained inflow inflows generated generate higher up"
    ).split()
)
"""Words that say a value went up or in; with a downward word beside them the clause is mixed."""

PREFIXES = frozenset(
    ["pre", "post", "non", "co", "re", "ex", "mid", "over", "under", "inter", "multi", "sub"]
)
"""Prefixes of hyphenated ordinary words (``pre-tax``, ``non-cash``)."""

SYNONYMS: dict[str, tuple[str, ...]] = {
    "capex": ("purchase", "property", "plant", "equipment", "capital", "expenditure", "ppe"),
    "revenue": ("sale", "revenue"),
    "sale": ("revenue", "sold"),
    "sold": ("revenue", "sale"),
    "free": ("operating", "activities", "addition", "property", "equipment", "capital"),
    "inventory": ("inventories", "merchandise"),
    "ap": ("accounts", "payable"),
    "working": ("current", "assets", "liabilities"),
    **dict.fromkeys(
        ("grew", "grow", "growth", "rose", "rise", "increase", "decrease", "decline", "fell"),
        ("change",),
    ),
    "ar": ("accounts", "receivable"),
    "turnover": ("sale", "revenue"),
    "cogs": ("cost", "sale", "good", "sold", "product"),
    "opex": ("operating", "expense"),
    "eps": ("earning", "share"),
    "profit": ("income", "earning"),
    "earning": ("income", "loss"),
    "income": ("earning", "loss"),
    "loss": ("income", "earning"),
    "buyback": ("purchase", "treasury", "stock", "repurchase"),
    "repurchase": ("purchase", "treasury", "stock"),
    "spent": ("purchase",),
    "spend": ("purchase",),
    "spending": ("purchase",),
    "sga": ("selling", "general", "administrative"),
    "rd": ("research", "development"),
    "da": ("depreciation", "amortization"),
}

COMMON = frozenset(
    (  # noqa: SIM905
        "after again against ago ahead all almost along already also although always among "
        "annual annually another around because before below besides between beyond both "
        "but by cash capex capital company companies consolidated current currently despite "
        "dividends during each earlier earnings either else even ever every excluding "
        "following for free from further furthermore gross growth half having hence here "
        "however in including income instead into its just last later lastly less like likewise "
        "meanwhile moreover most much neither nevertheless next no nor not note now operating "
        "operations other others otherwise overall over per profit quarterly rather recently "
        "revenue revenues sales second segment segments several similarly since so still such "
        "than thanks that the their then there thereby therefore these they third this those "
        "though thus to today together too total two three four five six seven eight nine ten "
        "under unlike until up upon we what when where whereas whether which while who why with "
        "within without yet year yearly your first fourth fifth one net spending capital "
        "expenditures expenditure purchases dividend buybacks repurchases debt assets liabilities "
        "equity shares share stock margin margins tax taxes interest expense expenses costs cost "
        "cogs opex eps ebit ebitda fcf roe roa yoy qoq ttm ltm average roughly approximately about "
        "around nearly only both combined altogether adjusted reported diluted basic organic "
        "reported operating investing financing accounts inventory inventories depreciation "
        "amortization goodwill impairment acquisitions acquisition proceeds payments repayment "
        "borrowings spent paid rose fell grew declined increased decreased up down higher lower "
        "it he she i you our my an a as at be is was were are has have had do does did "
        "sga sg&a r&d pp&e d&a m&a gaap non-gaap fcf cagr roic dso dpo dio usd us pretax "
        "pre-tax after-tax tax year-over-year year-end"
    ).split()
)

_WORD = re.compile(r"[a-z0-9]+(?:&[a-z0-9]+)*")
_TOKEN = re.compile(r"[a-z]+(?:-[a-z]+)*")


def stem(word: str) -> str:
    """A word without its plural, possessive or verb ending, for matching labels.

    Example:
        >>> [stem(w) for w in ("expenses", "inventories", "repurchasing", "repurchase", "sales")]
        ['expens', 'inventory', 'repurchas', 'repurchas', 'sale']
    """
    word = word.lower().removesuffix("'s").removesuffix("\u2019s")
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif word.endswith("xes"):
        word = word[:-2]
    elif len(word) > 5 and word.endswith(("ing", "ed")):
        word = word[:-3] if word.endswith("ing") else word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def normal_words(text: str) -> list[str]:
    """The content words of ``text``, lowercased and stemmed, function words and numbers out.

    Example:
        >>> normal_words("Net sales were $14,189 million in 2022")
        ['net', 'sale']
    """
    return [
        stem(word)
        for word in _WORD.findall(text.lower().replace("'s", ""))
        if word not in STOPWORDS and not word[0].isdigit()
    ]


def direction(text: str) -> int:
    """-1 when ``text`` says a value went down or out, +1 up or in, 0 neither or both.

    Example:
        >>> direction("the $590 million decrease"), direction("provided by (used in)")
        (-1, 0)
    """
    tokens = set(_TOKEN.findall(text.lower()))
    down, up = bool(tokens & DOWNWARD), bool(tokens & UPWARD)
    return 0 if down == up else (-1 if down else 1)


_CLAUSE_END = re.compile(r"[,;:.]\s|\s\(|\$|\d")


def direction_around(before: str, after: str) -> int:
    """Which way the words next to a figure point (``direction``).

    Those right after it count first ("a $590 million decrease"), else those before it
    ("increased by $107 million").

    Example:
        >>> direction_around("driven by a ", " increase in charges"), direction_around("fell ", "")
        (1, -1)
    """
    end = _CLAUSE_END.search(after)
    return direction(after[: end.start() if end else len(after)]) or direction(before)


_STEMMED_SYNONYMS = {
    stem(key): tuple(stem(value) for value in values) for key, values in SYNONYMS.items()
}


def synonyms(word: str) -> tuple[str, ...]:
    """Stemmed words that name the same rows as the stemmed ``word`` ("capex": PP&E purchases).

    Example:
        >>> "equipment" in synonyms(stem("capex"))
        True
    """
    return _STEMMED_SYNONYMS.get(word, ())

"""The query side of the cross-language lexical bridge: what an English query is also searched as in Chinese,
and a Chinese query in English.

The translated words are a second BM25 query over the same index
(:func:`bridged`).  It counts only when it crosses languages: its best
passages must be in the other script than the query (an English question over
Chinese passages), so a same-language search is never touched.  Its weight in
the fusion grows with how much of the query the dictionary covered and how
much of the translation the best passage holds, as the query's own words do
(:mod:`search.fusion`).  The rules (candidates per word, phrases, inflections)
were chosen by ``python -m bench.translation_ablation`` (docs/quality.md,
"Translation bridge").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from indexer.analyze import Analyzer
from indexer.bilingual import MAX_GLOSS_WORDS, Dictionary, dictionary

from . import fusion
from .highlight import is_stop
from .store import Filters, LexicalRetrieved, Snapshot, Within


@dataclass(frozen=True)
class Rules:
    """How queries are translated and weighed; the defaults are the measured best (docs/quality.md,
    "Translation bridge", where ``python -m bench.translation_ablation`` varies each field)."""

    candidates: int = 2  # Chinese headwords searched per English word or phrase (the most direct first)
    glosses: int = 2  # English glosses searched per Chinese word
    phrases: bool = True  # look up two- and three-word phrases ("stock exchange") before single words
    inflections: bool = True  # try base forms ("students" → "student") of words that are no gloss
    max_weight: float = 1.0  # the bridge's weight when the query is fully translated and matched
    by_match: bool = True  # weigh the bridge also by how much of the translation its best passage holds


#: The rules searches use.
RULES = Rules()
#: Script gap (0..1, as :func:`search.fusion.cjk_share` measures it) from which query and passages differ in language.
CROSSING = 0.5
#: Best bridge passages whose script is compared with the query's.
SCRIPT_SAMPLE = 5

_LATIN = re.compile(r"[A-Za-z][A-Za-z'-]*|\d+(?:[.,]\d+)*")
#: Question words and fillers that say nothing about the passage sought.
_QUESTION_WORDS = frozenset("many much can could would should will has have had there their its it they he she "
                            "his her them than into about after before during".split())
#: Inflection endings tried, in order, when a word itself is no gloss (``students`` → ``student``).
_ENDINGS = (("ies", "y"), ("es", ""), ("s", ""), ("ied", "y"), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"))


@dataclass(frozen=True)
class Translation:
    """What a query is also searched as: ``terms`` in the other language, and the share of the query they cover."""

    terms: tuple[str, ...]
    covered: float  # share of the query's content words that the dictionary translated (0..1)


@dataclass(frozen=True)
class Bridged:
    """The bridge's BM25 retrieval for one query, with its weight in the fusion."""

    translation: Translation
    retrieved: LexicalRetrieved
    weight: float


def translate(query: str, analyzer: Analyzer, words: Dictionary | None = None, rules: Rules | None = None
              ) -> Translation:
    """The query's words in the other language: Chinese for a mostly Latin-script query, English otherwise.

    Numbers and Latin-script names (GDP, 2008) are kept as they are in a
    translation to Chinese, where the passages hold them too.
    """
    words, rules = words or dictionary(), rules or RULES
    if fusion.cjk_share(query) >= CROSSING:
        return _to_english(query, analyzer, words, rules)
    return _to_chinese(query, words, rules)


def _to_chinese(query: str, words: Dictionary, rules: Rules) -> Translation:
    tokens = _LATIN.findall(query)
    lowered = [t.lower() for t in tokens]
    terms: dict[str, None] = {}
    content = translated = 0
    position = 0
    while position < len(tokens):
        longest = min(MAX_GLOSS_WORDS if rules.phrases else 1, len(tokens) - position)
        for size in range(longest, 1, -1):  # phrases first: "stock exchange"
            found = words.chinese(" ".join(lowered[position : position + size]))
            if found:
                terms.update(dict.fromkeys(found[: rules.candidates]))
                content, translated, position = content + 1, translated + 1, position + size
                break
        else:
            token, word = tokens[position], lowered[position]
            position += 1
            if is_stop(word) or word in _QUESTION_WORDS:
                continue
            content += 1
            if _kept_as_is(token):
                terms[word] = None
                translated += 1
            elif found := (_inflected(word, words.chinese) if rules.inflections else words.chinese(word)):
                terms.update(dict.fromkeys(found[: rules.candidates]))
                translated += 1
    return Translation(tuple(terms), translated / content if content else 0.0)


def _kept_as_is(token: str) -> bool:
    """Numbers and acronyms (2008, GDP, IT) mean the same in a Chinese passage."""
    return token[0].isdigit() or (len(token) > 1 and token.isupper())


def _inflected(word: str, look_up: Callable[[str], tuple[str, ...]]) -> tuple[str, ...]:
    """Translations of ``word`` or, failing that, of its first base form the dictionary knows."""
    found = look_up(word)
    for ending, base in _ENDINGS:
        if found:
            break
        if word.endswith(ending) and len(word) > len(ending) + 2:
            found = look_up(word[: -len(ending)] + base)
    return found


def _to_english(query: str, analyzer: Analyzer, words: Dictionary, rules: Rules) -> Translation:
    terms: dict[str, None] = {}
    content = translated = 0
    for word, _, _ in analyzer.words(query):
        if is_stop(word) or (len(word) == 1 and not word.isascii()):
            continue
        content += 1
        if word.isascii():  # a Latin-script name or number in a Chinese query
            terms[word] = None
            translated += 1
        elif found := words.english(word):
            terms.update(dict.fromkeys(found[: rules.glosses]))
            translated += 1
    return Translation(tuple(terms), translated / content if content else 0.0)


def bridged(
    snap: Snapshot, query: str, n: int, filters: Filters | None, within: Within | None = None
) -> Bridged | None:
    """The bridge's retrieval for ``query``, or None when it does not cross languages or finds nothing."""
    translation = translate(query, snap.analyzer)
    if not translation.terms:
        return None
    retrieved = snap.lexical(snap.analyzer.tokens(" ".join(translation.terms)), n, filters, within)
    if not len(retrieved.ids):
        return None
    nearest = list(snap.passage_texts([int(p) for p in retrieved.ids[:SCRIPT_SAMPLE]]).values())
    if fusion.script_gap(query, nearest) < CROSSING:
        return None
    matched = min(max(retrieved.coverage, 0.0), 1.0) if RULES.by_match else 1.0
    # capped like the query's own words, so the semantic side always keeps a say
    weight = min(RULES.max_weight * translation.covered * matched, fusion.MAX_LEXICAL_WEIGHT)
    return Bridged(translation, retrieved, weight) if weight > 0 else None

"""A parsed query's constraints, resolved to the passages that satisfy them: exact, global, store-agnostic.

A constraint is never left to a retriever's top list: a phrase is looked up
through the postings of the terms every occurrence of it must produce, then
checked on the passage text; a field range is matched against every value
the field holds.  What comes out restricts both retrievers (the stores'
filter mechanism), so a passage that satisfies the constraints is found
wherever it would rank.

**Phrases.**  Text is compared after the analyzer's folding
(:func:`indexer.analyze.normalize`: width, case, traditional to simplified),
so ``"軟件園"`` finds 软件园.  The candidates are the passages holding every
CJK bigram of the phrase (every occurrence of the phrase produces them), or,
for a phrase without CJK, its words; English words match as whole words.  A
two-character CJK phrase *is* its bigram, so its postings are the answer and
no text is read; so is one CJK character, which every occurrence puts in a
bigram or makes a word of its own (the embedded store lists those terms; the
Milvus one keeps terms hashed and cannot).  A phrase that yields no such term
(a lone digit, or one CJK character on Milvus) is checked on every passage.

**Cost.**  Reading and checking candidate texts is the work; it grows with
the candidates, i.e. the passages holding all of the phrase's bigrams: for a
phrase of the most common characters that can be a large share of the index
(docs/query-syntax.md, "What it costs", holds the measured bound).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from functools import lru_cache

import numpy as np

from indexer.analyze import BIGRAM_PREFIX, Analyzer, fold_sources, is_cjk, normalize

from .store import Filters, Snapshot, Within
from .syntax import FieldConstraint, ParsedQuery

#: Passages whose text is read per round trip while checking a phrase.
CHECK_CHUNK = 5000
_ASCII_WORD = re.compile(r"[a-z]{2,}")


@lru_cache(maxsize=256)
def phrase_pattern(phrase: str, *, raw: bool = False) -> re.Pattern[str]:
    """A regex finding ``phrase`` in normalized text: runs of space match any space (none between CJK
    characters), and a phrase starting or ending in a letter or digit only matches at a word boundary.

    ``raw=True`` gives the same pattern for the text *before* folding: each
    character becomes the class of the characters that fold into it
    (:func:`indexer.analyze.fold_sources`; folding is one character to one, so
    matches fall at the same places), which spares folding every candidate text.
    """
    literal = _raw_class if raw else re.escape
    parts = normalize(phrase).split()
    word_char = f"[{_raw_word_chars()}]" if raw else "[a-z0-9]"
    pieces = []
    for before, part in zip([None, *parts], parts, strict=False):
        if before is not None:
            pieces.append(r"\s*" if is_cjk(before[-1]) and is_cjk(part[0]) else r"\s+")
        pieces.extend(literal(ch) for ch in part)
    if parts and parts[0][0].isascii() and parts[0][0].isalnum():
        # the boundary is checked once the first character matched ("no word character before the one just
        # read"): written first, it would be tried at every position of every text, with a large class
        pieces.insert(1, f"(?<!{word_char}.)")
    if parts and parts[-1][-1].isascii() and parts[-1][-1].isalnum():
        pieces.append(f"(?!{word_char})")
    return re.compile("".join(pieces))


def _raw_class(ch: str) -> str:
    sources = fold_sources(ch)
    return re.escape(ch) if sources == ch else "[" + "".join(re.escape(c) for c in sources) + "]"


@lru_cache(maxsize=1)
def _raw_word_chars() -> str:
    """The characters that fold into an ASCII letter or digit, escaped for a regex class."""
    return "".join(re.escape(c) for ch in string.ascii_lowercase + string.digits for c in fold_sources(ch))


def phrase_spans(phrases: tuple[str, ...], text: str) -> tuple[tuple[int, int], ...]:
    """``(start, end)`` of every occurrence of each phrase in ``text``: one span per occurrence."""
    if not phrases:
        return ()
    norm = normalize(text)  # same length as text: offsets carry over
    return tuple(match.span() for phrase in phrases for match in phrase_pattern(phrase).finditer(norm))


def phrase_terms(phrase: str, analyzer: Analyzer) -> list[str]:
    """Index terms that every occurrence of ``phrase`` produces: its CJK bigrams, else its English words."""
    bigrams = [term for term, _, _ in analyzer.bigrams(phrase)]
    if bigrams:
        return bigrams
    return [word for word, _, _ in analyzer.words(phrase) if _ASCII_WORD.fullmatch(word)]


def candidates(snap: Snapshot, phrase: str) -> tuple[np.ndarray, bool]:
    """Sorted ids of the passages that may contain ``phrase``, and whether they all do (no text to check)."""
    terms = phrase_terms(phrase, snap.analyzer)
    norm = "".join(normalize(phrase).split())
    # a lone Chinese character is in a bigram or is a word of its own wherever it occurs: exact, if listed
    exact = snap.holding_character(norm) if len(norm) == 1 and is_cjk(norm) else None
    if exact is not None:
        return exact, True
    return snap.holding(terms), len(terms) == 1 and terms[0] == BIGRAM_PREFIX + norm  # a bigram's postings


def containing(snap: Snapshot, phrase: str, among: np.ndarray | None = None) -> np.ndarray:
    """Sorted ids of the passages (of ``among``, if given) whose text contains ``phrase``."""
    found, exact = candidates(snap, phrase)
    if among is not None:
        found = np.intersect1d(found, among, assume_unique=True)
    if exact:
        return found
    pattern = phrase_pattern(phrase, raw=True)
    kept = []
    for i in range(0, len(found), CHECK_CHUNK):
        texts = snap.passage_texts([int(p) for p in found[i : i + CHECK_CHUNK]])
        kept += [pid for pid, text in texts.items() if pattern.search(text)]
    return np.array(sorted(kept), dtype=np.int64)


def within(snap: Snapshot, parsed: ParsedQuery) -> Within | None:
    """The passages ``parsed``'s phrases and exclusions allow (None when it has neither)."""
    if not parsed.phrases and not parsed.exclusions:
        return None
    include = None
    for phrase in sorted(parsed.phrases, key=lambda p: -len(p.text)):  # longest first: usually the rarest
        include = containing(snap, phrase.text, include)
    excluded = [containing(snap, phrase.text, include) for phrase in parsed.exclusions]
    exclude = np.unique(np.concatenate(excluded)) if excluded else np.zeros(0, dtype=np.int64)
    key = (tuple(sorted({p.text for p in parsed.phrases})), tuple(sorted({p.text for p in parsed.exclusions})))
    return Within(include, exclude, key)


def field_filters(snap: Snapshot, parsed: ParsedQuery, filters: Filters | None) -> Filters | None:
    """``filters`` and the query's field constraints together: one value set per field.

    Constraints on one field in the query mean any of them (a range adds every
    stored value inside it); a field both in ``filters`` and in the query
    keeps the values both accept.
    """
    wanted: dict[str, set[str]] = {}
    for constraint in parsed.fields:
        wanted.setdefault(constraint.field, set()).update(_values(snap, constraint))
    merged: dict[str, tuple[str, ...]] = {key: tuple(sorted(values)) for key, values in wanted.items()}
    for key, values in (filters or {}).items():
        merged[key] = tuple(sorted(set(values) & set(merged[key]))) if key in merged else values
    return merged or None


def _values(snap: Snapshot, constraint: FieldConstraint) -> set[str]:
    if not constraint.is_range:
        return {constraint.value}
    return {value for value in snap.field_values(constraint.field) if constraint.matches(value)}


def empty_field(filters: Mapping[str, tuple[str, ...]] | None) -> bool:
    """True when some field accepts no value at all (a range nothing falls in)."""
    return any(not values for values in (filters or {}).values())

"""Find the parts of a passage that match the query, as character spans.

Spans, not markup: the CLI paints them with ANSI colours, the web page builds
``<mark>`` elements around escaped text, and a better highlighter later needs
no change in either.  Matching is done on the width-, case- and script-folded
text (:func:`indexer.analyze.normalize` keeps offsets, and folds traditional
Chinese to simplified character by character), with the same analyzer the
index uses, so what is highlighted is what the lexical side matched -- a query
in 繁體 lights up the 简体 passage and the reverse:

* the query's jieba words, found anywhere in the passage (``简单`` lights up
  inside ``安装简单``); English words only as whole words;
* the query's CJK bigrams, which catch words jieba cut differently;
* single characters and function words only when the query is nothing more.
"""

from __future__ import annotations

import re
from functools import lru_cache

from indexer.analyze import BIGRAM_PREFIX, Analyzer, normalize

# Folded like the terms they are compared with (為, 於, 這 in a query are 为, 于, 这 by then).
_STOP_CHARS = frozenset(normalize("的了是在和与及或等也都就而之其这那有为以于把被对中上下个吗呢吧啊"))
_STOP_WORDS = frozenset(
    "a an the of to in on at for by is are was were be been and or not with as from that this what which who "
    "whom whose when where why how did do does".split()
)


def query_terms(query: str, analyzer: Analyzer) -> tuple[str, ...]:
    """The strings to look for in passages, longest first."""
    words = {w for w, _, _ in analyzer.words(query)}
    bigrams = {b[len(BIGRAM_PREFIX) :] for b, _, _ in analyzer.bigrams(query)}
    content = [w for w in words if not is_stop(w)]
    terms = set(content) | {b for b in bigrams if not (set(b) & _STOP_CHARS)}
    meaningful = {t for t in terms if len(t) > 1 or t.isascii()}
    if not meaningful:  # a one-character or all-stop-word query: show what there is
        meaningful = terms or words
    return tuple(sorted(meaningful, key=lambda t: (-len(t), t)))


def is_stop(word: str) -> bool:
    return word in _STOP_WORDS or (len(word) == 1 and word in _STOP_CHARS)


@lru_cache(maxsize=256)
def _pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    parts = [rf"\b{re.escape(t)}\b" if t.isascii() else re.escape(t) for t in terms]
    return re.compile("|".join(parts))


def highlight_spans(terms: tuple[str, ...], text: str) -> tuple[tuple[int, int], ...]:
    """Merged ``(start, end)`` spans of ``text`` where any of ``terms`` occurs."""
    if not terms or not text:
        return ()
    norm = normalize(text)
    pattern = _pattern(terms)
    spans: list[list[int]] = []
    position = 0
    while position < len(norm):
        match = pattern.search(norm, position)
        if match is None:
            break
        start, end = match.span()
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
        position = start + 1  # overlapping terms (豹队 inside 黑豹队) extend the span
    return tuple((s, e) for s, e in spans)


def merge_spans(*groups: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """The union of several groups of spans, overlapping or touching ones merged, in order."""
    merged: list[list[int]] = []
    for start, end in sorted(span for group in groups for span in group):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((s, e) for s, e in merged)

"""Which sentence of a hit answers the query.

A passage is a few sentences; the reader wants the one that answers.  Each
sentence is judged by two pieces of evidence:

* meaning: the rescorer's cosine between the query and the sentence (stored
  per sentence at indexing time, so this costs one dot product per sentence
  and works for an English question over a Chinese sentence);
* words: the share of the passage's highlighted characters that fall inside
  the sentence (the query's own words, when it has any there).

The sentence with the highest ``cosine + LEXICAL_BONUS * share`` wins.
Without sentence vectors, only words can speak: the sentence holding most of
the highlights is the answer, and with no highlight there is none.
"""

from __future__ import annotations

import numpy as np

from indexer.records import SentenceVectors
from indexer.split import sentences

#: How much a sentence holding all of a passage's query words gains over one holding none.
#: USE cosines between a question and the sentences of one passage differ far less than they
#: range across questions, so a bonus of this size lets matching words settle close calls
#: without overriding a clearly better meaning match.
LEXICAL_BONUS = 0.2


def answer_span(
    text: str,
    highlights: tuple[tuple[int, int], ...],
    vectors: SentenceVectors | None,
    query_vector: np.ndarray | None,
) -> tuple[int, int] | None:
    """``(start, end)`` in ``text`` of the answering sentence, or None when nothing relates."""
    if vectors is not None and query_vector is not None and len(vectors.spans):
        spans = list(vectors.spans)
        meaning = vectors.sentences @ query_vector
    else:
        spans = sentences(text)
        meaning = np.zeros(len(spans))
        if not highlights:
            return None
    if not spans:
        return None
    share = _highlight_share(spans, highlights)
    best = int(np.argmax(meaning + LEXICAL_BONUS * share))
    return spans[best]


def _highlight_share(spans: list[tuple[int, int]], highlights: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Fraction of all highlighted characters that lie inside each span."""
    total = sum(end - start for start, end in highlights)
    if total == 0:
        return np.zeros(len(spans))
    return np.array(
        [sum(max(0, min(e, he) - max(s, hs)) for hs, he in highlights) / total for s, e in spans]
    )

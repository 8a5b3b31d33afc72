"""Fusion of dense and lexical evidence: pure functions over scores.

Why not plain Reciprocal Rank Fusion: RRF gives the lexical list a vote
whatever it matched.  For an English question over Chinese passages BM25
matches nothing meaningful, yet its "ranking" of noise still reorders the
dense list, so RRF of e5 and BM25 ranks such questions far below e5 alone
(docs/quality.md, "Fusion rules compared", holds the measured MRR@10 of both).
Even a small RRF weight hurts, because reciprocal-rank scores are nearly flat
at the top.

The rule used here instead:

1. Both retrievers score the *same* candidate set (the union of their top
   lists), each exactly, so no candidate is missing a score.
2. Each score list is min-max normalised over the candidates.
3. The lexical side's weight grows with its **coverage**: the share of the
   query's IDF mass that the best lexical passage actually contains.  A
   Chinese question whose words appear in a passage gets a strong lexical
   vote; an English question over Chinese text matches (almost) nothing and
   gets (almost) none, so the dense order stands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: Weight of the lexical side when the best lexical passage holds the whole
#: query; the weight falls linearly with coverage.  Chosen on the three dev
#: collections together (bench/experiments/fusion_ablation.py): maxima from 0.5 to 1.0
#: score about the same, so the value is not fragile (docs/quality.md, "Fusion
#: rules compared", rows "lexical weight max").
MAX_LEXICAL_WEIGHT = 0.8


def coverage(query_idf: Mapping[str, float], matched: set[str]) -> float:
    """Share of the query's IDF mass found in a passage (0..1)."""
    total = sum(query_idf.values())
    if total <= 0:
        return 0.0
    return sum(w for t, w in query_idf.items() if t in matched) / total


def lexical_weight(cover: float) -> float:
    """Weight of the lexical side for a query with this coverage (0..MAX)."""
    return MAX_LEXICAL_WEIGHT * min(max(cover, 0.0), 1.0)


def minmax(scores: np.ndarray) -> np.ndarray:
    """Scale to 0..1; a constant list (or one score) maps to all ones."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    low, high = float(scores.min()), float(scores.max())
    if high - low <= 1e-12:
        return np.ones_like(scores)
    return (scores - low) / (high - low)


#: The rescorer's share of the semantic score when query and passages are in different scripts
#: (an English question over Chinese text), split evenly between its passage and best-sentence
#: cosines.  In the same script the primary model alone is better (e5 beats USE on the
#: Chinese-Chinese sets) and the rescorer gets no share; in between, a share in proportion.
#: Measured by bench/experiments/fusion_ablation.py: docs/quality.md, "Fusion rules compared".
MAX_RESCORER_SHARE = 0.5


def cjk_share(text: str) -> float:
    """Share of the non-space characters of ``text`` that are CJK ideographs."""
    chars = [ch for ch in text if not ch.isspace()]
    return sum("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in chars) / max(len(chars), 1)


def rescorer_share(query: str, passages: Sequence[str]) -> float:
    """The rescorer's share for this query: :data:`MAX_RESCORER_SHARE` × the script gap (0..1)
    between the query and the passages it is about to be compared with."""
    return MAX_RESCORER_SHARE * min(script_gap(query, passages), 1.0)


def script_gap(query: str, passages: Sequence[str]) -> float:
    """How far apart (0..1) the query's script is from the passages' on average: near 1 when an English
    query meets Chinese passages, near 0 when both share a language (0 without passages)."""
    if not passages:
        return 0.0
    return abs(cjk_share(query) - sum(map(cjk_share, passages)) / len(passages))


def semantic(parts: list[np.ndarray], share: float = 0.0) -> np.ndarray:
    """The semantic score of the same candidates: the primary model's cosines alone, or mixed with the
    rescorer's passage and best-sentence cosines (``parts[1:]``), each min-max normalised, the rescorer
    taking ``share`` of the weight."""
    if len(parts) == 1 or share <= 0.0:
        return np.asarray(parts[0], dtype=np.float64)
    primary, passage, sentence = parts
    return (1.0 - share) * minmax(primary) + share / 2 * (minmax(passage) + minmax(sentence))


def combine(dense: np.ndarray, lexical: np.ndarray, weight: float) -> np.ndarray:
    """Convex combination of normalised dense and lexical scores of the same candidates."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError("weight must be within 0..1")
    if weight == 0.0:
        return minmax(dense)
    return (1.0 - weight) * minmax(dense) + weight * minmax(lexical)

"""Fusion of dense and lexical evidence: pure functions over scores.

Why not plain Reciprocal Rank Fusion: RRF gives the lexical list a vote
whatever it matched.  For an English question over Chinese passages BM25
matches nothing meaningful, yet its "ranking" of noise still reorders the
dense list (measured: dense alone 0.804 MRR@10, RRF 0.456).  Even a small RRF
weight hurts, because reciprocal-rank scores are nearly flat at the top.

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

from collections.abc import Mapping

import numpy as np

#: Weight of the lexical side when the best lexical passage holds the whole
#: query; the weight falls linearly with coverage.  Chosen on the three dev
#: collections together (bench/fusion_ablation.py): 0.7 to 1.0 all score
#: within 0.002 MRR@10 of each other, so the value is not fragile.
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


#: Shares of the semantic side when a rescorer is present: the primary model's
#: passage score, the rescorer's passage score and its best sentence score.
#: Equal weight for the two models, the rescorer's split evenly between its two
#: views; bench/quality_levers.py shows the neighbourhood is flat.
SEMANTIC_SHARES = (0.5, 0.25, 0.25)


def semantic(parts: list[np.ndarray]) -> np.ndarray:
    """Min-max normalised semantic scores of the same candidates, mixed by :data:`SEMANTIC_SHARES`.

    One part (no rescorer) is returned as it is, so the scores shown stay cosines.
    """
    if len(parts) == 1:
        return np.asarray(parts[0], dtype=np.float64)
    return sum(share * minmax(part) for share, part in zip(SEMANTIC_SHARES, parts, strict=True))


def combine(dense: np.ndarray, lexical: np.ndarray, weight: float) -> np.ndarray:
    """Convex combination of normalised dense and lexical scores of the same candidates."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError("weight must be within 0..1")
    if weight == 0.0:
        return minmax(dense)
    return (1.0 - weight) * minmax(dense) + weight * minmax(lexical)

"""Which adjacent segments to merge: the tiered policy and ``souyi optimize``'s plan (docs/index-format.md).

Every batch adds one segment, so without merges a search would visit one
more segment per batch.  Segments are grouped in **tiers** by their live
passage count (tier ``t`` holds ``10**t`` to ``10**(t+1) - 1`` passages);
when a tier holds more than :data:`SEGMENTS_PER_TIER` segments, the
:data:`SEGMENTS_PER_TIER` adjacent segments of that tier or below with the
fewest live passages are merged into one.  Each merge removes
``SEGMENTS_PER_TIER - 1`` segments and its result lands in the same tier or
the next, so an index keeps at most about ``SEGMENTS_PER_TIER`` segments per
tier: a bound that grows with the logarithm of its size, while a passage is
rewritten about once per tier it climbs.

Tiers alone would let an index keep up to :data:`SEGMENTS_PER_TIER` segments
just under :data:`indexer.ann.FLAT_MAX` passages, each searched exactly: a
query would scan nearly ten times the vectors of the largest index souyi
searches exactly.  So segments searched exactly (``flat``, chosen by size)
also share one **exact-search budget**: together they hold at most
``FLAT_MAX`` passages; above it, the shortest run of adjacent flat segments
holding more than ``FLAT_MAX`` live passages is merged into one searched by
IVF.

Only adjacent segments are merged, so segments keep disjoint, increasing
passage-id ranges.  The functions here look at manifest entries only; the
writer (:mod:`indexer.store`) performs a merge as a batch of its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from . import ann

#: Segments a tier may hold before the writer merges some of them (Lucene's ``segmentsPerTier``).
SEGMENTS_PER_TIER = 10


def deleted(entry: dict) -> int:
    """Deleted passages a manifest segment entry still holds."""
    return int(entry.get("deleted_passages", 0))


def live(entry: dict) -> int:
    """Passages of a manifest segment entry that are not deleted."""
    return int(entry["passages"]) - deleted(entry)


def tier(entry: dict) -> int:
    """The tier of a segment: the number of digits of its live passage count, minus one (0 for an empty one)."""
    return int(math.log10(live(entry))) if live(entry) > 0 else 0


def next_merge(entries: Sequence[dict], per_tier: int | None = None) -> range | None:
    """The run of adjacent segments (indexes into ``entries``) the tiered policy merges next, or None.

    ``per_tier`` defaults to :data:`SEGMENTS_PER_TIER` as it is when called
    (the crash test lowers it, so that merges are frequent enough to be killed).

    The lowest tier over its bound is served first; its run is the window of
    ``per_tier`` adjacent segments, none in a higher tier, with the fewest
    live passages.  Should the tier's segments never be ``per_tier`` in a row
    (bigger ones between them), the window of ``per_tier`` adjacent segments
    with the fewest live passages is taken, whatever their tiers.
    """
    per_tier = per_tier or SEGMENTS_PER_TIER
    tiers = [tier(e) for e in entries]
    for t in sorted(set(tiers)):
        if tiers.count(t) <= per_tier:
            continue
        windows = [range(i, i + per_tier) for i in range(len(entries) - per_tier + 1)]
        low = [w for w in windows if all(tiers[i] <= t for i in w)]
        return _fewest(entries, low or windows)
    return exact_budget_run(entries)


def searched_exactly(entry: dict) -> bool:
    """Whether a segment is flat because of its size (not because the index asked for flat everywhere)."""
    vectors = entry.get("ann") or {}
    return vectors.get("kind") == "flat" and vectors.get("requested", "auto") == "auto"


def exact_budget_run(entries: Sequence[dict], budget: int | None = None) -> range | None:
    """The run of adjacent flat segments to merge into an IVF one when flat segments together hold more than
    ``budget`` passages (default :data:`indexer.ann.FLAT_MAX` as it is when called), or None.

    Of the runs of flat segments holding more than ``budget`` live passages
    (so that their merge is searched by IVF), the one with the fewest: the
    merge that rewrites the least.  None as well when no such run exists
    (flat segments kept apart by larger ones); the tiers still bound them.
    """
    budget = ann.FLAT_MAX if budget is None else budget
    flat = [searched_exactly(e) for e in entries]
    if sum(int(e["passages"]) for e, f in zip(entries, flat, strict=True) if f) <= budget:
        return None
    windows = []
    for start in range(len(entries)):
        held = 0
        for end in range(start, len(entries)):
            if not flat[end]:
                break
            held += live(entries[end])
            if held > budget:
                if end > start:
                    windows.append(range(start, end + 1))
                break
    return _fewest(entries, windows) if windows else None


def optimize_run(entries: Sequence[dict], max_segments: int) -> range | None:
    """The run of adjacent segments whose merge leaves ``max_segments`` segments; when no more are left, the
    one segment holding the most deleted passages (rewritten without them); None when neither is left.

    Of the windows of the needed length, the one with the fewest live
    passages: the merge that rewrites the least.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    if len(entries) <= max_segments:
        held = [deleted(e) for e in entries]
        if not any(held):
            return None
        most = max(range(len(entries)), key=lambda i: (held[i], -i))
        return range(most, most + 1)
    width = len(entries) - max_segments + 1
    return _fewest(entries, [range(i, i + width) for i in range(len(entries) - width + 1)])


def _fewest(entries: Sequence[dict], windows: Sequence[range]) -> range:
    return min(windows, key=lambda w: (sum(live(entries[i]) for i in w), w.start))

"""More like this: the passages nearest in meaning to one stored passage.

The passage's own stored vector is the query (nothing is embedded again), so
the neighbours are exactly what dense retrieval would return for a query
that meant what the passage means; scores are the same inner products that
dense hits carry, and ranks count from 1 as in a search.
"""

from __future__ import annotations

from indexer.errors import BadQuery, PassageNotFound

from .hits import Hit
from .query import check_paging
from .store import Snapshot


def similar_hits(snapshot: Snapshot, passage_id: object, k: int, same_document: bool) -> list[Hit]:
    """The ``k`` passages nearest to ``passage_id``, itself excluded.

    ``same_document`` False keeps only passages of *other* documents (the
    default of :meth:`search.Searcher.similar`: what else in the collection says
    this); True ranks every other passage, those of the same document included.
    """
    if isinstance(passage_id, bool) or not isinstance(passage_id, int) or passage_id < 0:
        raise BadQuery(f"passage_id must be a whole number >= 0, got {passage_id!r}")
    k, _ = check_paging(k, 0)
    vector = snapshot.passage_vectors([passage_id]).get(passage_id)
    seed = snapshot.passages([passage_id]).get(passage_id)
    if vector is None or seed is None:
        raise PassageNotFound(f"no passage {passage_id} in this index")
    found = _neighbours(snapshot, vector, k, passage_id, None if same_document else seed.doc_name)
    records = snapshot.passages([pid for pid, _ in found])
    shown = [(pid, score, records[pid]) for pid, score in found if pid in records]
    return [
        Hit(passage_id=pid, doc_id=rec.doc_name, title=rec.title, paragraph=rec.paragraph, start=rec.start,
            end=rec.end, text=rec.text, score=round(score, 6), rank=rank, dense_rank=rank, lexical_rank=None,
            highlights=(), heading=rec.heading, meta=rec.meta)
        for rank, (pid, score, rec) in enumerate(shown, start=1)
    ]


def _neighbours(snapshot: Snapshot, vector, k: int, seed: int, other_than: str | None) -> list[tuple[int, float]]:
    """The ``k`` best (id, score) pairs, skipping ``seed`` and the passages of document ``other_than``.

    Candidates are asked for in growing rounds: the passages skipped are few
    unless the seed's own document is long, and then a round or two more finds the rest.
    """
    wanted = k + 1
    while True:
        dense = snapshot.dense(vector, min(wanted, snapshot.size), None)
        ids = [int(p) for p in dense.ids if int(p) != seed]
        if other_than is not None:
            docs = snapshot.passages(ids)
            ids = [p for p in ids if p in docs and docs[p].doc_name != other_than]
        if len(ids) >= k or wanted >= snapshot.size:
            scores = dict(zip((int(p) for p in dense.ids), (float(s) for s in dense.scores), strict=True))
            return [(p, scores[p]) for p in ids[:k]]
        wanted *= 4

"""Which FAISS index holds the passage vectors, how it is built, updated and searched.

Exact search (``IndexIDMap2(IndexFlatIP)``) reads every vector for every
query: 1.5 KB per 384-dim passage in memory and a scan that grows with the
corpus.  Above :data:`FLAT_MAX` passages the vectors go into an **IVF index
with 8-bit scalar quantization** instead (``IndexIVFScalarQuantizer``,
``QT_8bit``): a quarter of the memory, and a query scans only the ``nprobe``
closest of ``nlist`` clusters.  IVF rather than HNSW because it supports what
the store needs from an incremental index: ``remove_ids`` (a changed document
drops its old passages; HNSW cannot delete), cheap adds (one assignment to
the nearest centroid), and ``reconstruct`` by passage id through a hash-table
direct map, which fusion uses to score candidates that only BM25 found.  The
measurements behind the choice and the constants are in
``docs/performance.md`` (``bench/ann_recall.py``).

``requested`` is ``"auto"`` (by size), ``"flat"`` or ``"ivf"``; the store
records it in the manifest so every later batch keeps the user's choice.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Sequence

import faiss
import numpy as np

logger = logging.getLogger(__name__)

KINDS = ("auto", "flat", "ivf")
#: Largest passage count searched exactly when the choice is automatic.
FLAT_MAX = 50_000
#: An automatic IVF index goes back to exact search only below this (hysteresis: no flip-flop at the edge).
FLAT_RETURN = FLAT_MAX // 2
#: Training points per IVF centroid: enough for stable k-means, few enough to keep training a small part
#: of a large build (build times: docs/performance.md, "Building and updating the scale-test indexes").
TRAIN_PER_CENTROID = 40
#: Lists probed per query, as a share of ``nlist`` (with a floor): 32 of 512 lists at 100k passages,
#: 64 of 2048 at 1M; recall@10 against exact search and the time it costs are in docs/performance.md
#: (``bench/ann_recall.py``).
NPROBE_SHARE = 1 / 32
NPROBE_MIN = 32
#: An IVF index is rebuilt with more lists once ``2·√n`` outgrows its ``nlist`` by this factor (the
#: nearest power of two then doubles): with longer lists every probe scans more and recall at the
#: same probed share falls.
REBUILD_GROWTH = 1.5
#: A filtered search over at most this many passages scores them exactly instead of probing clusters
#: (reconstructing a quantized vector by id is cheap, but at many allowed passages probing more lists
#: was faster at the same recall; docs/performance.md, "Where the time goes", Filters).
EXACT_FILTER_MAX = 2_000
#: A filter multiplies nprobe by 1 / (share of passages allowed), at most this much: beyond it recall
#: gained little for the time (recall@10 at this cap: docs/performance.md, "Where the time goes", Filters).
FILTER_NPROBE_MAX = 4
#: A restriction that keeps at least this share of an index's passages (mostly a segment's deletions) probes
#: as many lists as none: rounding its 1 / share up would double nprobe for a few deleted passages.
FILTER_NPROBE_FROM = 0.9


def check_kind(requested: str) -> str:
    """``requested`` if it is a known index kind, else ValueError naming the choices."""
    if requested not in KINDS:
        raise ValueError(f"unknown ANN index kind {requested!r}; choose one of {', '.join(KINDS)}")
    return requested


def plan(n: int, requested: str = "auto") -> str:
    """The index kind (``flat`` or ``ivf``) for ``n`` passages."""
    if check_kind(requested) != "auto":
        return requested
    return "flat" if n <= FLAT_MAX else "ivf"


def nlist_for(n: int) -> int:
    """IVF clusters for ``n`` passages: the power of two nearest ``2·√n`` (≈ 500 passages a list at 1M)."""
    return max(1, 2 ** round(math.log2(max(1.0, 2 * math.sqrt(n)))))


def nprobe_for(nlist: int) -> int:
    """Clusters probed per query at the default setting."""
    return min(nlist, max(NPROBE_MIN, round(nlist * NPROBE_SHARE)))


def kind_of(index: faiss.Index) -> str:
    """``flat`` or ``ivf``: what a loaded index is."""
    return "ivf" if isinstance(faiss.downcast_index(index), faiss.IndexIVF) else "flat"


def lists_fit(nlist: int, n: int) -> bool:
    """Whether ``nlist`` IVF lists suit an index of ``n`` passages: ``2·√n`` is neither more than
    :data:`REBUILD_GROWTH` times ``nlist`` (lists too long) nor under a quarter of it."""
    ideal = 2 * math.sqrt(n)
    return nlist / 4 <= ideal <= REBUILD_GROWTH * nlist


def nlist_for_part(n: int, total: int) -> int:
    """IVF lists for ``n`` passages that are part of an index of ``total``: the whole index's
    :func:`nlist_for`, so that later parts can share the training (:func:`build`'s ``trained``), as far
    as ``n`` passages can train that many centroids (:data:`TRAIN_PER_CENTROID` each), and never fewer
    than ``n`` passages alone would get."""
    trainable = 2 ** int(math.log2(max(1, n // TRAIN_PER_CENTROID)))
    return min(max(nlist_for(n), min(nlist_for(max(n, total)), trainable)), n)


def build(vectors: np.ndarray, ids: np.ndarray, dim: int, requested: str = "auto", *, total: int | None = None,
          trained: faiss.Index | None = None) -> faiss.Index:
    """A new index of the kind :func:`plan` picks, holding ``vectors`` under passage ``ids``.

    IVF centroids are trained on a random sample of ``vectors`` (fixed seed,
    so a rebuild of the same passages gives the same index), as many as an
    index of ``total`` passages wants (:func:`nlist_for_part`; default: these
    passages alone).  Or, given ``trained`` (an IVF index), its centroids and
    quantizer ranges are taken as they are: the two indexes then assign and
    encode every vector alike, so :func:`search_alike` can probe both with one
    assignment, as one index of their passages (docs/index-format.md,
    "IVF segments share a training").
    """
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # training and adding do use every core
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dim)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    kind = plan(len(ids), requested)
    if kind == "flat" or len(ids) == 0:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    elif trained is not None:
        index = _empty_like(trained)
        logger.info("IVF index of %d vectors shares a trained one's %d lists", len(ids), index.nlist)
    else:
        nlist = nlist_for_part(len(ids), total or len(ids))
        index = _ivf(faiss.IndexFlatIP(dim), nlist)
        index.cp.niter = 10
        sample = min(len(ids), TRAIN_PER_CENTROID * nlist)
        rows = np.sort(np.random.default_rng(0).choice(len(ids), sample, replace=False))
        index.train(vectors[rows])
        logger.info("trained IVF index: %d lists on %d of %d vectors, nprobe %d", nlist, sample, len(ids), index.nprobe)
    if len(ids):
        index.add_with_ids(vectors, ids)
    return index


def needs_rebuild(index: faiss.Index, n: int, requested: str = "auto") -> bool:
    """True when an index that will hold ``n`` passages should be rebuilt rather than updated.

    It should when the kind changes (with hysteresis around :data:`FLAT_MAX`)
    or when an IVF index's clusters no longer fit the size: ``2·√n`` more than
    :data:`REBUILD_GROWTH` times ``nlist`` (lists too long) or under a quarter of it.
    """
    kind = kind_of(index)
    if requested != "auto":
        wanted = plan(n, requested)
    elif kind == "ivf":
        wanted = "flat" if n < FLAT_RETURN else "ivf"
    else:
        wanted = plan(n)
    if wanted != kind:
        return True
    return kind != "flat" and not lists_fit(faiss.downcast_index(index).nlist, n)


def _empty_like(trained: faiss.Index) -> faiss.IndexIVFScalarQuantizer:
    """An empty IVF index with ``trained``'s centroids and scalar quantizer ranges (no vectors copied)."""
    source = faiss.downcast_index(trained)
    quantizer = faiss.IndexFlatIP(source.d)
    quantizer.add(source.quantizer.reconstruct_n(0, source.nlist))
    index = _ivf(quantizer, source.nlist)
    faiss.copy_array_to_vector(faiss.vector_to_array(source.sq.trained), index.sq.trained)
    index.is_trained = True
    return index


def _ivf(quantizer: faiss.IndexFlatIP, nlist: int) -> faiss.IndexIVFScalarQuantizer:
    """An IVF index over ``quantizer``'s lists, as the store builds them.

    Codes of the vectors themselves, not of their residuals to the centroid:
    the same recall@10 at 1M passages for less time per scanned list
    (docs/performance.md, "How the vector index is chosen").
    """
    index = faiss.IndexIVFScalarQuantizer(quantizer, quantizer.d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                          faiss.METRIC_INNER_PRODUCT, False)
    index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct and remove by passage id
    index.nprobe = nprobe_for(nlist)
    return index


def training_key(index: faiss.Index) -> bytes | None:
    """What an IVF index was trained to (its centroids and quantizer ranges), as a digest: indexes with the
    same key assign and encode vectors alike (:func:`search_alike`).  None for an exact index."""
    if kind_of(index) != "ivf":
        return None
    ivf = faiss.downcast_index(index)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(ivf.quantizer.reconstruct_n(0, ivf.nlist).tobytes())
    digest.update(faiss.vector_to_array(ivf.sq.trained).tobytes())
    return digest.digest()


def update(index: faiss.Index, removed: np.ndarray, ids: np.ndarray, vectors: np.ndarray) -> None:
    """Remove the passages ``removed`` and add ``vectors`` under ``ids``, in place."""
    if len(removed):
        index.remove_ids(np.asarray(removed, dtype=np.int64))
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))


class Allowed:
    """The passage ids a filtered search may return, with their FAISS selector built once.

    A bitmap over passage ids (an eighth of a byte per id up to the largest
    allowed one) rather than ``IDSelectorBatch``'s hash set: building it for
    100,000 ids and testing every probed vector against it are both cheap, and
    a searcher keeps it for as long as the same filter comes back.
    """

    def __init__(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        # ids from a store come sorted: checking is linear, np.unique would hash them all again
        self._ids = ids if bool(np.all(ids[1:] > ids[:-1])) else np.unique(ids)
        self._kept_of, self._removed, self._count = None, None, len(self._ids)
        size = int(self._ids[-1]) + 1 if len(self._ids) else 0
        bits = np.zeros(size, dtype=bool)
        bits[self._ids] = True
        self._bitmap = np.packbits(bits, bitorder="little")  # the selector reads this buffer: keep it alive
        # its size argument is the bitmap's length in bytes: ids past the end are not members
        self.selector = faiss.IDSelectorBitmap(len(self._bitmap), faiss.swig_ptr(self._bitmap))

    @property
    def ids(self) -> np.ndarray:
        """The allowed ids, sorted (for a set made by :meth:`without`, worked out when first asked)."""
        if self._kept_of is not None:
            source = self._kept_of.ids
            self._ids = source[~np.isin(source, self._removed, assume_unique=True)]
            self._kept_of = None
        return self._ids

    def __len__(self) -> int:
        return self._count

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """Which of ``ids`` are allowed (boolean, in their order), read from the bitmap the selector reads."""
        ids = np.asarray(ids, dtype=np.int64)
        found = np.zeros(len(ids), dtype=bool)
        inside = (ids >= 0) & (ids < len(self._bitmap) * 8)
        at = ids[inside]
        found[inside] = (self._bitmap[at >> 3] >> (at & 7).astype(np.uint8)) & 1 == 1
        return found

    def without(self, removed: np.ndarray) -> Allowed:
        """These ids minus ``removed`` (sorted), at the cost of the removed ones: the bitmap is copied and
        their bits cleared, so excluding a few passages from a large allowed set stays cheap."""
        removed = np.asarray(removed, dtype=np.int64)
        if not len(removed) or not len(self):
            return self
        at = np.searchsorted(self.ids, removed)
        present = removed[(at < len(self.ids)) & (self.ids[np.minimum(at, len(self.ids) - 1)] == removed)]
        out = Allowed.__new__(Allowed)
        out._bitmap = self._bitmap.copy()
        np.bitwise_and.at(out._bitmap, present >> 3, ~np.left_shift(1, present & 7).astype(np.uint8))
        out.selector = faiss.IDSelectorBitmap(len(out._bitmap), faiss.swig_ptr(out._bitmap))
        out._kept_of, out._removed, out._count = self, present, len(self.ids) - len(present)
        return out


def probe_scale(total: int, allowed: Allowed | None) -> int:
    """How many times more IVF lists a search restricted to ``allowed`` of ``total`` passages probes."""
    return 1 if allowed is None else _probe_factor(total, len(allowed))


def _probe_factor(total: int, kept: int) -> int:
    if kept >= FILTER_NPROBE_FROM * total:
        return 1
    return min(FILTER_NPROBE_MAX, math.ceil(total / max(1, kept)))


def search(
    index: faiss.Index, vector: np.ndarray, n: int, allowed: Allowed | None = None, nprobe: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``n`` passage ids and inner products for one query, optionally only among ``allowed`` ids.

    IVF searches probe ``nprobe`` lists, by default :func:`nprobe_for` the
    index's ``nlist`` (a search-time setting: a better default applies to
    existing indexes without a rebuild).  A filter makes it probe more lists
    (up to :data:`FILTER_NPROBE_MAX` times as many, as the allowed share
    shrinks), and a filter that leaves few passages scores those exactly
    (probing would find too few of them).

    The search runs on the calling thread alone (OpenMP's thread count is a
    per-thread setting): one query gains nothing from OpenMP, and on a busy
    machine its barrier cost tens of times the single-threaded search
    (docs/performance.md, "ANN recall@10", the OpenMP row); concurrent queries
    are served by concurrent threads instead.
    """
    faiss.omp_set_num_threads(1)
    if n <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
    ivf = faiss.downcast_index(index) if kind_of(index) == "ivf" else None
    if ivf is not None and allowed is not None and len(allowed) <= EXACT_FILTER_MAX:
        scores = index.reconstruct_batch(allowed.ids) @ query[0]
        top = np.argsort(-scores, kind="stable")[:n]
        return allowed.ids[top], scores[top].astype(np.float32)
    params = None
    if ivf is not None:
        nprobe = nprobe or nprobe_for(ivf.nlist)
        nprobe = min(ivf.nlist, nprobe * probe_scale(ivf.ntotal, allowed))
        params = faiss.SearchParametersIVF(nprobe=nprobe)
    if allowed is not None:
        params = params or faiss.SearchParameters()
        params.sel = allowed.selector
    scores, ids = index.search(query, n, params=params)
    keep = ids[0] >= 0  # FAISS pads with -1 when it has fewer than n
    return ids[0][keep].astype(np.int64), scores[0][keep]


def search_alike(
    parts: Sequence[tuple[faiss.Index, Allowed | None]], vector: np.ndarray, n: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Top-``n`` passage ids and inner products of each IVF index of ``parts`` (each with the passages it may
    return, None: all), where every index has the same :func:`training_key`.

    The query is assigned to its lists once, and every index scans those
    lists: what one IVF index of all their passages, trained alike, would scan
    (:func:`nprobe_for` its ``nlist``, scaled as :func:`search` scales it for
    the share of passages the restrictions leave).  Segments trained apart
    would each probe their own ``nlist``'s share, at a floor: at ten segments,
    about twice the vectors for a lower recall (docs/performance.md,
    "Segments").  Single-threaded, as :func:`search`.
    """
    faiss.omp_set_num_threads(1)
    query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
    ivfs = [faiss.downcast_index(index) for index, _ in parts]
    total = sum(ivf.ntotal for ivf in ivfs)
    kept = sum(ivf.ntotal if allowed is None else len(allowed) for ivf, (_, allowed) in zip(ivfs, parts, strict=True))
    nlist = ivfs[0].nlist
    nprobe = min(nlist, nprobe_for(nlist) * _probe_factor(total, kept))
    centroid_scores, lists = ivfs[0].quantizer.search(query, nprobe)
    found = []
    for ivf, (_, allowed) in zip(ivfs, parts, strict=True):
        k = min(n, ivf.ntotal)
        if k <= 0:
            found.append((np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)))
            continue
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        if allowed is not None:
            params.sel = allowed.selector
        scores, ids = np.empty((1, k), dtype=np.float32), np.empty((1, k), dtype=np.int64)
        ivf.search_preassigned_c(1, faiss.swig_ptr(query), k, faiss.swig_ptr(lists), faiss.swig_ptr(centroid_scores),
                                 faiss.swig_ptr(scores), faiss.swig_ptr(ids), False, params)
        keep = ids[0] >= 0
        found.append((ids[0][keep], scores[0][keep]))
    return found


def ids_of(index: faiss.Index) -> np.ndarray:
    """Sorted passage ids held by ``index`` (for consistency checks)."""
    if kind_of(index) == "flat":
        return np.sort(faiss.vector_to_array(index.id_map))
    ivf = faiss.downcast_index(index)
    lists = ivf.invlists
    parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy() for i in range(ivf.nlist)]
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def describe(index: faiss.Index, requested: str = "auto") -> dict:
    """What the manifest records about a vector index."""
    if kind_of(index) == "flat":
        return {"requested": requested, "kind": "flat", "faiss": "IDMap2,FlatIP"}
    ivf = faiss.downcast_index(index)
    # nprobe is not recorded: it is a search-time setting derived from nlist (see search)
    return {"requested": requested, "kind": "ivf", "faiss": f"IVF{ivf.nlist},SQ8", "nlist": ivf.nlist}

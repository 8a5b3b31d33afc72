"""The public search API: open an index, ask it questions, get typed hits."""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from indexer.embedding import Embedder, load_embedder
from indexer.errors import BadQuery, ModelMismatch
from indexer.index_dir import Stamp, directory_stamp
from indexer.records import SentenceVectors
from indexer.stores import store_of

from . import constraints, fusion, syntax
from .answer import answer_span
from .constraints import phrase_spans
from .documents import Document, find_document
from .embedded import EmbeddedStore
from .highlight import highlight_spans, merge_spans, query_terms
from .hits import Hit
from .query import MAX_DEPTH, MAX_FILTERS, check_mode, check_paging, clean_query
from .results import Results, count_facets
from .similar import similar_hits
from .store import Filters, LexicalRetrieved, Retrieved, Snapshot, Store, Within
from .syntax import ParsedQuery
from .translate import Bridged, bridged

logger = logging.getLogger(__name__)

#: How many candidates each retriever contributes to hybrid fusion (at least).
CANDIDATES = 100
#: Nearest passages whose script is compared with the query's to weigh the rescorer.
SCRIPT_SAMPLE = 5


@dataclass(frozen=True)
class _Ranked:
    """Scores of one query's candidates, before passages are fetched."""

    ids: np.ndarray  # passage ids, best first
    scores: np.ndarray
    dense_rank: dict[int, int]
    lexical_rank: dict[int, int]
    sentences: dict[int, SentenceVectors]  # rescorer vectors of the candidates (empty without a rescorer)
    bridge: Bridged | None = None  # the query's translated words, when they were searched too


_NOTHING = _Ranked(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32), {}, {}, {})


def open_store(index_dir: str | os.PathLike[str]) -> Store:
    """The store that holds the index at ``index_dir`` (recorded in the directory's manifest), opened."""
    if store_of(index_dir) == "milvus":
        from .milvus import MilvusStore  # pymilvus is optional: imported only for a Milvus index

        return MilvusStore.open(index_dir)
    return EmbeddedStore.open(index_dir)


class Searcher:
    """Hybrid (dense + BM25) passage search over one index.

    Open it once and share it: searches from several threads are safe.  Each
    search first asks the store for its newest committed snapshot (for an
    index directory: one ``stat``), so results always come from the last
    committed state and never from half a batch.  An index rebuilt under the
    same path (``souyi index`` swaps a new directory in, perhaps of another
    store) is noticed by the directory's identity and opened in its place,
    keeping the loaded models; with ``follow_model`` a rebuild by another
    model loads that model, otherwise it raises :class:`~indexer.errors.ModelMismatch`.

    A hybrid search runs its BM25 retrieval on a worker thread while the
    calling thread embeds the query: the model releases the GIL, so on two
    cores the keyword side costs no wall time until it outgrows the embedding.
    """

    def __init__(
        self, store: Store, embedder: Embedder, rescorer: Embedder | None = None, *, follow_model: bool = False,
        translate: bool = True,
    ) -> None:
        self.follow_model = follow_model
        self.translate = translate  # the default of search(translate=...)
        self.embedder, self.rescorer = self._models_for(store, embedder, rescorer)
        self.store = store
        self._identity = directory_stamp(store.path)
        self._reopening = threading.Lock()
        self._lexical_pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="souyi-bm25")

    def _models_for(
        self, store: Store, embedder: Embedder, rescorer: Embedder | None, rebuilt: bool = False
    ) -> tuple[Embedder, Embedder | None]:
        """The embedder and rescorer to search ``store`` with: the ones given, checked against the index.

        The loaded models are kept while the index names them; after a rebuild
        the rescorer is always the index's own (a rebuild may name another one,
        or none), the embedder only with :attr:`follow_model`.
        """
        wanted = store.rescorer
        if self.follow_model and (embedder.model_id, embedder.dim) != (store.model_id, store.dim):
            embedder = load_embedder(store.model_id)
        if rebuilt and rescorer is not None and not _is_rescorer(rescorer, wanted):
            rescorer = None
        store.check_model(embedder.model_id, embedder.dim)
        if wanted and rescorer is None:
            rescorer = load_embedder(wanted["id"])
        if rescorer is not None and not _is_rescorer(rescorer, wanted):
            raise ModelMismatch(
                f"the index was built with rescorer {wanted['id'] if wanted else None!r}, not {rescorer.model_id!r}"
            )
        return embedder, rescorer

    @property
    def backend(self) -> Store:
        """Deprecated name of :attr:`store`."""
        warnings.warn("Searcher.backend is deprecated; use Searcher.store", DeprecationWarning, stacklevel=2)
        return self.store

    def _snapshot(self) -> Snapshot:
        """The newest committed state, from the index now at the path (reopened if it was rebuilt)."""
        identity = directory_stamp(self.store.path)
        if identity is not None and identity != self._identity:
            with self._reopening:
                if identity != self._identity:
                    self._reopen(identity)
        return self.store.snapshot()

    def _reopen(self, identity: Stamp) -> None:
        store = open_store(self.store.path)
        try:
            embedder, rescorer = self._models_for(store, self.embedder, self.rescorer, rebuilt=True)
        except BaseException:
            store.close()
            raise
        logger.info("%s was rebuilt; searching the new index", store.path)
        # the old store is left to the garbage collector: other threads may still search its snapshot
        self.store, self.embedder, self.rescorer, self._identity = store, embedder, rescorer, identity

    @classmethod
    def open(
        cls, index_dir: str | os.PathLike[str], model: str | Embedder | None = None, *, translate: bool = True
    ) -> Searcher:
        """Open the index at ``index_dir``.

        ``model`` defaults to the model that built the index (and then follows
        a rebuild with another one); naming another one raises
        :class:`~indexer.errors.ModelMismatch` before any search.  ``translate=False``
        turns the cross-language bridge off for every search of this searcher.
        """
        store = open_store(index_dir)
        if model is None or isinstance(model, str):
            if model is not None and model != store.model_id:
                store.check_model(model, store.dim)
            embedder = load_embedder(model or store.model_id)
        else:
            embedder = model
        return cls(store, embedder, follow_model=model is None, translate=translate)

    @property
    def size(self) -> int:
        """Passages in the newest committed state."""
        return self._snapshot().size

    def info(self) -> dict:
        """Passage count, model and format of the open index (for health checks)."""
        return self._snapshot().info()

    def search(
        self,
        query: str,
        k: int = 10,
        mode: str = "hybrid",
        offset: int = 0,
        filters: Mapping[str, object] | None = None,
        translate: bool | None = None,
    ) -> list[Hit]:
        """The ``k`` best passages for ``query`` after skipping ``offset``.

        ``mode`` is ``hybrid`` (default), ``dense`` or ``lexical``.
        ``query`` may hold phrases, exclusions and field constraints
        (:mod:`search.syntax`, docs/query-syntax.md): every hit satisfies them.
        ``filters`` restricts results to documents whose name (``doc``),
        ``title`` or metadata field equals the value given (or one of a list
        of values).  Raises :class:`~indexer.errors.BadQuery` for an empty or
        over-long query or bad ``k``/``offset``/``mode``/``filters``; asking
        for more than exists returns fewer.  ``translate=False`` turns off the
        cross-language bridge (:mod:`search.translate`): an English query over
        Chinese passages is otherwise also searched by its Chinese translations
        (None: the searcher's default, see :meth:`open`).
        """
        return self.search_many([query], k=k, mode=mode, offset=offset, filters=filters, translate=translate)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        mode: str = "hybrid",
        offset: int = 0,
        filters: Mapping[str, object] | None = None,
        translate: bool | None = None,
    ) -> list[list[Hit]]:
        """Batch form of :meth:`search`: one list of hits per query."""
        translate = self.translate if translate is None else translate
        k, offset = check_paging(k, offset)
        depth = k + offset
        _, found = self._run(queries, mode, filters, max(CANDIDATES, depth), offset, depth, translate)
        return [hits for hits, _, _ in found]

    def query(
        self,
        query: str,
        k: int = 10,
        mode: str = "hybrid",
        offset: int = 0,
        filters: Mapping[str, object] | None = None,
        facets: Sequence[str] = (),
        translate: bool | None = None,
    ) -> Results:
        """Like :meth:`search`, plus the total and facet counts of the whole result list.

        The result list is ranked to :data:`~search.query.MAX_DEPTH` passages
        whatever the page, so every page of one query is cut from the same
        list and ``facets`` (field names: ``doc``, ``title`` or metadata keys)
        count the values over all of it (docs/query-syntax.md).
        """
        k, offset = check_paging(k, offset)
        names = _check_facets(facets)
        translate = self.translate if translate is None else translate
        snap, ((hits, ranked, parsed),) = self._run([query], mode, filters, MAX_DEPTH, offset, k + offset, translate)
        ids = [int(p) for p in ranked.ids[:MAX_DEPTH]]
        counted = count_facets(snap.passages(ids).values(), names) if names and ids else {}
        also = ranked.bridge.translation.terms if ranked.bridge else ()
        return Results(tuple(hits), len(ids), {name: counted.get(name, []) for name in names}, parsed, also)

    def _run(
        self, queries: Sequence[str], mode: str, filters: Mapping[str, object] | None, n_candidates: int,
        offset: int, depth: int, translate: bool,
    ) -> tuple[Snapshot, list[tuple[list[Hit], _Ranked, ParsedQuery]]]:
        """Parse, constrain, rank and show ``queries`` on one snapshot: hits, ranked list and parse of each."""
        cleaned = [clean_query(q) for q in queries]
        mode = check_mode(mode)
        wanted = _check_filters(filters)
        snap = self._snapshot()  # one state for the whole batch
        try:
            plans = [_plan(snap, q, wanted) for q in cleaned]
            ranked: list[_Ranked | None] = [
                _NOTHING if plan.nothing else _ranked_constraints(snap, plan, n_candidates) if not plan.text else None
                for plan in plans
            ]
            free = [i for i, r in enumerate(ranked) if r is None]
            rescorer_vectors: dict[int, np.ndarray] = {}
            if mode == "lexical":  # both BM25 queries in this thread: a worker's hand-off costs more than either
                for i in free:
                    ranked[i] = _ranked_lexical(_lexical(snap, plans[i], n_candidates),
                                                _bridged(snap, plans[i], n_candidates, translate))
            elif free:
                lexical, bridges = {}, {}
                if mode == "hybrid":  # BM25 on a worker while this thread embeds the queries
                    lexical = {i: self._lexical_pool.submit(_lexical, snap, plans[i], n_candidates) for i in free}
                    bridges = {i: self._lexical_pool.submit(_bridged, snap, plans[i], n_candidates, translate)
                               for i in free}
                texts = [plans[i].text for i in free]
                vectors = self.embedder.encode_queries(texts)
                if self.rescorer:
                    rescorer_vectors = dict(zip(free, self.rescorer.encode_queries(texts), strict=True))
                for i, vector in zip(free, vectors, strict=True):
                    # the vector search before waiting for BM25: the worker's BM25 goes on meanwhile
                    dense = snap.dense(vector, n_candidates, plans[i].filters, plans[i].within)
                    ranked[i] = _rank(snap, plans[i], dense, rescorer_vectors.get(i),
                                      lexical[i].result() if i in lexical else None,
                                      bridges[i].result() if i in bridges else None)
            return snap, [
                (self._hits(snap, plan, r, offset, depth, rescorer_vectors.get(i)), r, plan.parsed)
                for i, (plan, r) in enumerate(zip(plans, ranked, strict=True))
            ]
        finally:  # whatever the search needed only while it ran (docs/performance.md, "Segments")
            snap.searched()

    def also_searched(self, query: str, filters: Mapping[str, object] | None = None) -> tuple[str, ...]:
        """The translated words :meth:`search` also searches ``query`` as (empty when the bridge is off or
        does not cross languages), for "also searched: …" lines."""
        if not self.translate:
            return ()
        snap = self._snapshot()
        plan = _plan(snap, clean_query(query), _check_filters(filters))
        found = _bridged(snap, plan, CANDIDATES, True) if plan.text and not plan.nothing else None
        return found.translation.terms if found else ()

    def _hits(
        self, snap: Snapshot, plan: _Plan, ranked: _Ranked, offset: int, depth: int,
        rescorer_vector: np.ndarray | None,
    ) -> list[Hit]:
        ids = [int(p) for p in ranked.ids[offset:depth]]
        if not ids:
            return []
        records = snap.passages(ids)
        shown = plan.text or " ".join(p.text for p in plan.parsed.phrases)
        terms = query_terms(shown, snap.analyzer) if shown else ()
        phrases = tuple(p.text for p in plan.parsed.phrases)
        translated = _longest_first(ranked.bridge.translation.terms) if ranked.bridge else ()
        sentences = ranked.sentences
        if rescorer_vector is None and self.rescorer is not None and shown:  # keyword mode: answers use sentences
            rescorer_vector = self.rescorer.encode_queries([shown])[0]
        if rescorer_vector is not None and not sentences:
            sentences = snap.sentence_vectors(ids)
        hits = []
        for position, pid in enumerate(ids):
            rec = records.get(pid)
            if rec is None:  # vector without a stored passage: never shown
                logger.warning("passage %d has a vector but no stored text", pid)
                continue
            hits.append(
                Hit(
                    passage_id=pid,
                    doc_id=rec.doc_name,
                    title=rec.title,
                    paragraph=rec.paragraph,
                    start=rec.start,
                    end=rec.end,
                    text=rec.text,
                    score=round(float(ranked.scores[offset + position]), 6),
                    rank=offset + position + 1,
                    dense_rank=ranked.dense_rank.get(pid),
                    lexical_rank=ranked.lexical_rank.get(pid),
                    highlights=(spans := merge_spans(highlight_spans(terms, rec.text),
                                                     phrase_spans(phrases, rec.text))),
                    heading=rec.heading,
                    meta=rec.meta,
                    answer=answer_span(rec.text, spans, sentences.get(pid), rescorer_vector),
                    translation_highlights=highlight_spans(translated, rec.text),
                )
            )
        return hits

    def document(self, doc_id: str, query: str | None = None) -> Document:
        """The indexed document ``doc_id`` (a ``Hit.doc_id``): text, paragraphs, passages and outline.

        With ``query``, ``highlights`` holds the spans of the text that match
        it (as ``Hit.highlights`` does for a passage).  Raises
        :class:`~indexer.errors.DocumentNotFound` for a name the index does
        not hold (names are only compared with the index's, never opened) and
        :class:`~indexer.errors.BadQuery` for an unusable ``query``.
        """
        return find_document(self._snapshot(), doc_id, query)

    def similar(self, passage_id: int, k: int = 10, same_document: bool = False) -> list[Hit]:
        """The ``k`` passages nearest in meaning to passage ``passage_id`` (its stored vector; not re-embedded).

        The passage itself is never returned.  ``same_document=False`` (the
        default) returns only passages of *other* documents; True also those
        of its own document.  Scores and ranks are those of dense hits.
        Raises :class:`~indexer.errors.PassageNotFound` for an id the index
        does not hold, :class:`~indexer.errors.BadQuery` for a bad id or ``k``.
        """
        return similar_hits(self._snapshot(), passage_id, k, same_document)

    def refresh(self) -> None:
        """Move to the newest committed state now, waiting while it loads: for a thread that follows the
        index (``souyi serve`` runs one), so that searches do not meet a new generation first."""
        self._snapshot()  # reopens an index rebuilt under the same path
        self.store.refresh()

    def close(self) -> None:
        """Release the index; the searcher cannot be used afterwards."""
        self._lexical_pool.shutdown(wait=True)
        self.store.close()


@dataclass(frozen=True)
class _Plan:
    """One query, parsed and its constraints resolved on one snapshot."""

    parsed: ParsedQuery
    text: str  # what is ranked by meaning and keywords ("" for a query of constraints only)
    filters: Filters | None
    within: Within | None
    nothing: bool  # the constraints leave no passage


def _plan(snap: Snapshot, query: str, filters: Filters | None) -> _Plan:
    """Parse ``query`` for ``snap``'s fields and resolve its constraints (raises :class:`BadQuery`)."""
    maybe_fields = any(mark in query for mark in ":<>")  # no store read for a query without a field
    parsed = syntax.parse(query, snap.field_names() if maybe_fields else ())
    count = len(parsed.constraints) + sum(len(values) for values in (filters or {}).values())
    if parsed.constrained and count > MAX_FILTERS:
        raise BadQuery(f"at most {MAX_FILTERS} constraints and filter values together, got {count}")
    if not parsed.text and not parsed.constrained:  # e.g. "" : quotes around nothing
        raise BadQuery("the query is empty; type some words to search for")
    text = parsed.ranking_text() if parsed.text else ""
    wanted = constraints.field_filters(snap, parsed, filters)
    if constraints.empty_field(wanted) or snap.matches_nothing(wanted):
        return _Plan(parsed, text, wanted, None, True)
    within = constraints.within(snap, parsed)
    return _Plan(parsed, text, wanted, within, within is not None and snap.matches_nothing(wanted, within))


def _ranked_constraints(snap: Snapshot, plan: _Plan, n: int) -> _Ranked:
    """A query of constraints only: the passages satisfying them, best first by the phrases' BM25,
    then the rest of them in document order."""
    terms = [t for p in plan.parsed.phrases for t in snap.analyzer.tokens(p.text)]
    lexical = snap.lexical(terms, n, plan.filters, plan.within) if terms else None
    ids = [] if lexical is None else [int(p) for p in lexical.ids]
    by_phrase = np.array(ids, dtype=np.int64)
    if len(ids) < n:
        seen = set(ids)
        rest = [int(p) for p in snap.first(n + len(ids), plan.filters, plan.within) if int(p) not in seen]
        ids += rest[: n - len(ids)]
    scores = np.zeros(len(ids), dtype=np.float32)
    if lexical is not None:
        scores[: len(by_phrase)] = lexical.scores
    return _Ranked(np.array(ids, dtype=np.int64), scores, {}, _ranks(by_phrase), {})


def _lexical(snap: Snapshot, plan: _Plan, n: int) -> LexicalRetrieved:
    """The ``n`` best BM25 candidates of the plan's text inside its constraints."""
    return snap.lexical(snap.analyzer.tokens(plan.text), n, plan.filters, plan.within)


def _bridged(snap: Snapshot, plan: _Plan, n: int, translate: bool) -> Bridged | None:
    """The ``n`` best BM25 candidates of the plan's free text translated, inside its constraints, when the
    bridge is on and crosses languages (phrases, exclusions and field values are never translated)."""
    return bridged(snap, plan.text, n, plan.filters, plan.within) if translate else None


def _longest_first(terms: tuple[str, ...]) -> tuple[str, ...]:
    """Highlight terms in the order :func:`~search.highlight.highlight_spans` wants them (longest match wins)."""
    return tuple(sorted({t.lower() for t in terms}, key=lambda t: (-len(t), t)))


def _ranked_lexical(lexical: LexicalRetrieved, bridge: Bridged | None = None) -> _Ranked:
    """Keyword mode: BM25's own order and scores, mixed with the translation's when it was searched too."""
    if bridge is None:
        return _Ranked(lexical.ids, lexical.scores, {}, _ranks(lexical.ids), {})
    candidates = np.union1d(lexical.ids, bridge.retrieved.ids).astype(np.int64)
    own = fusion.lexical_weight(lexical.coverage) if len(lexical.ids) else 0.0
    fused = fusion.combine(lexical.scores_of(candidates), bridge.retrieved.scores_of(candidates),
                           bridge.weight / (bridge.weight + own))
    order = np.lexsort((candidates, -fused))
    return _Ranked(candidates[order], fused[order], {}, _ranks(lexical.ids), {}, bridge)


def _ranks(ids: np.ndarray) -> dict[int, int]:
    """Passage id → 1-based rank in one retriever's list."""
    return {int(p): r for r, p in enumerate(ids, start=1)}


def _rank(
    snap: Snapshot,
    plan: _Plan,
    dense: Retrieved,
    rescorer_vector: np.ndarray | None,
    lexical: LexicalRetrieved | None,
    bridge: Bridged | None = None,
) -> _Ranked:
    """Candidates of one query, best first, with the score shown for each.

    ``dense`` is the vector search's retrieval under the primary model,
    ``rescorer_vector`` the query under the rescorer (None without one);
    ``lexical`` is BM25's retrieval (None in semantic mode); ``bridge`` is
    BM25's retrieval of the query's translation (None when it is off or does
    not cross languages).
    """
    query = plan.text
    dense_rank = _ranks(dense.ids)
    lexical_rank = {} if lexical is None else _ranks(lexical.ids)
    bridge_ids = set() if bridge is None else {int(p) for p in bridge.retrieved.ids}
    candidates = np.array(sorted(set(dense_rank) | set(lexical_rank) | bridge_ids), dtype=np.int64)
    if not len(candidates):
        return _Ranked(candidates, np.zeros(0, dtype=np.float32), {}, {}, {})
    parts, sentences, share = [dense.scores_of(candidates)], {}, 0.0
    if rescorer_vector is not None:
        sentences = snap.sentence_vectors([int(p) for p in candidates])
        parts += _rescored(candidates, sentences, rescorer_vector)
        nearest = [int(p) for p in dense.ids[:SCRIPT_SAMPLE]]
        share = fusion.rescorer_share(query, [rec.text for rec in snap.passages(nearest).values()])
    fused = fusion.semantic(parts, share)
    if lexical is not None:
        weight = fusion.lexical_weight(lexical.coverage) if len(lexical.ids) else 0.0
        fused = fusion.combine(fused, lexical.scores_of(candidates), weight)
    if bridge is not None:
        fused = fusion.combine(fused, bridge.retrieved.scores_of(candidates), bridge.weight)
    order = np.lexsort((candidates, -fused))
    return _Ranked(candidates[order], fused[order], dense_rank, lexical_rank, sentences, bridge)


def _rescored(
    candidates: np.ndarray, sentences: dict[int, SentenceVectors], rescorer_vector: np.ndarray
) -> list[np.ndarray]:
    """The rescorer's passage score and best-sentence score of each candidate.

    A candidate without stored vectors gets the lowest score of the others, so
    it is neither lifted nor buried by a vote it could not take part in.
    """
    found = [sentences.get(int(pid)) for pid in candidates]
    present = np.array([f is not None for f in found])
    if not present.any():
        return []
    stored = [f for f in found if f is not None]
    passage = np.full(len(candidates), np.nan)
    passage[present] = np.stack([f.passage for f in stored]) @ rescorer_vector
    counts = np.array([len(f.sentences) for f in stored])
    best = passage.copy()
    if counts.sum():  # one product for all sentences, then the best of each passage's run
        cosines = np.vstack([f.sentences for f in stored if len(f.sentences)]) @ rescorer_vector
        runs = np.maximum.reduceat(cosines, np.concatenate([[0], np.cumsum(counts[counts > 0])[:-1]]))
        best[np.flatnonzero(present)[counts > 0]] = runs
    return [np.nan_to_num(part, nan=float(np.nanmin(part))) for part in (passage, best)]


def _is_rescorer(rescorer: Embedder, wanted: dict | None) -> bool:
    """True when ``rescorer`` is the rescoring model the index names (``wanted``: its ``id`` and ``dim``)."""
    return wanted is not None and (rescorer.model_id, rescorer.dim) == (wanted["id"], wanted["dim"])


def _check_filters(filters: Mapping[str, object] | None) -> Filters | None:
    """Validated filters with every value as a tuple of strings (None when there are none)."""
    if not filters:
        return None
    if not isinstance(filters, Mapping) or not all(isinstance(key, str) and key for key in filters):
        raise BadQuery("filters must map field names to a value or a list of values")
    checked = {
        key: tuple(sorted({str(v) for v in (wanted if isinstance(wanted, (list, tuple, set)) else [wanted])}))
        for key, wanted in filters.items()
    }
    for text in (text for key, values in checked.items() for text in (key, *values)):
        # SQLite stores UTF-8 text and a NUL ends it: refuse what it would otherwise fail on
        if any(ch < " " or ch == "\x7f" or "\ud800" <= ch <= "\udfff" for ch in text):
            raise BadQuery(f"filter {text[:40]!r} holds a control character or a lone surrogate")
    return checked


def _check_facets(facets: Sequence[str]) -> list[str]:
    """Validated facet field names, each once, in the order asked."""
    if isinstance(facets, str) or not all(isinstance(name, str) and name for name in facets):
        raise BadQuery("facets must be a list of field names")
    names = list(dict.fromkeys(facets))
    if len(names) > MAX_FILTERS:
        raise BadQuery(f"at most {MAX_FILTERS} facet fields, got {len(names)}")
    return names

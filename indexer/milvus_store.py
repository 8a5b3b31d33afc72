"""A souyi index kept in Milvus.  The only module that talks to Milvus.

The index *location* stays a directory, as for the embedded store; it holds

    manifest.json   format ``souyi-milvus``: Milvus URI, collection names,
                    model id and dimension, analyzer, BM25 and passage settings
    userdict.txt    the jieba user dictionary, if the index has one
    writer.lock     held by the one writer (on this machine)

and everything else lives in three Milvus collections named after the user's
collection name plus a per-build suffix (``NAME__1a2b3c4d``), so that
``souyi index`` can build a complete new index beside the old one and switch
the directory over with a rename, as the embedded store does:

    NAME__x         passages: id, gen, doc, title, meta, tags, paragraph,
                    offsets, heading, text, ``lexical`` (our analyzer's terms,
                    hashed), ``sparse`` (Milvus's BM25 function of ``lexical``),
                    ``vector``
    NAME__x_docs    documents: name, title, source, hash, size, mtime, meta,
                    passage count, gen
    NAME__x_terms   document frequency of every term (client-side IDF), with
                    the value before the batch that last changed it

**Why our terms, hashed.**  Lexical search must rank as the embedded store
does (quality parity), and fusion needs each query's *coverage*, i.e. the IDF
of the very terms BM25 matched.  So Milvus's BM25 runs over the terms of
souyi's own analyzer (jieba search mode + CJK bigrams, folded), not over
Milvus's jieba analyzer, whose terms the client could not reproduce.  Each
term is written as a 16-hex-digit hash so that the ``standard`` tokenizer (the
only one besides ``jieba`` that milvus-lite accepts; it has no ``whitespace``
tokenizer) keeps it whole.

**Batches.**  Milvus has no transactions, so the collection property
``souyi.state`` is the commit point: it holds the committed generation and
counts.  A batch inserts rows stamped ``gen + 1`` (readers filter on
``gen <= committed``), updates the term frequencies (each changed row keeps
its previous count and the generation that changed it, so a reader of the
committed generation still gets that generation's count), then moves the
state, then deletes the replaced rows (readers hide them by name meanwhile:
``retired``) and flushes.  A writer that finds an unfinished batch deletes its
rows and puts the frequencies it changed back.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from .errors import DocumentError, IndexBusy, IndexFormatError, IndexNotFound
from .index_dir import (
    LOCK_TIMEOUT,
    USERDICT,
    LockedWriter,
    ManifestFacts,
    index_exists,
    load_manifest,
    manifest_format,
    write_manifest,
)
from .records import (
    DocumentRecord,
    NewPassage,
    PassageRecord,
    SentenceVectors,
    StoredDocument,
    pack_sentence_vectors,
    unpack_vector_rows,
)

logger = logging.getLogger(__name__)

FORMAT_NAME = "souyi-milvus"
FORMAT_VERSION = 2  # 2: term frequencies are versioned (``prev``, ``gen``)
STATE_KEY = "souyi.state"
#: Vector index per ``--ann`` choice (all of them work in milvus-lite and in Milvus 2.5+).
VECTOR_INDEX = {"auto": "AUTOINDEX", "flat": "FLAT", "ivf": "IVF_SQ8"}
#: Rows per insert/query call: well under Milvus's message size limit for 384-dim vectors.
CHUNK = 1000
#: Longest ``in [...]`` list per filter expression.
IN_CHUNK = 1000
_TEXT_MAX = 65_535  # bytes, Milvus's VARCHAR limit
_NAME_MAX = 4_096
_TAGS_MAX = 64
_PASSAGE_FIELDS = ["id", "doc", "title", "paragraph", "start", "end", "heading", "text", "meta"]
_TERM_FIELDS = ["key", "df", "prev", "gen"]
#: gRPC channel options.  pymilvus pings every 10 s, even on an idle connection;
#: milvus-lite's gRPC server (in-process for a ``.db`` URI, or ``milvus-lite
#: server``) keeps gRPC's default policy -- no pings without a call, none more
#: often than every 5 minutes -- and after a few such pings answers GOAWAY
#: ``too_many_pings``, which pymilvus cannot recover from (seen on a long-lived
#: client busy elsewhere).  Pinging only during calls, every 10 minutes, is
#: within that policy and within Milvus's own (which allows more).
GRPC_OPTIONS = {"grpc.keepalive_time_ms": 600_000, "grpc.keepalive_permit_without_calls": False}
_DOC_FIELDS = ["name", "title", "source", "sha256", "size", "mtime_ns", "meta", "passages", "indexed_at"]


def _pymilvus():
    try:
        import pymilvus
    except ImportError as exc:
        raise IndexFormatError(
            "this index lives in Milvus, which needs the optional packages: pip install 'souyi[milvus]' "
            f"({exc})"
        ) from exc
    return pymilvus


def is_milvus_index(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` holds the manifest of a Milvus-backed index."""
    return manifest_format(path) == FORMAT_NAME


def resolve_uri(uri: str) -> str:
    """A milvus-lite file path made absolute (servers' URLs unchanged), so the manifest works from anywhere."""
    if "://" in uri:
        return uri
    return str(Path(uri).expanduser().resolve())


def term_key(term: str) -> str:
    """The token that stands for ``term`` in Milvus (one ``standard``-tokenizer word, 64-bit hash)."""
    return hashlib.blake2b(term.encode("utf-8"), digest_size=8).hexdigest()


def filter_tags(field: str, value: object) -> str:
    """The tag that a document with ``field == value`` carries; filters match tags exactly.

    Values compare as text, as the embedded store does (``CAST(... AS TEXT)``).
    """
    if isinstance(value, bool):
        value = int(value)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return json.dumps([field, text], ensure_ascii=False)


def literal(values: Iterable[object]) -> str:
    """A Milvus expression list literal."""
    return json.dumps(list(values), ensure_ascii=False)


def read_manifest(path: str | os.PathLike[str]) -> dict:
    """The manifest of the Milvus-backed index at ``path``."""
    path = Path(path)
    manifest = load_manifest(path)
    if manifest.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"{path} is not a souyi Milvus index")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexFormatError(f"{path} is a souyi Milvus index of format version {manifest.get('format_version')}, "
                               f"this souyi reads version {FORMAT_VERSION}; rebuild it (souyi index, or souyi migrate "
                               "from an embedded index)")
    return manifest


class MilvusIndex(ManifestFacts):
    """A connection to one index's collections, with its state; the base of reader and writer."""

    def __init__(self, path: Path, manifest: dict) -> None:
        self.path = path
        self.manifest = manifest
        milvus = manifest["milvus"]
        self.uri = milvus["uri"]
        self.passages_name = milvus["physical"]
        self.docs_name = f"{self.passages_name}_docs"
        self.terms_name = f"{self.passages_name}_terms"
        self.texts_name = f"{self.passages_name}_texts"
        self.client = connect(self.uri)
        # indexes made before the texts collection existed rebuild a document's text from its passages
        self.has_texts = bool(self.client.has_collection(self.texts_name))

    def collections(self) -> tuple[str, ...]:
        """The names of this index's collections."""
        return (self.passages_name, self.docs_name, self.terms_name, *([self.texts_name] if self.has_texts else []))


    def state(self) -> dict:
        """The committed state: generation, counts, term total, retired names (one round trip)."""
        try:
            properties = self.client.describe_collection(self.passages_name).get("properties", {})
        except Exception as exc:  # pymilvus raises MilvusException subclasses without a common base we can name
            raise IndexNotFound(
                f"the Milvus collection {self.passages_name} of the index at {self.path} is missing or "
                f"unreachable at {self.uri} ({exc}); rebuild it with souyi index"
            ) from exc
        return json.loads(properties[STATE_KEY])

    def load(self) -> None:
        """Load the collections into memory (needed after a Milvus server restarts)."""
        for name in self.collections():
            self.client.load_collection(name)

    def scan(self, collection: str, expr: str, fields: list[str]) -> Iterator[dict]:
        """Every row matching ``expr``, in batches (no 16,384-row query limit)."""
        iterator = self.client.query_iterator(collection, batch_size=CHUNK, filter=expr, output_fields=fields)
        try:
            while batch := iterator.next():
                yield from batch
        finally:
            iterator.close()

    def get(self, collection: str, key: str, values: list, fields: list[str], expr: str = "") -> list[dict]:
        """Rows whose ``key`` is one of ``values`` (chunked ``in`` filters)."""
        rows: list[dict] = []
        for i in range(0, len(values), IN_CHUNK):
            where = f"{key} in {literal(values[i : i + IN_CHUNK])}" + (f" and {expr}" if expr else "")
            rows += self.client.query(collection, filter=where, output_fields=fields)
        return rows

    def has_passage(self, expr: str) -> bool:
        """True when some passage row matches ``expr``."""
        return bool(self.client.query(self.passages_name, filter=expr, output_fields=["id"], limit=1))

    def search(self, field: str, data: object, limit: int, expr: str, metric: str) -> list[dict]:
        """The ``limit`` best passage rows matching ``expr`` by ``field`` (``vector`` by ``IP``, ``sparse`` by
        ``BM25``), best first: the :meth:`row_fields`, ``id`` and Milvus's ``distance`` of each."""
        result = self.client.search(self.passages_name, data=[data], anns_field=field, limit=limit, filter=expr,
                                    output_fields=self.row_fields(), search_params={"metric_type": metric})
        hits = result[0] if result else []
        return [{**hit["entity"], "id": hit["id"], "distance": hit["distance"]} for hit in hits]

    def row_fields(self) -> list[str]:
        """The fields a search reads of a passage: vector, terms, rescorer vectors (if any) and stored text."""
        return ["vector", "lexical", *(["rescore"] if self.manifest.get("rescorer") else []), *_PASSAGE_FIELDS]

    def document_frequencies(self, keys: list[str], generation: int) -> dict[str, int]:
        """Passages holding each term key in ``generation`` (absent: none).

        Exact for the committed generation even while the next batch is being
        written (its changed rows still carry the committed count, see
        :func:`_frequency_at`).
        """
        return {row["key"]: _frequency_at(row, generation)
                for row in self.get(self.terms_name, "key", keys, _TERM_FIELDS)}

    def documents_at(self, state: dict) -> dict[str, StoredDocument]:
        """The documents visible in ``state``, by name."""
        rows = self.scan(self.docs_name, visible(state, "name"), _DOC_FIELDS)
        docs = {r["name"]: _stored_document(r) for r in rows}
        return dict(sorted(docs.items()))

    def document_at(self, state: dict, name: str) -> tuple[StoredDocument, str | None, list[PassageRecord]] | None:
        """One document visible in ``state`` by name: its facts, decoded text and passages in text order.

        None: no such document.  The text is None for an index made before the
        texts collection existed; the caller rebuilds it from the passages.
        """
        where = f"name in {literal([name])} and {visible(state, 'name')}"
        found = self.client.query(self.docs_name, filter=where, output_fields=_DOC_FIELDS, limit=1)
        if not found:
            return None
        rows = self.scan(self.passages_name, f"doc in {literal([name])} and {visible(state)}", _PASSAGE_FIELDS)
        passages = sorted((passage_record(row) for row in rows), key=lambda p: (p.start, p.passage_id))
        return _stored_document(found[0]), self._text_at(state, name), passages

    def _text_at(self, state: dict, name: str) -> str | None:
        """The decoded text of document ``name`` in ``state``, joined from its parts (None: not kept)."""
        if not self.has_texts:
            return None
        rows = self.scan(self.texts_name, f"name in {literal([name])} and {visible(state, 'name')}", ["part", "text"])
        return "".join(row["text"] for row in sorted(rows, key=lambda row: row["part"]))

    def close(self) -> None:
        self.client.close()


def _stored_document(row: dict) -> StoredDocument:
    """The document in a docs row read with ``_DOC_FIELDS``."""
    return StoredDocument(row["name"], row["title"], row["source"], row["sha256"], int(row["size"]),
                          int(row["mtime_ns"]), row["meta"], int(row["passages"]), float(row["indexed_at"]))


def passage_record(row: dict) -> PassageRecord:
    """The stored passage in a row read with :meth:`MilvusIndex.row_fields`."""
    return PassageRecord(int(row["id"]), row["doc"], row["title"], int(row["paragraph"]), int(row["start"]),
                         int(row["end"]), row["heading"], row["text"], row["meta"])


def _frequency_at(row: dict, generation: int) -> int:
    """A term row's document frequency as of ``generation``.

    ``df`` holds since generation ``gen``, ``prev`` before it; a batch changes
    a row at most once, so this is exact for the committed generation and the
    one being written.  (A reader two commits behind would get the count one
    generation too new; each search takes the newest snapshot.)
    """
    return int(row["df"] if int(row["gen"]) <= generation else row["prev"])


def visible(state: dict, name_field: str = "doc") -> str:
    """Filter expression: rows of the committed generation of ``state``."""
    gen = int(state["generation"])
    expr = f"gen <= {gen}"
    if state.get("retired"):
        expr += f" and not ({name_field} in {literal(state['retired'])} and gen < {gen})"
    return expr


def connect(uri: str):
    """A ``MilvusClient`` for ``uri`` (a milvus-lite path or a server URL)."""
    pymilvus = _pymilvus()
    try:
        return pymilvus.MilvusClient(uri=uri, grpc_options=GRPC_OPTIONS)
    except Exception as exc:
        if "lock" in str(exc).lower():
            raise IndexBusy(
                f"the milvus-lite data at {uri} is open in another process; serve it with "
                f"'milvus-lite server --data-dir {uri} --port N' and use --milvus-uri http://127.0.0.1:N"
            ) from exc
        raise IndexNotFound(f"cannot connect to Milvus at {uri}: {exc}") from exc


class MilvusWriter(LockedWriter, MilvusIndex):
    """The one writer of a Milvus-backed index: an :class:`indexer.stores.Writer`, as the embedded one is.

    ``create`` is the model/analyzer part of a manifest plus ``milvus``
    (``uri`` and ``collection``); it makes a new index at ``path``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: dict | None = None,
        userdict: Path | None = None,
        lock_timeout: float = LOCK_TIMEOUT,
    ) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._take_lock(lock_timeout)
        self._clear_batch()
        try:
            if create is not None and not index_exists(path):
                manifest = _new_manifest(path, create, userdict)
                MilvusIndex.__init__(self, path, manifest)
                self._create_collections()
                write_manifest(path, manifest)
            else:
                MilvusIndex.__init__(self, path, read_manifest(path))
                self.load()
            self._state = self.state()
            self._recover()
        except BaseException:
            self.close()
            raise
        self._refresh_manifest()

    @property
    def generation(self) -> int:
        return int(self._state["generation"])

    def documents(self) -> dict[str, StoredDocument]:
        """The documents of the committed generation, by name."""
        return self.documents_at(self._state)

    def commit(self) -> int:
        """Make the staged batch visible (see the module docstring); returns the generation."""
        if not self._added and not self._removed:
            return self.generation
        state, new = self._state, self.generation + 1
        names = sorted(self._staged_names())
        known = self.get(self.docs_name, "name", names, ["name"], visible(state, "name"))
        existing = sorted({r["name"] for r in known})
        gone = [
            row
            for i in range(0, len(existing), IN_CHUNK)
            for row in self.scan(self.passages_name, f"doc in {literal(existing[i : i + IN_CHUNK])} and "
                                 f"{visible(state)}", ["lexical"])
        ]
        self._set_state(dict(state, writing=new))
        now = time.time()
        next_id = int(state["next_id"])
        df: Counter[str] = Counter()
        total_terms = int(state["total_terms"])
        documents, chunk, n_added = [], [], 0
        for doc, staged, vectors, terms in self._added:
            for passage, vector, tokens in zip(staged, vectors, terms, strict=True):
                keys = [term_key(t) for t in tokens]
                df.update(set(keys))
                total_terms += len(keys)
                chunk.append(self._passage_row(next_id + n_added, new, doc, passage, vector, keys))
                n_added += 1
                if len(chunk) == CHUNK:  # rows are built chunk by chunk: a list of floats per vector is large
                    self.client.insert(self.passages_name, chunk)
                    chunk = []
            documents.append(_document_row(doc, new, len(staged), now))
            if self.has_texts:
                self._insert(self.texts_name, _text_rows(doc, new))
        self._insert(self.passages_name, chunk)
        self._insert(self.docs_name, documents)
        for row in gone:
            keys = row["lexical"].split()
            df.subtract(set(keys))
            total_terms -= len(keys)
        self._update_frequencies(df, new)
        n_docs = int(state["documents"]) - len(existing) + len(documents)
        n_passages = int(state["passages"]) - len(gone) + n_added
        self._set_state({"generation": new, "documents": n_docs, "passages": n_passages,
                         "total_terms": total_terms, "next_id": next_id + n_added, "retired": existing,
                         "writing": None})
        self._clear_batch()
        self._drop_retired()
        self._flush()
        self._refresh_manifest()
        return new

    def _passage_row(self, pid: int, gen: int, doc: DocumentRecord, passage: NewPassage, vector: np.ndarray,
                     keys: list[str]) -> dict:
        lexical = " ".join(keys)
        rescore = _encode_rescore(passage.rescore)
        for what, value in (("text", passage.text), ("heading", passage.heading), ("terms", lexical),
                            ("sentence vectors", rescore)):
            if len(value.encode("utf-8")) > _TEXT_MAX:
                raise DocumentError(f"{doc.name}: a passage's {what} is longer than Milvus's {_TEXT_MAX} bytes")
        return {
            "id": pid, "gen": gen, "doc": doc.name, "title": doc.title, "meta": doc.meta, "tags": _tags(doc),
            "paragraph": passage.paragraph, "start": passage.start, "end": passage.end, "heading": passage.heading,
            "text": passage.text, "lexical": lexical, "vector": vector.tolist(), "rescore": rescore,
        }

    def _insert(self, collection: str, rows: list[dict], upsert: bool = False) -> None:
        write = self.client.upsert if upsert else self.client.insert
        for i in range(0, len(rows), CHUNK):
            write(collection, rows[i : i + CHUNK])

    def _update_frequencies(self, delta: Counter[str], new: int) -> None:
        """Apply the document-frequency changes of batch ``new``, keeping each changed row's committed count.

        A count that falls to 0 stays as a row until :meth:`_drop_retired`,
        so that readers of the committed generation still find the old count.
        """
        changed = [key for key, d in delta.items() if d]
        current = self.document_frequencies(changed, self.generation) if changed else {}
        self._write_frequencies({key: current.get(key, 0) + delta[key] for key in changed},
                                {key: current.get(key, 0) for key in changed}, new)

    def _write_frequencies(self, df: dict[str, int], prev: dict[str, int], gen: int) -> None:
        rows = [{"key": key, "df": count, "prev": prev[key], "gen": gen, "dummy": [0.0, 0.0]}
                for key, count in df.items()]
        self._insert(self.terms_name, rows, upsert=True)

    def _set_state(self, state: dict) -> None:
        self.client.alter_collection_properties(self.passages_name, properties={STATE_KEY: json.dumps(state)})
        self._state = state

    def _refresh_manifest(self) -> None:
        """``manifest`` as :class:`IndexWriter` exposes it: configuration plus generation and counts."""
        self.manifest = dict(self.manifest, generation=self.generation,
                             counts={"documents": self._state["documents"], "passages": self._state["passages"]})

    def _drop_retired(self) -> None:
        """Delete the rows that the committed generation replaced and the terms it left unused."""
        retired = self._state.get("retired") or []
        gen = self.generation
        for i in range(0, len(retired), IN_CHUNK):
            names = literal(retired[i : i + IN_CHUNK])
            self.client.delete(self.passages_name, filter=f"doc in {names} and gen < {gen}")
            self.client.delete(self.docs_name, filter=f"name in {names} and gen < {gen}")
            if self.has_texts:
                self.client.delete(self.texts_name, filter=f"name in {names} and gen < {gen}")
        self.client.delete(self.terms_name, filter="df == 0")
        if retired:
            self._set_state(dict(self._state, retired=[]))

    def _flush(self) -> None:
        """Seal what the batch wrote, so that searches run over indexed segments.

        milvus-lite keeps unflushed rows in a memtable whose BM25 index every
        search rebuilds from scratch: seconds per query after a 100k-passage
        batch.  Milvus seals segments by itself too, and rate-limits flush
        calls, so a refused flush only costs speed and is logged.
        """
        for name in self.collections():
            try:
                self.client.flush(name)
            except Exception as exc:  # MilvusException subclasses, see state()
                logger.warning("Milvus did not flush %s (%s); searches may be slower until it does", name, exc)

    def _recover(self) -> None:
        """Finish or undo a batch that a crash interrupted."""
        if self._state.get("writing") is not None:
            gen = self.generation
            self.client.delete(self.passages_name, filter=f"gen > {gen}")
            self.client.delete(self.docs_name, filter=f"gen > {gen}")
            if self.has_texts:
                self.client.delete(self.texts_name, filter=f"gen > {gen}")
            changed = list(self.scan(self.terms_name, f"gen > {gen}", _TERM_FIELDS))
            prev = {row["key"]: int(row["prev"]) for row in changed}
            self._write_frequencies(prev, prev, gen)
            self._set_state(dict(self._state, writing=None))
            logger.warning("rolled back an unfinished batch in Milvus collection %s", self.passages_name)
        self._drop_retired()

    def repair(self) -> None:
        """Recount the term statistics from the stored passages (``souyi check --repair``)."""
        df: Counter[str] = Counter()
        total = 0
        for row in self.scan(self.passages_name, visible(self._state), ["lexical"]):
            keys = row["lexical"].split()
            df.update(set(keys))
            total += len(keys)
        gen = self.generation
        stored = {row["key"]: _frequency_at(row, gen) for row in self.scan(self.terms_name, 'key != ""', _TERM_FIELDS)}
        wrong = {key: df.get(key, 0) for key in stored.keys() | df.keys() if stored.get(key, 0) != df.get(key, 0)}
        if wrong:
            logger.warning("repaired the document frequencies of %d terms in %s", len(wrong), self.terms_name)
        self._write_frequencies(wrong, wrong, gen)
        self._set_state(dict(self._state, total_terms=total))
        self._drop_retired()

    def _create_collections(self) -> None:
        pymilvus = _pymilvus()
        types, client = pymilvus.DataType, self.client
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False,
                                      description=f"souyi passages of {self.path}")
        schema.add_field("id", types.INT64, is_primary=True)
        schema.add_field("gen", types.INT64)
        schema.add_field("doc", types.VARCHAR, max_length=_NAME_MAX)
        schema.add_field("title", types.VARCHAR, max_length=_NAME_MAX)
        schema.add_field("meta", types.JSON)
        schema.add_field("tags", types.ARRAY, element_type=types.VARCHAR, max_capacity=_TAGS_MAX,
                         max_length=_NAME_MAX * 2)
        for name in ("paragraph", "start", "end"):
            schema.add_field(name, types.INT64)
        schema.add_field("heading", types.VARCHAR, max_length=_TEXT_MAX)
        schema.add_field("text", types.VARCHAR, max_length=_TEXT_MAX)
        schema.add_field("lexical", types.VARCHAR, max_length=_TEXT_MAX, enable_analyzer=True,
                         analyzer_params={"tokenizer": "standard"})
        schema.add_field("rescore", types.VARCHAR, max_length=_TEXT_MAX)  # the rescorer's vectors, if any
        schema.add_field("sparse", types.SPARSE_FLOAT_VECTOR)
        schema.add_field("vector", types.FLOAT_VECTOR, dim=self.dim)
        schema.add_function(pymilvus.Function(name="bm25", function_type=pymilvus.FunctionType.BM25,
                                              input_field_names=["lexical"], output_field_names=["sparse"]))
        bm25 = self.manifest["bm25"]
        index = client.prepare_index_params()
        index.add_index("vector", index_type=VECTOR_INDEX[self.manifest["ann"]["requested"]], metric_type="IP")
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                        params={"bm25_k1": bm25["k1"], "bm25_b": bm25["b"]})
        state = {"generation": 0, "documents": 0, "passages": 0, "total_terms": 0, "next_id": 1,
                 "retired": [], "writing": None}
        client.create_collection(self.passages_name, schema=schema, index_params=index, consistency_level="Strong",
                                 properties={STATE_KEY: json.dumps(state)})

        docs = client.create_schema(auto_id=True, enable_dynamic_field=False)
        docs.add_field("id", types.INT64, is_primary=True)
        docs.add_field("gen", types.INT64)
        docs.add_field("name", types.VARCHAR, max_length=_NAME_MAX)
        for name in ("title", "source", "sha256"):
            docs.add_field(name, types.VARCHAR, max_length=_NAME_MAX)
        for name in ("size", "mtime_ns", "passages"):
            docs.add_field(name, types.INT64)
        docs.add_field("indexed_at", types.DOUBLE)
        docs.add_field("meta", types.JSON)
        docs.add_field("dummy", types.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in every collection
        terms = client.create_schema(auto_id=False, enable_dynamic_field=False)
        terms.add_field("key", types.VARCHAR, max_length=32, is_primary=True)
        terms.add_field("df", types.INT64)  # passages holding the term since generation gen
        terms.add_field("prev", types.INT64)  # ... before generation gen
        terms.add_field("gen", types.INT64)
        terms.add_field("dummy", types.FLOAT_VECTOR, dim=2)
        texts = client.create_schema(auto_id=True, enable_dynamic_field=False)  # a document's text, in parts
        texts.add_field("id", types.INT64, is_primary=True)
        texts.add_field("gen", types.INT64)
        texts.add_field("name", types.VARCHAR, max_length=_NAME_MAX)
        texts.add_field("part", types.INT64)
        texts.add_field("text", types.VARCHAR, max_length=_TEXT_MAX)
        texts.add_field("dummy", types.FLOAT_VECTOR, dim=2)
        self.has_texts = True
        for name, schema in ((self.docs_name, docs), (self.terms_name, terms), (self.texts_name, texts)):
            index = client.prepare_index_params()
            index.add_index("dummy", index_type="FLAT", metric_type="L2")
            client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")

    def _close_store(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
            self.client = None


def _new_manifest(path: Path, create: dict, userdict: Path | None) -> dict:
    milvus = create.get("milvus") or {}
    if not milvus.get("uri"):
        raise IndexFormatError("a Milvus index needs a URI: --milvus-uri FILE.db or http://HOST:19530")
    collection = milvus.get("collection") or "souyi"
    if not collection.replace("_", "a").isalnum() or not collection[0].isalpha():
        raise IndexFormatError(f"collection name {collection!r}: use letters, digits and '_', starting with a letter")
    if userdict is not None:
        (path / USERDICT).write_bytes(Path(userdict).read_bytes())
    physical = f"{collection}__{uuid.uuid4().hex[:8]}"
    return dict(create, format=FORMAT_NAME, format_version=FORMAT_VERSION,
                milvus={"uri": resolve_uri(milvus["uri"]), "collection": collection, "physical": physical})


def _encode_rescore(vectors: SentenceVectors | None) -> str:
    """A passage's rescoring vectors as text: spans and base64 float16 rows (passage first), as SQLite keeps them."""
    if vectors is None:
        return ""
    packed = base64.b64encode(pack_sentence_vectors(vectors)).decode()
    return json.dumps({"spans": [list(s) for s in vectors.spans], "vectors": packed})


def decode_rescore(text: str, dim: int) -> SentenceVectors:
    """The rescoring vectors stored by :func:`_encode_rescore`."""
    data = json.loads(text)
    matrix = unpack_vector_rows(base64.b64decode(data["vectors"]), dim)
    return SentenceVectors(tuple(tuple(s) for s in data["spans"]), matrix[0], matrix[1:])


def _tags(doc: DocumentRecord) -> list[str]:
    fields = {key: value for key, value in doc.meta.items() if key not in ("doc", "title")}
    if len(fields) + 2 > _TAGS_MAX:
        raise DocumentError(f"{doc.name}: more than {_TAGS_MAX - 2} metadata fields")
    return [filter_tags("doc", doc.name), filter_tags("title", doc.title)] + [
        filter_tags(key, value) for key, value in fields.items()
    ]


def _document_row(doc: DocumentRecord, gen: int, passages: int, now: float) -> dict:
    for what in ("name", "title", "source"):
        if len(getattr(doc, what).encode("utf-8")) > _NAME_MAX:
            raise DocumentError(f"{doc.name[:200]}: document {what} longer than {_NAME_MAX} bytes")
    return {"gen": gen, "name": doc.name, "title": doc.title, "source": doc.source, "sha256": doc.sha256,
            "size": doc.size, "mtime_ns": doc.mtime_ns, "passages": passages, "indexed_at": now,
            "meta": doc.meta, "dummy": [0.0, 0.0]}


#: Characters per row of the texts collection: at 4 UTF-8 bytes a character at most, within Milvus's VARCHAR limit.
TEXT_PART_CHARS = _TEXT_MAX // 4


def _text_rows(doc: DocumentRecord, gen: int) -> list[dict]:
    """Rows of the texts collection holding ``doc``'s decoded text, in parts numbered from 0."""
    return [{"gen": gen, "name": doc.name, "part": number, "text": doc.text[at : at + TEXT_PART_CHARS],
             "dummy": [0.0, 0.0]}
            for number, at in enumerate(range(0, len(doc.text), TEXT_PART_CHARS))]


def drop_collections(manifest: dict) -> None:
    """Drop the Milvus collections of an index (after ``souyi index`` replaced it, or a temporary eval index)."""
    client = connect(manifest["milvus"]["uri"])
    try:
        base = manifest["milvus"]["physical"]
        for name in (base, f"{base}_docs", f"{base}_terms", f"{base}_texts"):
            with contextlib.suppress(Exception):
                client.drop_collection(name)
    finally:
        client.close()

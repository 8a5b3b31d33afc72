"""Retrieval evaluation over a test collection (``souyi eval``).

A collection is a folder with ``corpus.jsonl`` (``{"id", "text", "title"}``),
``queries.jsonl`` (``{"id", "text"}``) and ``qrels.tsv`` (``query<TAB>doc<TAB>1``).
Each corpus entry is indexed as one document and split like any document, so
the numbers describe what a user gets; a document's rank is the rank of its
best passage.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.build import build_from_documents
from indexer.errors import DocumentError
from indexer.index_dir import index_exists
from indexer.records import DocumentRecord
from indexer.split import DEFAULT_PASSAGE_SIZE
from indexer.stores import MilvusTarget, drop_index

from .query import MODES
from .searcher import Searcher

logger = logging.getLogger(__name__)

#: Passages fetched per query so that ten distinct documents are (almost) always found.
PASSAGE_DEPTH = 50


@dataclass(frozen=True)
class Collection:
    """A loaded test collection."""

    name: str
    documents: list[DocumentRecord]
    queries: list[tuple[str, str]]  # (query id, text)
    relevant: dict[str, set[str]]  # query id -> relevant document ids


def load_collection(path: str | Path) -> Collection:
    """Read a collection folder; raises :class:`DocumentError` if it is malformed."""
    path = Path(path)
    files = {name: path / name for name in ("corpus.jsonl", "queries.jsonl", "qrels.tsv")}
    missing = [name for name, file in files.items() if not file.is_file()]
    if missing:
        raise DocumentError(f"{path} is not an eval collection: missing {', '.join(missing)}")
    documents = [
        DocumentRecord(
            name=str(row["id"]),
            title=str(row.get("title") or row["id"]),
            source=str(files["corpus.jsonl"]),
            encoding="utf-8",
            sha256=hashlib.sha256(row["text"].encode("utf-8")).hexdigest(),
            text=row["text"],
        )
        for row in _jsonl(files["corpus.jsonl"])
    ]
    queries = [(str(row["id"]), row["text"]) for row in _jsonl(files["queries.jsonl"])]
    relevant: dict[str, set[str]] = {}
    for line in files["qrels.tsv"].read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and (len(parts) < 3 or parts[2].strip() != "0"):
            relevant.setdefault(parts[0], set()).add(parts[1])
    queries = [(qid, text) for qid, text in queries if qid in relevant]
    return Collection(path.name, documents, queries, relevant)


def _jsonl(path: Path) -> Iterable[dict]:
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise DocumentError(f"{path}:{number}: not JSON ({exc})") from exc


def evaluate(
    collection: Collection,
    modes: Iterable[str] = MODES,
    index_dir: str | Path | None = None,
    model: str | None = None,
    progress: bool = False,
    passage_size: int = DEFAULT_PASSAGE_SIZE,
    milvus: MilvusTarget | None = None,
    fast: bool = False,
    translate: bool = True,
) -> dict:
    """Index the collection (or reuse ``index_dir``) and measure each mode; ``fast`` builds the index
    in fast mode (:mod:`indexer.pipeline`).

    ``translate=False`` measures without the cross-language bridge.
    Returns the JSON object that ``souyi eval --json`` prints.
    """
    with tempfile.TemporaryDirectory(prefix="souyi-eval-") as tmp:
        target = Path(index_dir) if index_dir else Path(tmp) / "index"
        index_seconds = None
        if not index_exists(target):
            report = build_from_documents(
                collection.documents, target, model=model, progress=progress, passage_size=passage_size,
                milvus=milvus, fast=fast,
            )
            index_seconds = round(report.seconds, 2)
        searcher = Searcher.open(target, model, translate=translate)
        result = {
            "collection": collection.name,
            "n_docs": len(collection.documents),
            "n_queries": len(collection.queries),
            "n_passages": searcher.size,
            "model": searcher.embedder.model_id,
            "index_seconds": index_seconds,
            "modes": {mode: _measure(searcher, collection, mode) for mode in modes},
        }
        searcher.close()
        if not index_dir:
            drop_index(target)  # a temporary Milvus index's collections live outside the directory
    return result


def _measure(searcher: Searcher, collection: Collection, mode: str) -> dict:
    recall1 = recall10 = reciprocal = 0.0
    latencies = []
    for qid, text in collection.queries:
        started = time.perf_counter()
        hits = searcher.search(text, k=min(PASSAGE_DEPTH, searcher.size), mode=mode)
        latencies.append((time.perf_counter() - started) * 1000.0)
        ranking = list(dict.fromkeys(hit.doc_id for hit in hits))[:10]
        gold = collection.relevant[qid]
        first = next((rank for rank, doc in enumerate(ranking, start=1) if doc in gold), None)
        if first is not None:
            recall10 += 1
            reciprocal += 1.0 / first
            recall1 += first == 1
    n = max(len(collection.queries), 1)
    return {
        "recall@1": round(recall1 / n, 4),
        "recall@10": round(recall10 / n, 4),
        "mrr@10": round(reciprocal / n, 4),
        "latency_ms_p50": round(float(np.percentile(latencies, 50)), 2) if latencies else None,
        "latency_ms_p99": round(float(np.percentile(latencies, 99)), 2) if latencies else None,
    }

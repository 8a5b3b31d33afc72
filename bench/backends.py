"""Embedded vs Milvus side by side on the same corpus: indexing throughput and query latency.

    python -m bench.backends --source /tmp/souyi-perf/100k --work /tmp/souyi-backends [--queries 50]
    python -m bench.backends --work /tmp/souyi-backends --reopened     # afterwards, in a new process

The corpus is an existing embedded index (``bench/synth_index.py`` builds a
100k-passage one): its documents, passages, vectors and terms are written into
a fresh embedded index and into a fresh Milvus (milvus-lite) index through the
two writers that ``souyi add`` uses, so *indexing* here is the store's share
(embedding excluded: it costs the same whichever store receives the vectors).
*Query latency* is one query at a time through :class:`search.Searcher` in
each mode, with the query vectors computed beforehand (the model's ~30 ms is
the same for both); queries are the first ``--queries`` questions of
xquad_zh-zh and xquad_en-zh.  Medians of ``--repeat`` passes; results go to
``docs/perf/backends.json`` (``--out``).  The first search after the commit is timed apart
(``first_query_ms``): it pays one-off costs such as milvus-lite building its
BM25 index of the new segments.

Right after a large commit milvus-lite is still compacting and indexing the
new segments in background threads of the same process, so ``latency`` is
that moment's.  ``--reopened`` measures the indexes left in ``--work`` again
from a new process (as a restarted server or web app finds them: segments
merged and indexed) and adds ``first_query_reopened_ms`` and
``latency_reopened`` to the results file.
"""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path

import numpy as np

from bench.common import (
    IndexReader,
    MilvusTarget,
    add_eval_dir,
    add_out,
    first_questions,
    open_writer,
    parser_for,
    read_json,
    settings_of,
    stage_reader,
    times_ms,
    write_json,
)
from indexer import load_embedder
from search import MODES, Searcher
from search.query import clean_query

QUERY_SETS = ("xquad_zh-zh", "xquad_en-zh")


class _Precomputed:
    """The index's embedder with the benchmark queries' vectors computed once."""

    def __init__(self, embedder, queries: list[str]) -> None:
        self.model_id, self.dim = embedder.model_id, embedder.dim
        cleaned = [clean_query(q) for q in queries]  # what Searcher asks to encode
        self._vectors = dict(zip(cleaned, embedder.encode_queries(cleaned), strict=True))

    def encode_queries(self, queries: list[str]) -> np.ndarray:
        return np.stack([self._vectors[q] for q in queries])


def _write(source: IndexReader, target: Path, milvus: MilvusTarget | None) -> dict:
    """Copy ``source`` into a new index at ``target``; seconds staging (reading) and committing."""
    create = {**settings_of(source), **(milvus.manifest() if milvus else {})}
    with open_writer(target, create=create, userdict=source.userdict()) as writer:
        started = time.perf_counter()
        stage_reader(source, writer)
        staged = time.perf_counter()
        writer.commit()
        done = time.perf_counter()
        passages = writer.manifest["counts"]["passages"]
    return {"passages": passages, "commit_seconds": round(done - staged, 2),
            "passages_per_second": round(passages / (done - staged), 1), "read_seconds": round(staged - started, 2)}


def _latency(searcher: Searcher, queries: list[str], repeat: int) -> dict:
    out = {}
    for mode in MODES:
        passes = []
        for _ in range(repeat):
            times = times_ms(lambda query, mode=mode: searcher.search(query, k=10, mode=mode), queries)
            passes.append((np.percentile(times, 50), np.percentile(times, 99)))
        out[mode] = {"p50_ms": round(statistics.median(p[0] for p in passes), 2),
                     "p99_ms": round(statistics.median(p[1] for p in passes), 2)}
    return out


def _measure(path: Path, embedder: _Precomputed, queries: list[str], repeat: int) -> tuple[float, dict]:
    """Milliseconds of the first search, then the latency per mode."""
    searcher = Searcher.open(path, embedder)
    # warm: first-use costs (jieba, connections, index loading) are apart
    first = round(times_ms(searcher.search, queries[:1])[0], 1)
    latency = _latency(searcher, queries, repeat)
    searcher.close()
    return first, latency


def main(argv: list[str] | None = None) -> None:
    parser = parser_for(__doc__)
    parser.add_argument("--source", type=Path, default=Path("/tmp/souyi-perf/100k"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/souyi-backends"))
    parser.add_argument("--queries", type=int, default=50, help="questions taken from each query set")
    parser.add_argument("--repeat", type=int, default=3)
    add_out(parser, "backends")
    add_eval_dir(parser)
    parser.add_argument("--reopened", action="store_true",
                        help="measure the indexes already in --work again, from this new process")
    args = parser.parse_args(argv)
    queries = [q for texts in first_questions(args.eval_dir, QUERY_SETS, args.queries).values() for q in texts]
    paths = {"milvus": args.work / "milvus", "embedded": args.work / "embedded"}  # milvus first: the new store
    source = IndexReader.open(paths["embedded"] if args.reopened else args.source)
    embedder = _Precomputed(load_embedder(source.model_id), queries)
    if args.reopened:
        source.close()
        result = read_json(args.out, None)
        if result is None:
            parser.error(f"{args.out} does not exist: run without --reopened first")
        for name, path in paths.items():
            first, latency = _measure(path, embedder, queries, args.repeat)
            print(name, "reopened: first query", first, "ms, latency", latency, flush=True)
            result["backends"][name].update(first_query_reopened_ms=first, latency_reopened=latency)
    else:
        shutil.rmtree(args.work, ignore_errors=True)
        args.work.mkdir(parents=True)
        milvus = MilvusTarget(str(args.work / "milvus.db"), "bench")
        result = {"source": str(args.source), "queries": len(queries), "repeat": args.repeat, "backends": {}}
        for name, path in paths.items():
            indexing = _write(source, path, milvus if name == "milvus" else None)
            print(name, "indexing", indexing, flush=True)
            first, latency = _measure(path, embedder, queries, args.repeat)
            print(name, "first query", first, "ms, latency", latency, flush=True)
            result["backends"][name] = {"indexing": indexing, "first_query_ms": first, "latency": latency}
        source.close()
    write_json(args.out, result)


if __name__ == "__main__":
    main()

"""ANN recall@10 against exact search on the same vectors, with latency and memory, for one index.

    python -m bench.ann_recall --index /tmp/souyi-perf/100k [--hnsw]

The exact answer is a brute-force inner product over the float32 vectors
SQLite keeps; the index under test is the one the store built (its nprobe
varied at search time, so the curve costs no rebuild).  ``--hnsw`` also
builds HNSW + 8-bit quantization on the same vectors for comparison (that is
how the IVF choice was made).  Queries are real eval questions embedded at run
time.  An index of several segments is measured as one index rebuilt from
SQLite, and also as a searcher searches it: the row "N segments as served"
(segments sharing one IVF training probed together, the others apart).
Rows are merged into ``docs/perf/ann_recall.json`` by passage count.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from pathlib import Path

import faiss
import numpy as np

from bench import common
from indexer import ann, load_embedder
from search.embedded import EmbeddedSnapshot

K = 10
COLUMNS = ["passages", "index", "setting", "recall@10", "search ms p50", "search ms p99", "bytes / passage",
           "build s"]


def recall_and_time(search, queries: np.ndarray, truth: list[set[int]]) -> tuple[float, float, float]:
    """Mean recall@10 and p50/p99 milliseconds of ``search(query) -> ids`` over one query at a time."""
    hits, times = [], []
    for q, wanted in zip(queries, truth, strict=True):
        tick = time.perf_counter()
        found = search(q)
        times.append((time.perf_counter() - tick) * 1000)
        hits.append(len(set(found.tolist()) & wanted) / K)
    return float(np.mean(hits)), float(np.percentile(times, 50)), float(np.percentile(times, 99))


def segmented_row(reader: common.IndexReader, queries: np.ndarray, truth: list[set[int]]) -> list:
    """The dense search a searcher runs over the generation's segments as they are (segments trained alike
    probed together, the others each on its own), against the same exact answers."""
    segments = EmbeddedSnapshot.load(reader).segments
    groups = Counter(s.segment.training for s in segments.live if s.segment.training is not None)
    setting = f"{sum(groups.values())} IVF segments, {len(groups)} training{'s' * (len(groups) != 1)}"
    def served(q: np.ndarray) -> np.ndarray:
        return segments.dense(q, K, None)[0]

    recall_and_time(served, queries, truth)  # a warm-up pass: the segments' files are mapped, not yet read
    r, p50, p99 = recall_and_time(served, queries, truth)
    return [segments.size, f"{len(segments)} segments as served", setting, round(r, 4), round(p50, 2),
            round(p99, 2), "-", "-"]


def order(row: list) -> tuple:
    """Table order: by size, index, then the setting's number (nprobe 8 before nprobe 16)."""
    number = re.search(r"\d+", str(row[2]))
    return row[0], str(row[1]), int(number.group(0)) if number else -1, str(row[2])


def size_of(index: faiss.Index) -> int:
    return len(faiss.serialize_index(index))


def main(argv: list[str] | None = None) -> None:
    parser = common.parser_for(__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--hnsw", action="store_true", help="also build and measure HNSW (M 16/32) + SQ8")
    parser.add_argument("--openmp", action="store_true", help="also time exact search with OpenMP threads")
    common.add_eval_dir(parser)
    common.add_out(parser, "ann_recall")
    args = parser.parse_args(argv)
    faiss.omp_set_num_threads(1)  # one query at a time, as a search process serves it
    reader = common.IndexReader.open(args.index)
    index = reader.load_vectors()
    ids, vectors = reader.stored_vectors()
    n = len(ids)
    queries = load_embedder(reader.model_id).encode_queries(common.eval_questions(args.queries, eval_dir=args.eval_dir))
    exact = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    exact.add_with_ids(vectors, ids)
    truth = [set(row.tolist()) for row in exact.search(queries, K)[1]]
    rows = []
    r, p50, p99 = recall_and_time(lambda q: ann.search(exact, q, K)[0], queries, truth)
    rows.append([n, "exact (IDMap2,FlatIP)", "-", round(r, 4), round(p50, 2), round(p99, 2),
                 round(size_of(exact) / n), 0])
    if args.openmp:  # what ann.search avoids: OpenMP threads for a single query
        def threaded(q: np.ndarray) -> np.ndarray:
            faiss.omp_set_num_threads(os.cpu_count() or 1)
            return exact.search(q[None, :], K)[1][0]

        r, p50, p99 = recall_and_time(threaded, queries, truth)
        rows.append([n, "exact (IDMap2,FlatIP)", f"OpenMP {os.cpu_count()} threads", round(r, 4), round(p50, 2),
                     round(p99, 2), round(size_of(exact) / n), 0])
    kind = ann.kind_of(index)
    if kind == "ivf":
        ivf = faiss.downcast_index(index)
        default = ann.nprobe_for(ivf.nlist)
        per_passage = round(size_of(index) / n)
        for nprobe in sorted({8, 16, 32, 64, 128, 256, default} & set(range(1, ivf.nlist + 1))):
            r, p50, p99 = recall_and_time(lambda q, p=nprobe: ann.search(index, q, K, nprobe=p)[0], queries, truth)
            label = f"nprobe {nprobe}" + (" (default)" if nprobe == default else "")
            rows.append([n, f"IVF{ivf.nlist},SQ8 (store)", label, round(r, 4), round(p50, 2), round(p99, 2),
                         per_passage, "-"])
            print(rows[-1])
    if len(reader.segment_entries()) > 1:
        rows.append(segmented_row(reader, queries, truth))
        print(rows[-1])
    if args.hnsw:
        for m in (16, 32):
            tick = time.perf_counter()
            hnsw = faiss.IndexHNSWSQ(vectors.shape[1], faiss.ScalarQuantizer.QT_8bit, m, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = 40
            faiss.omp_set_num_threads(2)
            hnsw.train(vectors)
            hnsw.add(vectors)
            faiss.omp_set_num_threads(1)
            built = time.perf_counter() - tick
            per_passage = round((size_of(hnsw) + 8 * n) / n)  # + the id map an IDMap wrapper would add
            for ef in (32, 64, 128):
                hnsw.hnsw.efSearch = ef
                r, p50, p99 = recall_and_time(lambda q, h=hnsw: ids[h.search(q[None, :], K)[1][0]], queries, truth)
                rows.append([n, f"HNSW{m},SQ8", f"efSearch {ef}", round(r, 4), round(p50, 2), round(p99, 2),
                             per_passage, round(built, 1)])
                print(rows[-1])
            del hnsw
    measured = {(row[0], row[1], row[2]) for row in rows}  # an index's rows, its segments' kept apart
    merged = sorted(common.merged_rows(args.out, rows, lambda row: (row[0], row[1], row[2]) in measured), key=order)
    common.write_perf(args.out, {
        "title": "ANN recall@10 against exact search on the same vectors",
        "command": "python -m bench.ann_recall --index DIR [--hnsw] [--openmp]   (DIR from bench/synth_index.py)",
        "machine": common.machine(),
        "columns": COLUMNS,
        "rows": merged,
        "notes": f"{args.queries} real eval questions embedded at run time; vectors: real sample + synthetic "
                 "(bench/synth_index.py). Search time is the vector search alone, one query at a time, one thread "
                 "(unless the setting says OpenMP). "
                 "bytes/passage: the serialized FAISS index (what the search process holds).",
    })
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()

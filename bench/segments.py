"""Segments at scale: what a small batch costs on a large index, and what small segments cost searches.

    python -m bench.segments --index /tmp/souyi-perf/1m

INDEX is an index made by ``bench.synth_index``.  Documents are staged the way
that script stages them (real sentences recombined, their real terms) with
random unit vectors, and written through the store's writer in this process:
embedding is left out of every time (the issue's targets exclude it).
A search process (a child of this one, the model loaded before the clock
starts) measures opening the index, then hybrid p50/p99 over ``--queries``
real eval questions and its RSS after them.  Each measurement is the median
of ``--repeats`` such processes run one after another (on a shared machine one
run's p50 can differ from the next by as much as the layouts and postings
modes compared here differ), taken on the index as given, after
``--small-batches`` single-document batches committed without a merge, and
after ``optimize`` merged them away.

In this process, with a Searcher already open on the index:

* one 50-passage document: commit, and commit until the open Searcher counts
  it (its next search sees it); then removing it, the same way;
* a 10k-passage and a 100k-passage batch: commit times and their ratio (each
  removed again afterwards; ``--big-batches`` to choose the sizes).

The index ends holding the passages it started with, merged by ``optimize``.
Rows are merged into ``docs/perf/segments.json`` by passage count.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench import common, synth_index
from indexer import ann, merge_policy
from indexer.analyze import default_analyzer
from indexer.embedding import load_embedder
from indexer.segment_files import POSTINGS_ENV, POSTINGS_MODES, default_postings_mode
from indexer.stores import optimize_index

COLUMNS = ["passages", "as given", "measure", "value", "unit", "target", "met"]
#: Document numbers of the staged documents start here (synth_index numbers its own from 0).
FIRST_NUMBER = 900_000


class Staging:
    """Synthetic documents as bench.synth_index makes them, with random unit vectors."""

    def __init__(self, eval_dir: Path, passages: int) -> None:
        sentences = common.real_sentences(common.real_passages(eval_dir))
        analyzer = default_analyzer()
        self.sentences = sentences
        self.terms = [analyzer.tokens(s) for s in sentences]
        self.runs = common.sentence_runs([len(s) for s in sentences], passages, random.Random(18),
                                         synth_index.MIN_CHARS, synth_index.MAX_CHARS)
        self.used = 0
        self.rng = np.random.default_rng(18)

    def documents(self, writer: common.IndexWriter, passages: int) -> list[str]:
        """Stage ``passages`` new passages as documents of PASSAGES_PER_DOC; returns their names."""
        names = []
        per = synth_index.PASSAGES_PER_DOC
        for first in range(0, passages, per):
            runs = self.runs[self.used : self.used + min(per, passages - first)]
            number = FIRST_NUMBER + self.used // per
            self.used += len(runs)
            x = self.rng.standard_normal((len(runs), writer.manifest["model"]["dim"]))
            synth_index.stage(writer, self.sentences, self.terms, runs, number,
                              (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))
            names.append(f"synth/{number:06d}.txt")
        return names


def given_layout(index: Path) -> str:
    """The segments of ``index`` as the table names them: count, vector index kinds (with how many IVF
    trainings, when several IVF segments could share one), deleted passages."""
    reader = common.IndexReader.open(index)
    try:
        segments = reader.segment_entries()
        ivf = [e for e in segments if e["ann"]["kind"] == "ivf"]
        trainings = {ann.training_key(reader.load_segment(e).vectors) for e in ivf} if len(ivf) > 1 else set()
    finally:
        reader.close()
    kinds = sorted({s["ann"]["kind"] for s in segments}) + (
        [f"{len(trainings)} training{'s' * (len(trainings) != 1)}"] if trainings else [])
    deleted = sum(map(merge_policy.deleted, segments))
    return f"{len(segments)} segment{'s' * (len(segments) != 1)} ({', '.join(kinds)})" + (
        f", {deleted:,} deleted" if deleted else "")


def search_process(index: Path, queries: int, eval_dir: Path) -> dict:
    """Open the index with the model loaded, run ``queries`` hybrid searches (after a warm-up): open
    seconds, p50/p99 ms and RSS MB.  Runs as a child process (``--search-process``), so RSS is a searcher's."""
    questions = common.eval_questions(queries + 20, eval_dir=eval_dir)
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    embedder = load_embedder(manifest["model"]["id"])
    embedder.encode_queries(["warm up"])
    opened_s, searcher = common.timed(lambda: common.Searcher.open(index, embedder))
    for q in questions[:20]:
        searcher.search(q, mode="hybrid")
    timed = questions[20:] or questions  # a tiny eval set (the tests') has fewer than 20 to spare
    times = common.times_ms(lambda q: searcher.search(q, mode="hybrid"), timed)
    return {"open_s": round(opened_s, 3), "p50_ms": round(float(np.percentile(times, 50)), 1),
            "p99_ms": round(float(np.percentile(times, 99)), 1), "rss_mb": round(common.rss_bytes() / 2**20),
            "anon_mb": round(common.rss_bytes(kind="RssAnon") / 2**20),
            "file_mb": round(common.rss_bytes(kind="RssFile") / 2**20),
            "queries": len(times)}


def measured_search(index: Path, queries: int, eval_dir: Path, repeats: int) -> dict:
    """:func:`search_process` run ``repeats`` times, one process after another: the median of each figure,
    and every run's p50 under ``p50_runs`` (a shared machine's run-to-run spread is as large as the
    differences the table compares)."""
    runs = []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, "-m", "bench.segments", "--index", str(index), "--search-process",
                               "--queries", str(queries), "--eval-dir", str(eval_dir)],
                              cwd=common.ROOT, capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    median = {key: type(runs[0][key])(statistics.median(run[key] for run in runs)) for key in runs[0]}
    return {**median, "p50_runs": [run["p50_ms"] for run in runs]}


def visible_after(searcher: common.Searcher, change, expected: int) -> tuple[float, float]:
    """Seconds of ``change()`` (a commit) and seconds until the open ``searcher`` holds ``expected`` passages."""
    tick = time.perf_counter()
    change()
    committed = time.perf_counter() - tick
    while searcher.size != expected:
        time.sleep(0.001)
    return committed, time.perf_counter() - tick


def main(argv: list[str] | None = None) -> None:
    parser = common.parser_for(__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=300, help="hybrid searches per search process")
    parser.add_argument("--small-batches", type=int, default=50, help="single-document batches before optimize")
    parser.add_argument("--big-batches", type=int, nargs=2, default=(10_000, 100_000), metavar=("SMALL", "LARGE"),
                        help="passages of the two batches whose commit times are compared")
    parser.add_argument("--repeats", type=int, default=3,
                        help="search processes per measurement, whose median is reported (default: %(default)s)")
    parser.add_argument("--postings", choices=POSTINGS_MODES, default=default_postings_mode(),
                        help=f"how searchers read the postings (sets ${POSTINGS_ENV}; default: this platform's, "
                             "%(default)s); rows of the table name the mode, except map")
    parser.add_argument("--search-process", action="store_true", help=argparse.SUPPRESS)
    common.add_eval_dir(parser)
    common.add_out(parser, "segments")
    args = parser.parse_args(argv)
    if args.search_process:  # reads postings as the environment it inherits says
        print(json.dumps(search_process(args.index, args.queries, args.eval_dir)))
        return
    os.environ[POSTINGS_ENV] = args.postings  # this process's searcher and the search processes it starts
    per = synth_index.PASSAGES_PER_DOC
    small, large = args.big_batches
    staging = Staging(args.eval_dir, per * (1 + args.small_batches) + small + large)
    common.read_through(args.index)  # each measured search process starts with the index in the page cache
    before = measured_search(args.index, args.queries, args.eval_dir, args.repeats)
    n = json.loads((args.index / "manifest.json").read_text(encoding="utf-8"))["counts"]["passages"]
    layout = given_layout(args.index) + (f", {POSTINGS_ENV}={args.postings}" if args.postings != "map" else "")
    embedder = load_embedder(json.loads((args.index / "manifest.json").read_text(encoding="utf-8"))["model"]["id"])
    searcher = common.Searcher.open(args.index, embedder)
    # merge=False: a commit's own cost (the writer's merges after a commit are timed by optimize below)
    with common.IndexWriter(args.index, merge=False) as writer:
        names = staging.documents(writer, per)
        add = visible_after(searcher, writer.commit, n + per)
        writer.remove(names[0])
        remove = visible_after(searcher, writer.commit, n)
        batch_s = {}
        for size in (small, large):
            names = staging.documents(writer, size)
            batch_s[size] = common.timed(writer.commit)[0]
            for name in names:
                writer.remove(name)
            writer.commit()
    with common.IndexWriter(args.index, merge=False) as writer:
        added = []
        for _ in range(args.small_batches):
            added += staging.documents(writer, per)
            writer.commit()
    common.read_through(args.index)
    unmerged = measured_search(args.index, args.queries, args.eval_dir, args.repeats)
    optimize_s = common.timed(lambda: optimize_index(args.index))[0]  # the small segments into the big one
    common.read_through(args.index)
    merged = measured_search(args.index, args.queries, args.eval_dir, args.repeats)
    with common.IndexWriter(args.index, merge=False) as writer:
        for name in added:
            writer.remove(name)
        writer.commit()
    ratio = batch_s[large] / batch_s[small]

    def met(value: float, limit: float) -> str:
        return "yes" if value <= limit else "no"

    def spread(measured: dict) -> str:
        return " / ".join(f"{p50:g}" for p50 in measured["p50_runs"])

    rows = [
        ["add one 50-passage document: commit", round(add[0], 3), "s", None, None],
        ["add one 50-passage document: visible to an open searcher", round(add[1], 3), "s", "≤ 1 s",
         met(add[1], 1.0)],
        ["remove it: visible to an open searcher", round(remove[1], 3), "s", "≤ 0.5 s", met(remove[1], 0.5)],
        [f"commit a {small:,}-passage batch", round(batch_s[small], 2), "s", None, None],
        [f"commit a {large:,}-passage batch", round(batch_s[large], 2), "s", None, None],
        [f"ratio {large:,} / {small:,}", round(ratio, 2), "×", f"≈ {large / small:g} (proportional)", None],
        ["open the index, models loaded", before["open_s"], "s", "≤ 1 s", met(before["open_s"], 1.0)],
        [f"search process RSS after {before['queries']} queries", before["rss_mb"], "MB", "≤ 1,300 MB",
         met(before["rss_mb"], 1300)],
        ["  of which private memory (RssAnon: models, Python, per-generation arrays)", before["anon_mb"], "MB",
         None, None],
        ["  of which touched pages of memory-mapped index files (RssFile, page cache)", before["file_mb"], "MB",
         None, None],
        ["search process RSS after optimize", merged["rss_mb"], "MB", "≤ 1,300 MB", met(merged["rss_mb"], 1300)],
        ["  of which private memory (RssAnon)", merged["anon_mb"], "MB", None, None],
        ["hybrid p50, as given", before["p50_ms"], "ms", None, None],
        ["  p50 of each search process, as given", spread(before), "ms", None, None],
        ["hybrid p99, as given", before["p99_ms"], "ms", None, None],
        [f"hybrid p50 after {args.small_batches} single-document batches, no merge", unmerged["p50_ms"], "ms",
         "≤ 20 ms", met(unmerged["p50_ms"], 20)],
        ["  p50 of each search process, after the batches", spread(unmerged), "ms", None, None],
        [f"hybrid p99 after {args.small_batches} single-document batches, no merge", unmerged["p99_ms"], "ms",
         "≤ 60 ms", met(unmerged["p99_ms"], 60)],
        ["optimize (merge to one segment)", round(optimize_s, 1), "s", None, None],
        ["hybrid p50 after optimize", merged["p50_ms"], "ms", f"≤ {before['p50_ms']} + 10 %",
         met(merged["p50_ms"], 1.1 * before["p50_ms"])],
        ["hybrid p99 after optimize", merged["p99_ms"], "ms", f"≤ {before['p99_ms']} + 10 %",
         met(merged["p99_ms"], 1.1 * before["p99_ms"])],
    ]
    rows = [[n, layout, *row] for row in rows]
    for row in rows:
        print(row)
    common.write_perf(args.out, {
        "title": "Segments: small batches on a large index",
        "command": "python -m bench.segments --index DIR [--postings map|read|release]   "
                   "(DIR from python -m bench.synth_index --passages N --out DIR)",
        "machine": common.machine(),
        "columns": COLUMNS,
        "rows": sorted(common.merged_rows(args.out, rows, lambda row: row[:2] == [n, layout]),
                       key=lambda row: (row[0], row[1])),
        "notes": "Writes through the store's writer in the bench process, embedding left out (random unit "
                 "vectors; text and terms as bench.synth_index makes them). 'Visible' is the time from the start "
                 "of the commit until a Searcher already open in the same process counts the change. Searches: "
                 f"{args.queries} real eval questions, hybrid, k=10, after 20 warm-up ones, in a search process "
                 f"of their own ({args.repeats} per measurement, one after another: the median is reported, and "
                 "each one's p50 in the rows below the p50s) (segments: as given, then "
                 f"{args.small_batches} more after the small batches, then 1 "
                 "after optimize), each with the index files read once before it (warm page cache). RSS counts the "
                 "pages of memory-mapped files a process touched (RssFile) besides its own memory (RssAnon); rows "
                 f"marked {POSTINGS_ENV}=read: searchers read the postings with pread (--postings read); "
                 f"{POSTINGS_ENV}=release (the default on Linux): they map them and, after a search, unmap their pages "
                 "once the mapped files have grown by RELEASE_AFTER_BYTES since the last time; the others map them "
                 f"({POSTINGS_ENV}=map). Shared 2-core machine "
                 "(other jobs running): times are upper bounds.",
    })


if __name__ == "__main__":
    main()

"""Reading what was found: the document page and "similar passages", timed.

    python -m bench.document_view --work /tmp/souyi-docview --scale-index /tmp/souyi-perf/10k \\
        --scale-index /tmp/souyi-perf/100k

* **Document page.**  An index of the bundled report (real model) gets one
  more document of ``--chars`` characters (2,000,000 by default, the size
  ``souyi index`` accepts at most): lines of real sentences recombined
  (:func:`bench.common.sentence_runs`), a heading every 50 lines, written
  through ``IndexWriter`` as ``souyi add`` writes, with random unit vectors
  (the page never reads them).  Each page is requested through the app's WSGI
  interface in this process (Flask's test client: the whole request — store
  read, paragraphs, highlighting, rendering — without the network), the
  median of ``--repeats`` runs after one warm-up, the cases interleaved.
  The 2M-character document's page is one part of it (docs/api.md: parts of
  60,000 characters); ``/api/document`` returns all of it.
* **Similar passages.**  ``Searcher.similar(passage_id, k=10)`` on each
  ``--scale-index`` (made by ``bench.synth_index``), for ``--passages``
  random passages, with ``same_document`` False and True: the passage's
  stored vector is read and searched exactly as a dense query is.
"""

from __future__ import annotations

import hashlib
import random
import statistics
import urllib.parse
from pathlib import Path

import numpy as np

from bench import common
from indexer import build_index
from indexer.analyze import default_analyzer
from search import Searcher
from souyi import SAMPLE_DIR
from web import create_app

BIG_NAME = "long/two-million.txt"
LINES_PER_SECTION = 50
REPORT_QUERY = "杭州软件服务外包"
BIG_QUERY = "发展"


def build(work: Path, chars: int, eval_dir: Path) -> tuple[Path, int]:
    """The report's index plus a document of ``chars`` characters; the number of passages of that document."""
    index = work / f"index-{chars}"
    if (index / "manifest.json").exists():
        searcher = Searcher.open(index)
        try:
            return index, len(searcher.document(BIG_NAME).passages)
        finally:
            searcher.close()
    build_index([SAMPLE_DIR], index)
    sentences = common.real_sentences(common.real_passages(eval_dir))
    runs = common.sentence_runs([len(s) for s in sentences], chars // 80 + 1, random.Random(0), 60, 120)
    lines, used = [], 0
    for number, run in enumerate(runs):
        line = f"第{number // LINES_PER_SECTION + 1}节" if number % LINES_PER_SECTION == 0 else ""
        line = line or "".join(sentences[i] for i in run)
        if used + len(line) + 1 > chars:
            break
        lines.append(line)
        used += len(line) + 1
    text = "\n".join(lines)
    starts = np.cumsum([0] + [len(line) + 1 for line in lines])
    passages, heading = [], ""
    for number, line in enumerate(lines):
        if number % LINES_PER_SECTION == 0:
            heading = line
            continue
        passages.append(common.NewPassage(number + 1, int(starts[number]), int(starts[number]) + len(line), heading,
                                          line))
    analyzer = default_analyzer()
    with common.IndexWriter(index) as writer:
        rng = np.random.default_rng(0)
        vectors = rng.standard_normal((len(passages), writer.manifest["model"]["dim"])).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        doc = common.DocumentRecord(BIG_NAME, "two million characters", "bench/document_view.py", "utf-8",
                                    hashlib.sha256(text.encode()).hexdigest(), text)
        writer.add(doc, passages, vectors, [analyzer.tokens(p.text) for p in passages])
        writer.commit()
    return index, len(passages)


def time_pages(index: Path, repeats: int) -> list[list]:
    """Median and maximum time and size of each page, the cases interleaved."""
    searcher = Searcher.open(index)
    try:
        report = searcher.search(REPORT_QUERY, k=1)[0]
        big = searcher.document(BIG_NAME)
        middle = big.passages[len(big.passages) // 2].passage_id
        cases = {
            "/doc: bundled report, query, hit passage": ("/doc", report.doc_id, REPORT_QUERY, report.passage_id,
                                                         len(searcher.document(report.doc_id).text)),
            "/doc: long document, passage in the middle": ("/doc", BIG_NAME, None, middle, len(big.text)),
            f"/doc: long document, query {BIG_QUERY!r}, passage in the middle": ("/doc", BIG_NAME, BIG_QUERY,
                                                                                     middle, len(big.text)),
            "/api/document: long document (all of it)": ("/api/document", BIG_NAME, None, None, len(big.text)),
        }
        client = create_app(index, {"SOUYI_SEARCHER": searcher}).test_client()
        urls = {name: path + "?" + urllib.parse.urlencode({k: v for k, v in (("id", doc), ("q", q), ("passage", p))
                                                             if v is not None})
                for name, (path, doc, q, p, _) in cases.items()}
        sizes = {name: len(client.get(url).data) for name, url in urls.items()}  # warm-up
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(repeats):
            for name, url in urls.items():
                times[name] += common.times_ms(lambda u: client.get(u), [url])
    finally:
        searcher.close()
    return [[name, cases[name][4], round(statistics.median(ms), 1), round(max(ms), 1), round(sizes[name] / 1000)]
            for name, ms in times.items()]


def time_similar(index: Path, count: int) -> list[list]:
    """``similar`` on ``count`` random passages of ``index``, other documents only and all."""
    rows = []
    searcher = Searcher.open(index)
    try:
        snap = common.snapshot(searcher)
        size = snap.size
        candidates = random.Random(0).sample(range(2 * size), min(4 * count, 2 * size))
        stored = snap.passages(candidates)
        chosen = [pid for pid in candidates if pid in stored][:count]
        for same_document in (False, True):
            searcher.similar(chosen[0], k=10, same_document=same_document)  # warm-up
            ms = common.times_ms(lambda pid, s=same_document: searcher.similar(pid, k=10, same_document=s), chosen)
            rows.append([f"similar, k=10, same_document={same_document}", size, round(statistics.median(ms), 1),
                         round(float(np.percentile(ms, 90)), 1), None])
    finally:
        searcher.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = common.parser_for(__doc__, summary_only=True)
    parser.add_argument("--work", type=Path, required=True, help="where the index with the long document is made")
    parser.add_argument("--chars", type=int, default=2_000_000, help="length of the long document")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scale-index", type=Path, action="append", default=[],
                        help="an index made by bench.synth_index to time similar() on (repeatable)")
    parser.add_argument("--passages", type=int, default=50, help="random passages similar() is timed on")
    common.add_eval_dir(parser)
    common.add_out(parser, "document_view")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    index, big_passages = build(args.work, args.chars, args.eval_dir)
    rows = time_pages(index, args.repeats)
    for scale in args.scale_index:
        rows += time_similar(scale, args.passages)
    common.write_perf(args.out, {
        "title": "Reading what was found: the document page and similar passages",
        "command": "python -m bench.document_view --work DIR --scale-index DIR_10k --scale-index DIR_100k "
                   "--scale-index DIR_1m",
        "machine": common.machine(),
        "columns": ["request", "document chars / index passages", "median ms", "max (p90 for similar) ms",
                    "response KB"],
        "rows": rows,
        "notes": f"Pages through the app's WSGI interface in one process (no network), median of {args.repeats} "
                 f"runs after a warm-up, cases interleaved. The long document: {args.chars:,} characters, "
                 f"{big_passages:,} passages, a heading every {LINES_PER_SECTION} lines; its page shows one part of "
                 "60,000 characters. A page's time grows with the document's passages and matches (all are read "
                 "and the query is highlighted throughout to number the matches), not with the index. similar(): "
                 f"{args.passages} random passages of synth_index indexes, searched with the passage's vector as a "
                 "dense query is (exact FAISS or IVF by index size: 'How the vector index is chosen'). "
                 "Shared, busy machine: upper bounds.",
    })


if __name__ == "__main__":
    main()

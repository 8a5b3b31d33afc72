"""Does folding traditional to simplified Chinese cost simplified-only search anything?

Lexical retrieval only (no model): BM25 over the analyzer's terms of each
corpus entry (documents = corpus entries), queries ranked by BM25 score,
MRR@10 and Recall@1 against the qrels.  Each collection is scored

* with simplified queries, by the analyzer without folding (version 1) and with
  it (version 2): folding must not hurt the ordinary case;
* with the queries converted to traditional Chinese by OpenCC ``s2t`` (the
  package that provides the folding table), and with a traditional corpus
  (``s2t`` on every entry) searched by the simplified queries: folding should
  bring both back to about the simplified figure;
* with ``s2twp`` queries (Taiwan vocabulary: 软件 → 軟體, 信息 → 資訊), where
  folding characters one to one cannot close the whole gap.

    python -m bench.experiments.fold_check ../shared/eval/xquad_zh-zh ../shared/eval/cmrc2018_dev \\
        --out docs/perf/fold_check.json

CPU only; about 20 s on 2 cores.  ``--encodings`` instead measures encoding
detection (GBK, Big5, UTF-16 without BOM) on random substrings of the first
collection, against charset-normalizer:

    python -m bench.experiments.fold_check ../shared/eval/cmrc2018_dev --encodings
"""

from __future__ import annotations

import random
import time

import numpy as np
from opencc import OpenCC  # opencc-python-reimplemented, the folding table's package

from bench.common import add_out, parser_for, write_json
from indexer import DocumentError
from indexer.analyze import default_analyzer, normalize
from indexer.bm25 import BM25Index
from search.evaluate import load_collection


def tokenize(texts: list[str], fold: bool) -> list[list[str]]:
    analyzer = default_analyzer()
    return [analyzer.terms(normalize(text, fold_traditional=fold)) for text in texts]


def score(index: BM25Index, doc_ids: list[str], queries: list[list[str]], relevant: list[set[str]]) -> dict:
    reciprocal, top1 = [], []
    for terms, wanted in zip(queries, relevant, strict=True):
        scores = index.scores(terms)
        order = np.argsort(-scores, kind="stable")[:10]
        rank = next((r for r, row in enumerate(order, 1) if scores[row] > 0 and doc_ids[row] in wanted), None)
        reciprocal.append(1.0 / rank if rank else 0.0)
        top1.append(rank == 1)
    return {"mrr@10": round(float(np.mean(reciprocal)), 4), "recall@1": round(float(np.mean(top1)), 4)}


def check(path: str) -> dict:
    collection = load_collection(path)
    s2t, s2twp = OpenCC("s2t"), OpenCC("s2twp")
    doc_ids = [d.name for d in collection.documents]
    corpus = [d.text for d in collection.documents]
    queries = [text for _, text in collection.queries]
    relevant = [collection.relevant[qid] for qid, _ in collection.queries]
    started = time.perf_counter()
    corpus_t = [s2t.convert(text) for text in corpus]
    queries_t = [s2t.convert(text) for text in queries]
    queries_tw = [s2twp.convert(text) for text in queries]
    convert_seconds = time.perf_counter() - started
    changed = sum(
        a != b for text in corpus for a, b in zip(normalize(text), normalize(text, fold_traditional=False), strict=True)
    )
    rows = {}
    for fold in (False, True):
        label = "folded" if fold else "not folded"
        started = time.perf_counter()
        index = BM25Index.build(tokenize(corpus, fold))
        index_t = BM25Index.build(tokenize(corpus_t, fold))
        build_seconds = time.perf_counter() - started
        rows[label] = {
            "simplified queries, simplified corpus": score(index, doc_ids, tokenize(queries, fold), relevant),
            "traditional queries (s2t), simplified corpus": score(index, doc_ids, tokenize(queries_t, fold), relevant),
            "simplified queries, traditional corpus (s2t)": score(index_t, doc_ids, tokenize(queries, fold), relevant),
            "Taiwan-vocabulary queries (s2twp), simplified corpus": score(
                index, doc_ids, tokenize(queries_tw, fold), relevant
            ),
            "tokenize + build seconds (both corpora)": round(build_seconds, 1),
        }
    n_chars = sum(map(len, corpus))
    return {
        "collection": collection.name,
        "n_docs": len(corpus),
        "n_queries": len(queries),
        "corpus_chars": n_chars,
        "simplified corpus chars changed by the traditional fold": changed,
        "opencc conversion seconds": round(convert_seconds, 1),
        "results": rows,
    }


def encoding_check(path: str, per_cell: int = 300, seed: int = 7) -> None:
    """Print how often souyi's decoder and charset-normalizer read short Chinese texts right.

    Samples are random substrings of the collection's corpus (converted with
    ``s2t`` for Big5), encoded without a BOM.
    """
    from charset_normalizer import from_bytes

    from indexer.decode import decode_bytes

    s2t = OpenCC("s2t")
    corpus = [d.text for d in load_collection(path).documents]
    rng = random.Random(seed)
    print("| length (chars) | encoding | souyi correct | charset-normalizer correct |")
    print("|---|---|---|---|")
    for length in (4, 8, 16, 64, 256):
        for codec in ("gbk", "big5", "utf-16-le"):
            n = ours = theirs = 0
            for _ in range(per_cell):
                doc = rng.choice(corpus)
                start = rng.randrange(max(1, len(doc) - length))
                text = doc[start : start + length]
                if codec == "big5":
                    text = s2t.convert(text)
                try:
                    data = text.encode(codec)
                except UnicodeEncodeError:  # Big5 lacks some characters
                    continue
                n += 1
                try:
                    ours += decode_bytes(data, "sample")[0] == text
                except DocumentError:
                    pass
                best = from_bytes(data).best()
                theirs += best is not None and str(best) == text
            print(f"| {length} | {codec} | {ours}/{n} | {theirs}/{n} |")


def main(argv: list[str] | None = None) -> None:
    parser = parser_for(__doc__)
    parser.add_argument("collections", nargs="+")
    add_out(parser, "fold_check")
    parser.add_argument(
        "--encodings", action="store_true", help="instead, measure encoding detection on the first collection"
    )
    parser.add_argument("--per-cell", type=int, default=300, help="--encodings: samples per length and encoding")
    args = parser.parse_args(argv)
    if args.encodings:
        encoding_check(args.collections[0], args.per_cell)
        return
    results = [check(path) for path in args.collections]
    for result in results:
        print(
            f"\n{result['collection']}: {result['n_docs']} docs, {result['n_queries']} queries; "
            f"{result['simplified corpus chars changed by the traditional fold']} of {result['corpus_chars']} "
            "simplified corpus characters changed by the fold"
        )
        print("| queries / corpus | MRR@10 not folded | MRR@10 folded | R@1 not folded | R@1 folded |")
        print("|---|---|---|---|---|")
        plain, folded = result["results"]["not folded"], result["results"]["folded"]
        for case, before in plain.items():
            if not isinstance(before, dict):
                continue
            after = folded[case]
            print(
                f"| {case} | {before['mrr@10']:.3f} | {after['mrr@10']:.3f} | "
                f"{before['recall@1']:.3f} | {after['recall@1']:.3f} |"
            )
    write_json(args.out, results)


if __name__ == "__main__":
    main()

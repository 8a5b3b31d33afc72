"""Quality parity of the Milvus backend: ``souyi eval`` numbers of both backends on the same indexes.

Each collection is indexed once into the embedded store (collections with the
same corpus share that index), copied into Milvus (milvus-lite) with
``souyi migrate``'s code path (same passages, vectors and terms: no
re-embedding), then measured with the evaluation ``souyi eval --index`` runs.

    python -m bench.milvus_quality [--work /tmp/souyi-milvus-quality] [--out docs/perf/milvus_quality.json] SETS...

Indexes are kept in WORK and reused: ``embedded-<corpus>`` and
``milvus-<corpus>``, where <corpus> is the first 12 hex digits of the SHA-256
of the set's corpus.jsonl (``bench.experiments.fusion_ablation`` names its indexes
``corpus-<corpus>`` the same way, so a symlink to one of those skips the
embedding).  The results file is rewritten after each set.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.common import (
    EVAL_DIR,
    MilvusTarget,
    add_out,
    collection_index,
    corpus_digest,
    migrate,
    parser_for,
    write_json,
)
from indexer import build_from_documents
from search.evaluate import evaluate, load_collection

DEFAULT_SETS = [EVAL_DIR / "xquad_zh-zh", EVAL_DIR / "xquad_en-zh", EVAL_DIR / "cmrc2018_dev"]


def main(argv: list[str] | None = None) -> None:
    parser = parser_for(__doc__)
    parser.add_argument("sets", nargs="*", type=Path, default=DEFAULT_SETS)
    parser.add_argument("--work", type=Path, default=Path("/tmp/souyi-milvus-quality"))
    add_out(parser, "milvus_quality")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    results = {}
    for folder in args.sets:
        collection = load_collection(folder)
        corpus = corpus_digest(folder)
        embedded = collection_index(folder, args.work, "embedded")
        milvus = collection_index(folder, args.work, "milvus")
        if not (embedded / "manifest.json").is_file():
            build_from_documents(collection.documents, embedded)
        if not (milvus / "manifest.json").is_file():
            migrate(embedded, milvus, MilvusTarget(str(args.work / "milvus.db"), f"quality_{corpus}"))
        row = {name: evaluate(collection, index_dir=path) for name, path in (("embedded", embedded),
                                                                              ("milvus", milvus))}
        row["mrr@10 difference"] = {
            mode: round(row["milvus"]["modes"][mode]["mrr@10"] - row["embedded"]["modes"][mode]["mrr@10"], 4)
            for mode in row["embedded"]["modes"]
        }
        results[collection.name] = row
        print(collection.name, json.dumps(row["mrr@10 difference"]), flush=True)
        write_json(args.out, results)


if __name__ == "__main__":
    main()

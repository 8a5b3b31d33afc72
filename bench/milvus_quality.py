"""Quality parity of the Milvus backend: ``souyi eval`` numbers of both backends on the same indexes.

Each collection is indexed once into the embedded store (collections with the
same corpus share that index), copied into Milvus (milvus-lite) with
``souyi migrate``'s code path (same passages, vectors and terms: no
re-embedding), then measured with the evaluation ``souyi eval --index`` runs.

    python bench/milvus_quality.py [--work /tmp/souyi-milvus-quality] [--out docs/milvus_quality.json] SETS...

Indexes are kept in WORK and reused: ``embedded-<corpus>`` and
``milvus-<corpus>``, where <corpus> is the first 12 hex digits of the SHA-256
of the set's corpus.jsonl (``bench/fusion_ablation.py`` names its indexes
``corpus-<corpus>`` the same way, so a symlink to one of those skips the
embedding).  The results file is rewritten after each set.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from indexer.backends import MilvusTarget, migrate
from indexer.build import build_from_documents
from search.evaluate import evaluate, load_collection

DEFAULT_SETS = ["../shared/eval/xquad_zh-zh", "../shared/eval/xquad_en-zh", "../shared/eval/cmrc2018_dev"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="*", default=DEFAULT_SETS)
    parser.add_argument("--work", type=Path, default=Path("/tmp/souyi-milvus-quality"))
    parser.add_argument("--out", type=Path, default=Path("docs/milvus_quality.json"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results = {}
    for folder in args.sets:
        collection = load_collection(folder)
        corpus = hashlib.sha256((Path(folder) / "corpus.jsonl").read_bytes()).hexdigest()[:12]
        embedded, milvus = args.work / f"embedded-{corpus}", args.work / f"milvus-{corpus}"
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
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

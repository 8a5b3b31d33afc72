"""Cost of keeping a real-sized corpus up to date: rebuild, no-op re-add, change one, add one, remove one.

    python -m bench.corpus_ops --eval-dir ../shared/eval --work /tmp/souyi-corpus --out docs/perf/corpus_ops.json

The corpus is made from the eval collections' paragraphs: each paragraph is
cut in two halves at a sentence end and each half becomes one .txt file, in
one folder per collection (cmrc2018_dev and xquad_zh-zh: 2,168 documents;
a paragraph of one sentence gives one file).
Every operation runs through the same API as ``souyi index/add/remove``; the
model is loaded once, before the clock starts, as in a long-running process.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from bench.common import add_eval_dir, add_out, parser_for, timed, write_json
from indexer import add_documents, build_index, check_index, load_embedder, remove_documents

_SENTENCE_END = re.compile(r"(?<=[。！？])")


def make_corpus(eval_root: Path, folder: Path) -> int:
    """Write the two halves of every paragraph as files; return the number of files."""
    shutil.rmtree(folder, ignore_errors=True)
    count = 0
    for name in ("cmrc2018_dev", "xquad_zh-zh"):
        (folder / name).mkdir(parents=True)
        for line in (eval_root / name / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            sentences = [s for s in _SENTENCE_END.split(row["text"]) if s]
            half = max(1, len(sentences) // 2)
            for part, chunk in (("a", sentences[:half]), ("b", sentences[half:])):
                if chunk:
                    (folder / name / f"{row['id']}-{part}.txt").write_text("".join(chunk), encoding="utf-8")
                    count += 1
    return count


def main(argv: list[str] | None = None) -> None:
    parser = parser_for(__doc__)
    add_eval_dir(parser)
    parser.add_argument("--work", type=Path, default=Path("/tmp/souyi-corpus"))
    add_out(parser, "corpus_ops")
    args = parser.parse_args(argv)
    docs, index = args.work / "docs", args.work / "index"
    n_files = make_corpus(args.eval_dir, docs)
    shutil.rmtree(index, ignore_errors=True)
    embedder = load_embedder()
    results: dict[str, object] = {"documents": n_files}

    seconds, report = timed(lambda: build_index([docs], index, embedder=embedder))
    results["full_rebuild_s"] = round(seconds, 2)
    results["passages"] = report.passages
    seconds, report = timed(lambda: add_documents([docs], index, embedder=embedder))
    results["noop_readd_s"] = round(seconds, 3)
    assert report.unchanged == n_files and report.added == report.updated == 0

    victim = sorted((docs / "cmrc2018_dev").glob("*.txt"))[0]
    victim.write_text(victim.read_text(encoding="utf-8") + "本段已经修订。", encoding="utf-8")
    seconds, report = timed(lambda: add_documents([docs], index, embedder=embedder))
    results["change_one_s"] = round(seconds, 3)
    assert report.updated == 1

    (docs / "new-report.txt").write_text("浙江省新增一份软件产业报告，收入同比增长。", encoding="utf-8")
    seconds, _ = timed(lambda: add_documents([docs], index, embedder=embedder))
    results["add_one_s"] = round(seconds, 3)
    seconds, _ = timed(lambda: remove_documents(["new-report.txt"], index))
    results["remove_one_s"] = round(seconds, 3)
    results["check_ok"] = check_index(index) == []

    print(json.dumps(results, indent=2))
    write_json(args.out, results)


if __name__ == "__main__":
    main()

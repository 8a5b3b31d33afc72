"""Faults: a damaged file, a full disk, a writer killed while it deletes.

Each fault must leave an index that opens, passes ``souyi check`` (or says
what is wrong and how to get out of it) and holds exactly the batches that
committed.  SIGKILL during *adding* is tests/test_crash.py; here it is a
delete.  The full disk is a real one: a 2 MiB tmpfs mounted for the test
(needs root; skipped otherwise), filled to leave a little less room each time.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer import add_documents, build_index, check_index, list_documents
from indexer.errors import IndexFormatError
from search import Searcher
from souyi.cli import main
from web import create_app

QUERY = "港口货物吞吐量"


def write_pairs(folder: Path, numbers) -> None:
    """Documents in pairs (``-a``/``-b``): a batch removes or adds both, so half a pair means half a batch."""
    folder.mkdir(exist_ok=True)
    for number in numbers:
        for part in "ab":
            text = f"第{number}号文件{part}：浙江省港口货物吞吐量统计，宁波港与舟山港。"
            (folder / f"doc-{number:04d}-{part}.txt").write_text(text * 2, encoding="utf-8")


def ranking(index: Path, embedder) -> list[tuple[str, float]]:
    searcher = Searcher.open(index, embedder)
    try:
        return [(hit.doc_id, hit.score) for hit in searcher.search(QUERY, k=10)]
    finally:
        searcher.close()


@pytest.fixture(scope="module")
def healthy_index(tmp_path_factory, embedder) -> tuple[Path, list[tuple[str, float]]]:
    """Built once: an index of four pairs, and its ranking for QUERY."""
    folder = tmp_path_factory.mktemp("faults")
    write_pairs(folder / "docs", range(4))
    build_index([folder / "docs"], folder / "index", embedder=embedder)
    return folder / "index", ranking(folder / "index", embedder)


@pytest.fixture()
def small_index(healthy_index, tmp_path) -> Path:
    """A fresh copy of the healthy index, to damage."""
    return Path(shutil.copytree(healthy_index[0], tmp_path / "index"))


def run_check(capsys, index: Path, *extra: str) -> tuple[int, str]:
    code = main(["check", "--index", str(index), *extra])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out + err


# ---------------------------------------------------------------- damaged files


def garble(path: Path, keep: int = 0) -> None:
    """Overwrite a file with junk after its first ``keep`` bytes (same length)."""
    data = bytearray(path.read_bytes())
    rng = random.Random(len(data))
    for i in range(keep, len(data)):
        data[i] = rng.randrange(256)
    path.write_bytes(bytes(data))


SEGMENT_VECTORS, SEGMENT_LEXICAL = "segments/*/vectors.faiss", "segments/*/lexical"
DAMAGE = {
    "vectors truncated": lambda ix: _truncate(next(ix.glob(SEGMENT_VECTORS))),
    "vectors garbled": lambda ix: garble(next(ix.glob(SEGMENT_VECTORS))),
    "bm25 garbled": lambda ix: garble(next(ix.glob(f"{SEGMENT_LEXICAL}/tfs.npy"))),
    "bm25 deleted": lambda ix: next(ix.glob(f"{SEGMENT_LEXICAL}/offsets.npy")).unlink(),
    "both garbled": lambda ix: [garble(f) for f in [*ix.glob(SEGMENT_VECTORS), *ix.glob(f"{SEGMENT_LEXICAL}/*.npy")]],
}


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_vectors_or_bm25_are_found_and_rebuilt_from_sqlite(healthy_index, small_index, embedder, capsys,
                                                                   damage):
    before = healthy_index[1]
    DAMAGE[damage](small_index)
    code, output = run_check(capsys, small_index)
    assert code == 1 and "souyi check --repair" in output, output
    code, output = run_check(capsys, small_index, "--repair")
    assert code == 0 and output.strip().endswith("ok"), output
    assert check_index(small_index) == []
    assert ranking(small_index, embedder) == before  # same vectors and terms: nothing re-read or re-embedded


SQLITE_DAMAGE = {
    "not a database": lambda db: db.write_bytes(os.urandom(100)),
    "pages garbled": lambda db: garble(db, keep=4096),  # the header survives, the tables do not
    "truncated": _truncate,
}


@pytest.mark.parametrize("damage", list(SQLITE_DAMAGE))
def test_damaged_sqlite_is_reported_with_the_way_out(small_index, capsys, damage):
    db = small_index / "passages.sqlite3"
    for leftover in small_index.glob("passages.sqlite3-*"):  # a clean shutdown leaves no WAL to recover from
        leftover.unlink()
    SQLITE_DAMAGE[damage](db)
    for extra in ((), ("--repair",)):
        code, output = run_check(capsys, small_index, *extra)
        assert code == 1, output
        assert "damaged" in output and f"souyi index SOURCES... --index {small_index}" in output, output
        assert "--repair --index" not in output  # repair cannot help: it would only rebuild from the damage


def test_searching_a_damaged_database_is_an_index_format_error(small_index, embedder):
    searcher = Searcher.open(small_index, embedder)
    garble(small_index / "passages.sqlite3", keep=4096)
    with pytest.raises(IndexFormatError, match="souyi check --index"):
        searcher.search(QUERY)
    response = create_app(small_index, {"SOUYI_SEARCHER": searcher}).test_client().get(f"/api/search?q={QUERY}")
    assert response.status_code == 503 and "souyi check" in response.get_json()["message"]


def test_the_command_line_on_a_damaged_database_exits_3_naming_souyi_check(small_index, capsys):
    garble(small_index / "passages.sqlite3", keep=4096)
    code = main(["list", "--index", str(small_index)])
    err = capsys.readouterr().err
    assert code == 3 and "souyi: error:" in err and "souyi check --index" in err and "Traceback" not in err, err


# ---------------------------------------------------------------- a full disk


@contextlib.contextmanager
def mounted_tmpfs(mount: Path, size: str = "2m") -> Iterator[Path]:
    """A real file system of ``size`` (tmpfs) at ``mount``; skips the test where it cannot be mounted (not root)."""
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); run as root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture()
def tiny_disk(tmp_path):
    """A real 2 MiB file system."""
    with mounted_tmpfs(tmp_path / "disk") as mount:
        yield mount


def fill(disk: Path, leave: int) -> Path:
    """A filler file that leaves about ``leave`` bytes free."""
    stat = os.statvfs(disk)
    filler = disk / "filler"
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))
    return filler


#: Free bytes left before each batch: none, too little for the new files, then room (the long run sweeps finer).
FREE_BYTES = (0, 65536, 1 << 20)


def full_disk_batches(disk: Path, tmp_path: Path, embedder, free_bytes: tuple[int, ...]) -> int:
    """One batch per entry of ``free_bytes`` on a disk filled to leave that much; returns how many failed.

    Each batch must land whole or not at all, leave ``check`` clean and the index searchable.
    """
    docs = tmp_path / "docs"
    write_pairs(docs, range(2))
    index = disk / "index"
    build_index([docs], index, embedder=embedder)
    failures = 0
    for number, leave in enumerate(free_bytes, start=10):
        before = {d.name for d in list_documents(index)}
        write_pairs(docs, [number])
        filler = fill(disk, leave)
        try:
            add_documents([docs], index, embedder=embedder)
        except (OSError, sqlite3.OperationalError) as exc:  # FAISS's failed write_index is an OSError too
            failures += 1
            assert re.search(r"No space left|disk is full|disk I/O error", str(exc)), exc
        finally:
            filler.unlink()
        after = {d.name for d in list_documents(index)}
        pending = {f"doc-{n:04d}-{p}.txt" for n in range(10, number + 1) for p in "ab"} - before
        assert after - before in (set(), pending)  # the whole batch or nothing
        assert check_index(index) == [], leave
        assert Searcher.open(index, embedder).search(QUERY, k=3)
    assert {f"doc-{number:04d}-a.txt" for number in range(10, 10 + len(free_bytes))} <= after  # all there in the end
    return failures


def test_a_full_disk_fails_the_batch_and_keeps_the_index(tiny_disk, tmp_path, embedder, capsys):
    assert full_disk_batches(tiny_disk, tmp_path, embedder, FREE_BYTES) >= 2  # the disk really was full
    index = tiny_disk / "index"
    filler = fill(tiny_disk, 0)  # the command line says so in one line (remove: no model to load)
    code = main(["remove", "doc-0000-a.txt", "doc-0000-b.txt", "--index", str(index)])
    filler.unlink()
    err = capsys.readouterr().err
    assert code == 1 and "souyi: error:" in err and "Traceback" not in err, err
    assert "doc-0000-a.txt" in {d.name for d in list_documents(index)}


# ---------------------------------------------------------------- SIGKILL while deleting

REMOVER = r"""
import sys
from indexer import list_documents, remove_documents
index = sys.argv[1]
print("ready", flush=True)
numbers = sorted({int(d.name[4:8]) for d in list_documents(index)})
for number in numbers:
    remove_documents([f"doc-{number:04d}-a.txt", f"doc-{number:04d}-b.txt"], index)
    print(f"removed {number}", flush=True)
"""


def kill_while_removing(index: Path, script: Path, env: dict, after: int, delay: float) -> set[int]:
    """Start a remover, SIGKILL it ``delay`` s after it reported ``after`` removals; the pairs it reported
    removed.  Counting reports first makes the kill land mid-run however fast or slow the machine is;
    the delay puts it at a random point of the next delete."""
    remover = subprocess.Popen([sys.executable, str(script), str(index)], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=env)
    assert remover.stdout.readline().strip() == "ready"
    reported = [remover.stdout.readline() for _ in range(after)]
    time.sleep(delay)
    remover.send_signal(signal.SIGKILL)
    output, _ = remover.communicate(timeout=60)
    return {int(n) for n in re.findall(r"removed (\d+)", "".join(reported) + output)}


def check_pairs(index: Path, removed: set[int], trial: int) -> set[int]:
    assert check_index(index) == [], f"trial {trial}"
    names = [d.name for d in list_documents(index)]
    halves = {part: {int(n[4:8]) for n in names if n.endswith(f"-{part}.txt")} for part in "ab"}
    assert halves["a"] == halves["b"], f"trial {trial}: half a delete is visible"
    assert not removed & halves["a"], f"trial {trial}: a delete that reported its commit came back"
    return halves["a"]


def sigkill_during_deletes(tmp_path: Path, embedder, env: dict, trials: int, pairs: int, seed: int) -> dict:
    """``trials`` removers killed at random moments; returns what was seen (the long run reports it)."""
    write_pairs(tmp_path / "docs", range(pairs))
    index = tmp_path / "index"
    build_index([tmp_path / "docs"], index, embedder=embedder)
    script = tmp_path / "remover.py"
    script.write_text(REMOVER, encoding="utf-8")
    rng = random.Random(seed)
    removed: set[int] = set()
    mid_run = 0
    for trial in range(trials):
        removed |= kill_while_removing(index, script, env, rng.randint(0, 3), rng.uniform(0.0, 0.05))
        left = check_pairs(index, removed, trial)
        if not left:
            break
        mid_run += 1
    searcher = Searcher.open(index, embedder)
    assert all(int(hit.doc_id[4:8]) not in removed for hit in searcher.search(QUERY, k=50))
    return {"trials": trial + 1, "killed_mid_run": mid_run, "pairs": pairs, "removed_reported": len(removed),
            "left": len(left)}


def test_sigkill_during_deletes_never_shows_half_a_delete(tmp_path, embedder, cli_env):
    env = dict(cli_env, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    seen = sigkill_during_deletes(tmp_path, embedder, env, trials=3, pairs=30, seed=20081126)
    assert seen["removed_reported"] >= 1 and seen["killed_mid_run"] >= 1  # kills landed mid-run, not only after it

"""The Milvus store over the network: a real ``milvus-lite server`` on loopback, several processes.

A milvus-lite data directory is locked to one process, so serving and
indexing from separate processes goes through ``milvus-lite server``; the
same code then talks to a Milvus cluster.  The server is started here on a
free port and stopped (and its data directory unlocked) before the test ends.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from indexer.build import build_index
from indexer.stores import MilvusTarget, check_index
from search import Searcher
from souyi import SAMPLE_DIR

pytest.importorskip("pymilvus", reason="the Milvus store needs pip install 'souyi[milvus]'")
SERVER = shutil.which("milvus-lite")
pytestmark = pytest.mark.skipif(SERVER is None, reason="milvus-lite (pip install 'souyi[milvus]') provides the server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def milvus_server(data_dir: Path, port: int) -> Iterator[str]:
    """A ``milvus-lite server`` on loopback ``port``; yields its URI and stops it on exit."""
    process = subprocess.Popen([SERVER, "server", "--data-dir", str(data_dir), "--host", "127.0.0.1",
                                "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"milvus-lite server exited: {process.stderr.read().decode()[-2000:]}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("milvus-lite server did not start within 60 s")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()


def _search_cli(index: Path, query: str, env: dict) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "souyi", "search", query, "--index", str(index), "--json", "-k", "3"],
                         capture_output=True, text=True, env=env, timeout=300, check=True)
    return [hit["doc_id"] + f"¶{hit['paragraph']}" for hit in json.loads(out.stdout)["hits"]]


def test_index_and_search_from_several_processes_through_a_server(tmp_path, embedder, cli_env):
    data_dir, index = tmp_path / "milvus-data", tmp_path / "index"
    query = "杭州软件服务外包"
    port = _free_port()
    with milvus_server(data_dir, port) as uri:
        build_index([SAMPLE_DIR], index, embedder=embedder, milvus=MilvusTarget(uri, "served"))
        in_process = Searcher.open(index, embedder)
        expected = [f"{h.doc_id}¶{h.paragraph}" for h in in_process.search(query, k=3)]
        assert _search_cli(index, query, cli_env) == expected  # a second process, same collection
        assert check_index(index) == []
        in_process.close()
    assert not (data_dir / "LOCK").exists() or _unlocked(data_dir / "LOCK")

    with milvus_server(data_dir, port):  # restarted: the data persisted, the collections must be loaded again
        reopened = Searcher.open(index, embedder)  # loads the collections again after the restart
        assert [f"{h.doc_id}¶{h.paragraph}" for h in reopened.search(query, k=3)] == expected
        reopened.close()


def _unlocked(lock: Path) -> bool:
    """True when nobody holds the ``flock`` on ``lock`` any more."""
    import fcntl

    with open(lock, "rb") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fh, fcntl.LOCK_UN)
        return True

"""``souyi add --server`` and ``souyi remove --server`` against a real ``souyi serve`` process."""

from __future__ import annotations

import os
import shutil

import pytest
from test_cli import souyi
from test_uploads import READ, WRITE, search
from test_web import running_server

from indexer import list_documents


@pytest.fixture(scope="module")
def remote(sample_index, cache_dir, tmp_path_factory):
    """(base URL, index, token file, environment) of a server with the write routes on a copy of the sample."""
    root = tmp_path_factory.mktemp("remote")
    index = root / "index"
    shutil.copytree(sample_index, index)
    (root / "write").write_text(WRITE)
    (root / "read").write_text(READ)
    env = dict(os.environ, SOUYI_CACHE_DIR=str(cache_dir))
    with running_server(env, root / "serve.log", "--index", str(index), "--write-token-file", str(root / "write"),
                        "--read-token-file", str(root / "read")) as (base, _):
        yield base, index, root / "write", env


def test_add_and_remove_through_a_server(remote, tmp_path):
    base, index, token, env = remote
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "taizhou.txt").write_text("台州模具产业集群年产值创新高。", encoding="utf-8")
    (folder / "taizhou.txt.meta.json").write_text('{"city": "台州"}', encoding="utf-8")
    (folder / "port.md").write_bytes("# Port\n\nThe Zhoushan port moved vexillium ore.".encode("utf-16"))
    (folder / "blob.txt").write_bytes(b"\x00\x01\x02" * 100)
    added = souyi("add", str(folder), "--server", base, "--token-file", str(token), "--meta", "year=2010",
                  "--name-prefix", "remote", env=env)
    assert added.returncode == 1, added.stderr  # one file refused, the others in
    assert "refused: remote/blob.txt" in added.stderr and "added 2, updated 0, unchanged 0" in added.stdout
    assert WRITE not in added.stdout + added.stderr
    docs = {doc.name: doc for doc in list_documents(index)}
    assert docs["remote/taizhou.txt"].meta == {"year": "2010", "city": "台州"}
    assert search(base, "vexillium")[0]["doc_id"] == "remote/port.md"
    assert search(base, "台州模具产业集群")[0]["doc_id"] == "remote/taizhou.txt"
    again = souyi("add", str(folder / "port.md"), "--server", base, "--token-file", str(token), "--name-prefix",
                  "remote", "--meta", "year=2010", env=env)
    assert again.returncode == 0 and "unchanged 1" in again.stdout  # same bytes, same metadata
    missing = souyi("remove", "remote/port.md", "no/such/doc", "--server", base, "--token-file", str(token), env=env)
    assert missing.returncode == 1 and "no/such/doc" in missing.stderr
    assert "remote/port.md" in {doc.name for doc in list_documents(index)}
    removed = souyi("remove", "remote/port.md", "--server", base, "--token-file", str(token), env=env)
    assert removed.returncode == 0 and "removed remote/port.md" in removed.stdout
    assert "remote/port.md" not in {doc.name for doc in list_documents(index)}


def test_remote_mistakes_are_clear(remote, tmp_path):
    base, _, token, env = remote
    doc = tmp_path / "a.txt"
    doc.write_text("丽水。", encoding="utf-8")
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token")
    refused = souyi("add", str(doc), "--server", base, "--token-file", str(wrong), env=env)
    assert refused.returncode == 1 and "refused the token" in refused.stderr and "not-the-token" not in refused.stderr
    read = tmp_path / "read"
    read.write_text(READ)
    assert souyi("add", str(doc), "--server", base, "--token-file", str(read), env=env).returncode == 1
    assert souyi("add", str(doc), "--server", base, env=env).returncode == 2  # no token file
    usage = souyi("add", str(doc), "--server", base, "--token-file", str(token), "--model", "x", env=env)
    assert usage.returncode == 2 and "--model" in usage.stderr
    assert souyi("remove", "a.txt", "--token-file", str(token), env=env).returncode == 2  # no --server
    (tmp_path / "empty").write_text("\n")
    assert souyi("add", str(doc), "--server", base, "--token-file", str(tmp_path / "empty"), env=env).returncode == 2
    gone = souyi("add", str(doc), "--server", base, "--token-file", str(tmp_path / "missing"), env=env)
    assert gone.returncode == 2 and "cannot read the token file" in gone.stderr
    down = souyi("add", str(doc), "--server", "http://127.0.0.1:9", "--token-file", str(token), env=env)
    assert down.returncode == 1 and "cannot reach" in down.stderr

"""A server killed with SIGKILL in the middle of an upload job: its worker dies with it, the index stays at the
last committed batch, and after a restart the job is reported lost (never done) while earlier jobs stay done."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from test_uploads import WRITE, call, upload, wait
from test_web import running_server

from indexer import check_index, list_documents


def _worker_pids(server_pid: int) -> list[int]:
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":  # dead, waiting for a parent that is gone itself
            return True
        time.sleep(0.05)
    return False


def test_sigkill_during_a_job_loses_only_that_job(sample_index, cache_dir, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(sample_index, index)
    (tmp_path / "token").write_text(WRITE)
    env = dict(os.environ, SOUYI_CACHE_DIR=str(cache_dir))
    args = ("--index", str(index), "--write-token-file", str(tmp_path / "token"))
    with running_server(env, tmp_path / "serve.log", *args) as (base, proc):
        first = wait(base, upload(base, [("kept.txt", "舟山海洋经济示范区获批。".encode())])[2]["id"])
        assert first["state"] == "done"
        # a batch long enough to be caught running: many passages to embed
        paragraph = "第{}段：温州民营经济与软件外包服务持续发展，带动就业{}万人。"
        long_text = "\n\n".join(paragraph.format(i, i) * 4 for i in range(400))
        job = upload(base, [("big.txt", long_text.encode())])[2]["id"]
        deadline = time.monotonic() + 120
        while (found := call(base, f"/api/jobs/{job}")[2])["state"] != "running" or not found["progress"][
                "passages_total"]:
            assert found["state"] in ("queued", "running") and time.monotonic() < deadline, found
            time.sleep(0.02)
        workers = _worker_pids(proc.pid)
        assert len(workers) == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert _gone(workers[0]), "the worker outlived the server"
    names = {doc.name for doc in list_documents(index)}
    assert "kept.txt" in names and "big.txt" not in names  # the last committed batch, nothing of the killed one
    assert check_index(index) == []
    with running_server(env, tmp_path / "serve2.log", *args) as (base, _):
        lost = call(base, f"/api/jobs/{job}")[2]
        assert lost["state"] == "lost" and "send the documents again" in lost["error"]
        assert call(base, f"/api/jobs/{first['id']}")[2]["state"] == "done"
        assert list((Path(str(index) + ".jobs") / "uploads").iterdir()) == []  # the killed job's bytes are gone
        again = wait(base, upload(base, [("after.txt", "重启后继续接收文档。".encode())])[2]["id"])
        assert again["state"] == "done" and again["id"] > job  # ids are never reused



def _ignore_sigchld() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)


@pytest.mark.parametrize("sigchld", ["default", "ignored"])
def test_a_worker_killed_alone_loses_its_job_and_the_next_upload_still_runs(sample_index, cache_dir, tmp_path,
                                                                              sigchld):
    # "ignored": a server started by a supervisor that ignores SIGCHLD (inherited): the kernel reaps the dead
    # worker at once, and multiprocessing's is_alive() would call it running forever
    index = tmp_path / "index"
    shutil.copytree(sample_index, index)
    (tmp_path / "token").write_text(WRITE)
    env = dict(os.environ, SOUYI_CACHE_DIR=str(cache_dir))
    with running_server(env, tmp_path / "serve.log", "--index", str(index), "--write-token-file",
                        str(tmp_path / "token"), preexec_fn=_ignore_sigchld if sigchld == "ignored" else None
                        ) as (base, proc):
        assert wait(base, upload(base, [("first.txt", "湖州丝绸。".encode())])[2]["id"])["state"] == "done"
        [worker] = _worker_pids(proc.pid)
        os.kill(worker, signal.SIGKILL)
        assert _gone(worker)
        after = wait(base, upload(base, [("after.txt", "绍兴黄酒产业。".encode())])[2]["id"])
        assert after["state"] == "done", after  # a new worker took it; it was not marked lost with the old one
        assert {"first.txt", "after.txt"} <= {doc.name for doc in list_documents(index)}

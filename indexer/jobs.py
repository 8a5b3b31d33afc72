"""Background indexing jobs: a journal on disk and one lower-priority worker process that runs them in order.

A server that accepts uploads (``souyi serve --write-token-file``) must answer
at once and index later, one batch at a time (the index has one writer),
without slowing the searches it serves and without losing track of a job
when it is killed.  So:

- every job is a row of a small SQLite journal in the server's *state
  folder* (``jobs.sqlite3``), written before the request is answered; the
  uploaded bytes go to a private folder beside it (``uploads/``, mode 0700)
  under a name the server makes up, never one the client sent;
- a separate worker process, started with a lower CPU priority (``nice``) and
  told to die with the server, takes the oldest queued job, runs it as one
  atomic batch (:mod:`indexer.uploads`), records the outcome and removes the
  job's uploaded bytes whatever happened;
- a committed job is reported ``done`` only once the server has loaded the
  new generation (:class:`JobQueue` calls ``on_commit`` first), so a search
  made after seeing ``done`` finds the documents;
- on start, a job the previous server left ``queued`` or ``running`` is
  marked ``lost`` (the index is at its last committed batch) and ``uploads/``
  is emptied; one committed but not yet reported is ``done``.

The journal's API shape is :meth:`JobJournal.get` (docs/api.md, "Jobs").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import functools
import json
import logging
import multiprocessing
import os
import secrets
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from multiprocessing.connection import Connection, wait
from pathlib import Path

from .documents import MAX_DOCUMENT_CHARS
from .embedding import load_embedder
from .errors import SearchError
from .index_dir import load_manifest
from .pipeline import FAST_KEY, FAST_PASSAGE_PRECISION
from .uploads import Upload, UploadReport, add_uploads, remove_named

logger = logging.getLogger(__name__)

JOURNAL = "jobs.sqlite3"
UPLOADS = "uploads"
LOCK = "server.lock"
#: How much lower the worker's CPU priority is than the server's (``nice`` steps): searches come first.
WORKER_NICE = 10
#: States a job can be in; ``committed`` is internal (shown as ``running`` until the server has loaded it).
STATES = ("queued", "running", "done", "failed", "lost")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    payload TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    passages_done INTEGER NOT NULL DEFAULT 0,
    passages_total INTEGER,
    documents TEXT NOT NULL DEFAULT '[]',
    generation INTEGER,
    error TEXT,
    embedding_seconds REAL,
    commit_seconds REAL
)
"""


#: The bounds of writing over HTTP: app setting -> (default, what it bounds).  Both ``web``'s settings and
#: ``souyi serve``'s options are made from this one table.
UPLOAD_LIMITS = {
    "SOUYI_MAX_UPLOAD_BYTES": (32 * 1024 * 1024, "largest upload request, in bytes; larger is a 413"),
    "SOUYI_MAX_UPLOAD_FILES": (100, "most documents in one upload request; more is a 413"),
    "SOUYI_MAX_DOCUMENT_CHARS": (MAX_DOCUMENT_CHARS, "an uploaded document with more characters of text is "
                                 "refused in its job's outcome"),
    "SOUYI_MAX_QUEUED_JOBS": (16, "most jobs waiting to run; another write request is a 429 with Retry-After"),
}


class QueueFull(Exception):
    """Too many jobs are waiting; the client should try again later."""


class ServerBusy(SearchError):
    """Another server already accepts writes with this state folder."""

    status = 409


@dataclass(frozen=True)
class NewDocument:
    """A document of an add job as the web layer received it: a file's bytes or plain text."""

    name: str
    content: bytes
    is_text: bool = False
    meta: dict | None = None


class JobJournal:
    """The jobs of one state folder, in SQLite (safe to use from several threads and from the worker)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._lock = threading.Lock()
        self._db = sqlite3.connect(state_dir / JOURNAL, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def _run(self, sql: str, args: Sequence[object] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    def submit(self, kind: str, payload: dict) -> int:
        """Queue a job; its id."""
        return int(self._run("INSERT INTO jobs (kind, state, payload, submitted_at) VALUES (?, 'queued', ?, ?)",
                             (kind, json.dumps(payload), time.time())).lastrowid)

    def waiting(self) -> int:
        """How many jobs are queued."""
        return int(self._run("SELECT count(*) FROM jobs WHERE state = 'queued'").fetchone()[0])

    def claim_next(self) -> tuple[int, str, dict] | None:
        """The oldest queued job, now ``running`` (id, kind, payload), or None."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT id, kind, payload FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1"
                                   ).fetchone()
            if row is not None:
                self._db.execute("UPDATE jobs SET state = 'running', started_at = ? WHERE id = ?",
                                 (time.time(), row[0]))
            self._db.execute("COMMIT")
        return None if row is None else (int(row[0]), row[1], json.loads(row[2]))

    def progress(self, job: int, done: int, total: int) -> None:
        self._run("UPDATE jobs SET passages_done = ?, passages_total = ? WHERE id = ?", (done, total, job))

    def committed(self, job: int, report: UploadReport) -> None:
        """The job's batch is in the index; ``done`` follows once the server has loaded it."""
        documents = [{"name": o.name, "outcome": o.outcome, "reason": o.reason} for o in report.outcomes]
        self._run("UPDATE jobs SET state = 'committed', generation = ?, documents = ?, embedding_seconds = ?, "
                  "commit_seconds = ?, payload = '{}' WHERE id = ?",
                  (report.generation, json.dumps(documents, ensure_ascii=False), report.embedding_seconds,
                   report.commit_seconds, job))

    def finish(self, job: int, state: str, error: str | None = None) -> None:
        self._run("UPDATE jobs SET state = ?, error = ?, finished_at = ?, payload = '{}' WHERE id = ?",
                  (state, error, time.time(), job))

    def committed_jobs(self) -> list[int]:
        return [int(r[0]) for r in self._run("SELECT id FROM jobs WHERE state = 'committed' ORDER BY id")]

    def recover(self, worker_only: bool = False) -> None:
        """After a server stopped: committed jobs are done, the others it left unfinished are lost.

        ``worker_only``: only the worker stopped (the server goes on), so only
        its running job is lost; queued jobs and their uploads wait for the next worker.
        """
        states = ("running",) if worker_only else ("queued", "running")
        who = "the indexing worker" if worker_only else "the server"
        self._run("UPDATE jobs SET state = 'done', finished_at = ? WHERE state = 'committed'", (time.time(),))
        lost = self._run(f"UPDATE jobs SET state = 'lost', finished_at = ?, payload = '{{}}', error = ? "
                         f"WHERE state IN ({', '.join('?' * len(states))})",
                         (time.time(), f"{who} stopped before this job was committed; the index is at the last "
                          "committed batch: send the documents again", *states)).rowcount
        if lost:
            logger.warning("%d unfinished job(s) marked lost: %s stopped", lost, who)

    def get(self, job: int) -> dict | None:
        """The job as the API shows it (docs/api.md, "Jobs"), or None."""
        row = self._run("SELECT id, kind, state, submitted_at, started_at, finished_at, passages_done, "
                        "passages_total, documents, generation, error, embedding_seconds, commit_seconds "
                        "FROM jobs WHERE id = ?", (job,)).fetchone()
        if row is None:
            return None
        state = "running" if row[2] == "committed" else row[2]
        return {
            "id": row[0], "kind": row[1], "state": state, "submitted_at": _iso(row[3]),
            "started_at": _iso(row[4]), "finished_at": _iso(row[5]),
            "progress": {"passages_done": row[6], "passages_total": row[7]},
            "documents": json.loads(row[8]), "generation": row[9], "error": row[10],
            "timings": {"embedding": row[11], "commit": row[12]},
        }

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _iso(stamp: float | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, timezone.utc).isoformat(timespec="milliseconds")


class JobQueue:
    """The server side of the jobs of one index: submit, look up, and the worker process that runs them.

    ``on_commit`` is called with nothing once a job's batch is committed and
    before it is reported ``done`` (the server moves its searcher to the new
    generation there).  Holding the state folder's lock, it refuses a second
    server on the same folder (:class:`ServerBusy`).
    """

    def __init__(self, index_path: Path, state_dir: Path, *, on_commit: Callable[[], None],
                 max_queued: int = 16, max_chars: int = MAX_DOCUMENT_CHARS) -> None:
        self.index_path, self.state_dir = Path(index_path), Path(state_dir)
        self.max_queued, self.max_chars = max_queued, max_chars
        self._on_commit = on_commit
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock_file = open(self.state_dir / LOCK, "a+")  # noqa: SIM115 - held for the queue's life
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise ServerBusy(f"another souyi serve accepts writes with the state folder {self.state_dir}") from None
        self.uploads = self.state_dir / UPLOADS
        shutil.rmtree(self.uploads, ignore_errors=True)
        self.uploads.mkdir(mode=0o700)
        self.journal = JobJournal(self.state_dir)
        self.journal.recover()
        self._start_lock = threading.Lock()
        self._submit_lock = threading.Lock()  # room check and submission as one step: the bound holds
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._closing = False

    def submit_add(self, documents: Sequence[NewDocument], replace: bool = False) -> int:
        """Queue one batch adding ``documents``; raises :class:`QueueFull`."""
        folder = self.uploads / secrets.token_hex(8)
        folder.mkdir(mode=0o700)
        entries = []
        for number, doc in enumerate(documents):
            (folder / str(number)).write_bytes(doc.content)
            entries.append({"name": doc.name, "file": str(number), "text": doc.is_text, "meta": doc.meta or {}})
        try:
            return self._submit("add", {"folder": folder.name, "replace": replace, "documents": entries})
        except QueueFull:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def submit_remove(self, names: Sequence[str]) -> int:
        """Queue one batch removing the documents ``names``; raises :class:`QueueFull`."""
        return self._submit("remove", {"names": list(names)})

    def get(self, job: int) -> dict | None:
        return self.journal.get(job)

    def _submit(self, kind: str, payload: dict) -> int:
        with self._submit_lock:
            if self.journal.waiting() >= self.max_queued:
                raise QueueFull(f"{self.max_queued} jobs are already waiting")
            job = self.journal.submit(kind, payload)
        self.start()
        assert self._conn is not None
        try:
            self._conn.send("wake")
        except OSError:  # the worker died a moment ago: hearing of it, the queue starts another (see _hear)
            logger.warning("the indexing worker stopped; job %d waits for the next one", job)
        return job

    def start(self) -> None:
        """Start the worker process (and the thread that hears of its commits) unless it runs."""
        with self._start_lock:
            if self._closing or self._process is not None and self._worker_running():
                return
            if self._process is not None:  # it died (killed, out of memory): its running job is lost
                logger.error("the indexing worker stopped (exit code %s); starting another", self._process.exitcode)
                self.journal.recover(worker_only=True)
            context = multiprocessing.get_context("spawn")
            ours, theirs = context.Pipe()
            self._process = context.Process(
                target=run_worker, name="souyi-indexer", daemon=True,
                args=(str(self.index_path), str(self.state_dir), theirs, self.max_chars, logging.getLogger().level))
            self._process.start()
            theirs.close()
            self._conn = ours
            threading.Thread(target=self._hear, args=(ours,), name="souyi-jobs", daemon=True).start()

    def _worker_running(self) -> bool:
        """Whether the worker process still runs, asked of its sentinel (readable once it has exited).

        Not ``is_alive()``: a server started with SIGCHLD ignored (some
        supervisors do that) has its children reaped by the kernel, and
        ``is_alive()`` then reports a dead worker as running forever.
        """
        assert self._process is not None
        return not wait([self._process.sentinel], timeout=0)

    def _hear(self, conn: Connection) -> None:
        """Report committed jobs done once ``on_commit`` has run; ends when the worker does, and then starts
        another worker at once if jobs wait (a worker that died alone loses only its running job)."""
        while True:
            try:
                conn.recv()
            except (EOFError, OSError):
                if not self._closing and self.journal.waiting():
                    self.start()
                return
            try:
                self._on_commit()
            except Exception:  # the job is committed whatever the searcher does; it reports its own errors
                logger.exception("moving the searcher to the new generation failed")
            for job in self.journal.committed_jobs():
                self.journal.finish(job, "done")

    def close(self) -> None:
        """Stop the worker (a running job is lost, its batch not committed) and release the state folder."""
        self._closing = True
        if self._process is not None and self._worker_running():
            self._process.kill()
            self._process.join(10)
        if self._conn is not None:
            self._conn.close()
        self.journal.recover()
        self.journal.close()
        shutil.rmtree(self.uploads, ignore_errors=True)
        self._lock_file.close()


def run_worker(index_path: str, state_dir: str, conn: Connection, max_chars: int, log_level: int) -> None:
    """The worker process: run queued jobs one at a time, oldest first, until the server goes away."""
    logging.basicConfig(level=log_level or logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _die_with_parent()
    os.nice(WORKER_NICE)
    journal = JobJournal(Path(state_dir))
    loader = functools.lru_cache(maxsize=4)(load_embedder)  # models stay loaded from one job to the next
    _warm_up(Path(index_path), loader)
    while True:
        claimed = journal.claim_next()
        if claimed is None:
            try:
                if conn.poll(1.0):
                    conn.recv()
            except (EOFError, OSError):  # the server is gone
                return
            continue
        job, kind, payload = claimed
        try:
            report = _run(Path(index_path), Path(state_dir), job, kind, payload, journal, loader, max_chars)
        except SearchError as exc:
            journal.finish(job, "failed", str(exc))
            continue
        except Exception as exc:  # a bug or the machine (disk full): the batch was not committed
            logger.exception("job %d failed", job)
            journal.finish(job, "failed", f"internal error ({type(exc).__name__}); the server log has the details")
            continue
        journal.committed(job, report)
        conn.send(job)


def _run(index: Path, state_dir: Path, job: int, kind: str, payload: dict, journal: JobJournal,
         loader: Callable[..., object], max_chars: int) -> UploadReport:
    """Run one job as one batch; the job's uploaded bytes are removed whatever happens."""
    if kind == "remove":
        return remove_named(payload["names"], index)
    folder = state_dir / UPLOADS / payload["folder"]
    try:
        uploads = []
        for entry in payload["documents"]:
            content = (folder / entry["file"]).read_bytes()
            uploads.append(Upload(entry["name"], text=content.decode("utf-8"), meta=entry["meta"]) if entry["text"]
                           else Upload(entry["name"], data=content, meta=entry["meta"]))
        return add_uploads(uploads, index, replace=payload["replace"], max_chars=max_chars, loader=loader,
                           progress=functools.partial(journal.progress, job))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _warm_up(index: Path, loader: Callable[..., object]) -> None:
    """Load the index's models before the first job, so that its embedding is not the first to wait for them."""
    try:
        manifest = load_manifest(index)
        loader(manifest["model"]["id"], precision=FAST_PASSAGE_PRECISION if manifest.get(FAST_KEY) else None)
        if manifest.get("rescorer"):
            loader(manifest["rescorer"]["id"])
    except (SearchError, OSError, KeyError, ValueError) as exc:  # the first job will report the real problem
        logger.warning("could not load the index's models ahead of the first job: %s", exc)


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the server dies (even by SIGKILL), so no batch outlives it."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "prctl"):
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the worker ends when it next finds the server gone
        pass
    if os.getppid() == 1:  # the server died before the request above took effect
        os._exit(0)

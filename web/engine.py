"""The one search engine of a web app: opened once, shared by every request thread.

Opening a :class:`~search.Searcher` loads the embedding model (seconds), so it
happens once per process, not per request.  The engine also keeps the app
useful when the index is not there yet or is rebuilt while serving:

* a missing or unreadable index makes :meth:`Engine.searcher` raise the
  :class:`~search.SearchError` that says why (mapped to HTTP 503 by the app);
  later requests try again, at most once per ``retry_seconds``, so the app
  recovers by itself once ``souyi index`` has built the index;
* a rebuilt index (``souyi index`` swaps the directory in whole) is noticed by
  the identity of the directory and reopened, reusing the loaded model.  A
  batch committed into the same directory (``souyi add``/``remove``) is not a
  reason to reopen: the Searcher moves to new generations by itself, so the
  process keeps one Searcher and one loaded generation at a time.

Only one thread (re)opens at a time; the others keep using the searcher they
already have.  Searches themselves need no lock: the Searcher is thread-safe.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from flask import current_app

from search import ModelMismatch, Searcher, SearchError

logger = logging.getLogger(__name__)

#: The file that must exist for the directory to be an index.
_STAMP_FILE = "manifest.json"


class Engine:
    """Owns the Searcher of one index directory for one app.

    ``searcher`` is an already open Searcher to start with (tests, embedding
    apps); ``model`` is an embedder object or a model name, or ``None`` for the
    model recorded in the index.  A model given as an object is kept for every
    reopen; a model loaded by the engine itself is reused while the rebuilt
    index still names it.
    """

    def __init__(
        self,
        index_path: str | os.PathLike[str],
        *,
        searcher: Searcher | None = None,
        model: object = None,
        retry_seconds: float = 5.0,
    ) -> None:
        self.index_path = Path(index_path)
        self._model = model
        self._retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._searcher = searcher
        self._embedder = searcher.embedder if searcher is not None else None  # reused on reopen
        self._stamp = self._read_stamp() if searcher is not None else None
        self._failure: tuple[object, float, SearchError] | None = None  # (stamp, when, error)

    def searcher(self) -> Searcher:
        """The open Searcher, (re)opened if needed; raises the SearchError that prevents it."""
        stamp = self._read_stamp()
        current = self._searcher
        if current is not None and stamp == self._stamp:
            return current
        with self._lock:
            stamp = self._read_stamp()
            if self._searcher is not None and stamp == self._stamp:  # another thread reopened it
                return self._searcher
            failure = self._failure
            if failure is not None and failure[0] == stamp and time.monotonic() - failure[1] < self._retry_seconds:
                raise failure[2]
            try:
                searcher = self._open()
            except SearchError as exc:
                self._failure = (stamp, time.monotonic(), exc)
                self._searcher = None
                logger.warning("index unavailable: %s", exc)
                raise
            _warm_up(searcher)
            self._searcher, self._stamp, self._failure = searcher, stamp, None
            self._embedder = searcher.embedder
            logger.info("opened index %s (%d passages, model %s)", self.index_path, searcher.size,
                        searcher.embedder.model_id)
            return searcher

    def try_open(self) -> None:
        """Open now if possible (so the first request is fast); log, do not raise, if not."""
        try:
            self.searcher()
        except SearchError:
            pass

    def _open(self) -> Searcher:
        if self._model is not None:  # chosen by the caller: a mismatch is the caller's to fix
            return Searcher.open(self.index_path, self._model)
        if self._embedder is not None:
            try:
                return Searcher.open(self.index_path, self._embedder)
            except ModelMismatch:  # rebuilt with another model: load that one
                logger.info("the rebuilt index uses another model; loading it")
        return Searcher.open(self.index_path)

    def _read_stamp(self) -> tuple[int, int] | None:
        """Identity of the index directory (a rebuild swaps in a new one); None while it has no manifest."""
        try:
            st = self.index_path.stat()
            (self.index_path / _STAMP_FILE).stat()
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def current(self) -> Searcher | None:
        """The Searcher already open, if any, without trying to open one (for page footers)."""
        return self._searcher


def _warm_up(searcher: Searcher) -> None:
    """One throw-away search, so the first person to search does not wait for lazy loading.

    The tokenizer's dictionary and the model's first inference load lazily and
    take about a second; paying that at start-up keeps the first page fast.
    """
    started = time.perf_counter()
    try:
        searcher.search("搜索 search", k=1)
    except SearchError as exc:  # never fatal: the real searches will say what is wrong
        logger.warning("warm-up search failed: %s", exc)
    logger.debug("warm-up search took %.0f ms", (time.perf_counter() - started) * 1000)


def current_engine() -> Engine:
    """The engine of the app handling the current request."""
    return current_app.extensions["souyi"]

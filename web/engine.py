"""The one search engine of a web app: opened once, shared by every request thread.

Opening a :class:`~search.Searcher` loads the embedding model (seconds), so it
happens once per process, not per request.  The engine keeps the app useful
when the index is not there yet: a missing or unreadable index makes
:meth:`Engine.searcher` raise the :class:`~search.SearchError` that says why
(mapped to HTTP 503 by the app); later requests try again, at most once per
``retry_seconds`` unless the directory changed meanwhile, so the app recovers
by itself once ``souyi index`` has built the index.

Once open, the Searcher follows the index by itself: batches committed into
it (``souyi add``/``remove``) and rebuilds swapped in under the same path
(``souyi index``, even with another model), reusing the loaded models.

Only one thread opens at a time.  Searches themselves need no lock: the
Searcher is thread-safe.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from flask import current_app

from indexer.index_dir import Stamp, directory_stamp, index_exists
from search import Searcher, SearchError

logger = logging.getLogger(__name__)

#: How often ``souyi serve`` looks for a newly committed generation (one ``stat`` of the manifest) and
#: loads it off the request path (docs/performance.md, "Segments").
POLL_SECONDS = 1.0


class Engine:
    """Owns the Searcher of one index directory for one app.

    ``searcher`` is an already open Searcher to start with (tests, embedding
    apps); ``model`` is an embedder object or a model name, or ``None`` for the
    model recorded in the index, which the Searcher then follows when a
    rebuild names another one.
    """

    def __init__(
        self,
        index_path: str | os.PathLike[str],
        *,
        searcher: Searcher | None = None,
        model: object = None,
        retry_seconds: float = 5.0,
        translate: bool = True,
    ) -> None:
        self.index_path = Path(index_path)
        self._translate = translate
        self._model = model
        self._retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._searcher = searcher
        if searcher is not None and model is None:
            searcher.follow_model = True  # the model is the index's, as for a searcher the engine opens
        self._failure: tuple[Stamp, float, SearchError] | None = None  # (directory stamp, when, error)

    def searcher(self) -> Searcher:
        """The open Searcher, opened if needed; raises the SearchError that prevents it."""
        current = self._searcher
        if current is not None:
            return current
        with self._lock:
            if self._searcher is not None:  # another thread opened it
                return self._searcher
            stamp = directory_stamp(self.index_path)
            failure = self._failure
            if failure is not None and failure[0] == stamp and time.monotonic() - failure[1] < self._retry_seconds:
                raise failure[2]
            try:
                searcher = Searcher.open(self.index_path, self._model, translate=self._translate)
            except SearchError as exc:
                self._failure = (stamp, time.monotonic(), exc)
                logger.warning("index unavailable: %s", exc)
                raise
            _warm_up(searcher)
            self._searcher, self._failure = searcher, None
            logger.info("opened index %s (%d passages, model %s)", self.index_path, searcher.size,
                        searcher.embedder.model_id)
            return searcher

    def try_open(self) -> None:
        """Open now if possible (so the first request is fast); log, do not raise, if not."""
        try:
            self.searcher()
        except SearchError:
            pass

    def follow(self, interval: float = POLL_SECONDS) -> threading.Event:
        """Keep the open Searcher on the newest committed generation from a background thread.

        Every ``interval`` seconds the thread moves the Searcher to a newly
        committed generation and waits while it loads, so that no request is
        the first to meet it (a request would go on with the previous
        generation while a large one loads).  Set the returned event to stop.
        """
        stop = threading.Event()
        threading.Thread(target=self._follow, args=(stop, interval), name="souyi-follow", daemon=True).start()
        return stop

    def _follow(self, stop: threading.Event, interval: float) -> None:
        while not stop.wait(interval):
            searcher = self._searcher
            if searcher is None:
                continue
            try:
                searcher.refresh()
            except SearchError as exc:  # requests report it; keep polling, the index may be repaired
                logger.warning("cannot follow the index: %s", exc)

    def refresh(self) -> None:
        """Move the open Searcher (if any) to the newest committed generation now, before anyone searches it."""
        searcher = self._searcher
        if searcher is not None:
            searcher.refresh()

    def current(self) -> Searcher | None:
        """The Searcher already open while its index is there, without trying to open one (for page footers)."""
        return self._searcher if index_exists(self.index_path) else None


#: The warm-up searches: words (the tokenizer's dictionary, the model's first inference), then a phrase of
#: two words (the table of what folds into each character, which checking a phrase on raw text needs).
WARM_UP_QUERIES = ("搜索 search", '"search engine"')


def _warm_up(searcher: Searcher) -> None:
    """Throw-away searches, so the first person to search does not wait for lazy loading.

    The tokenizer's dictionary, the model's first inference and the folding
    table of phrase checks load lazily, each long enough for a person to
    notice; paying that at start-up keeps the first page fast.
    """
    started = time.perf_counter()
    try:
        for query in WARM_UP_QUERIES:
            searcher.search(query, k=1)
    except SearchError as exc:  # never fatal: the real searches will say what is wrong
        logger.warning("warm-up search failed: %s", exc)
    logger.debug("warm-up search took %.0f ms", (time.perf_counter() - started) * 1000)


def current_engine() -> Engine:
    """The engine of the app handling the current request."""
    return current_app.extensions["souyi"]

"""Serve the app with waitress, a production WSGI server (not Flask's development server)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import signal
import threading

from flask import Flask
from waitress.server import create_server

logger = logging.getLogger(__name__)

#: Bodies up to this size reach the app, which answers a JSON 413 above its own
#: limit; waitress refuses anything larger itself.
MAX_REQUEST_BODY = 1024 * 1024


#: glibc's ``mallopt`` parameter number of the mmap threshold.
_M_MMAP_THRESHOLD = -3


def _pin_mmap_threshold(size: int = 128 * 1024) -> None:
    """Keep large arrays in mmap'd memory that is returned to the system when freed.

    A served index loads every new generation's vector and BM25 arrays (their
    size by index size: docs/performance.md, "End-to-end query latency and
    memory") and drops the old ones.  glibc raises its mmap threshold
    after such frees, so later large arrays land on the heap and fragment it:
    measured, RSS grew with every committed batch (docs/reliability.md).  A
    fixed threshold stops that; on other C libraries this does nothing.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "mallopt"):
            libc.mallopt(_M_MMAP_THRESHOLD, size)
    except OSError:  # no loadable C library: nothing to tune
        pass


def serve(app: Flask, host: str = "127.0.0.1", port: int = 8000, threads: int = 4) -> None:
    """Serve ``app`` until Ctrl-C (SIGINT) or SIGTERM, then close the socket and return.

    ``port`` 0 picks a free port; the URL actually served is logged.
    Raises :class:`OSError` when the address cannot be bound (port in use).
    """
    _pin_mmap_threshold()
    jobs = app.extensions.get("souyi_jobs")
    # above the app's own upload bound, so that the app (not waitress cutting the connection) answers a JSON 413
    body_limit = MAX_REQUEST_BODY + (app.config["SOUYI_MAX_UPLOAD_BYTES"] if jobs else 0)
    server = create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="souyi",
        max_request_body_size=body_limit,
        clear_untrusted_proxy_headers=True,
    )
    listen = getattr(server, "effective_listen", None) or [(server.effective_host, server.effective_port)]
    urls = " and ".join(f"http://{_url_host(str(h))}:{p}/" for h, p in listen)
    logger.info("serving %s on %s with %d threads (Ctrl-C to stop)", app.extensions["souyi"].index_path, urls,
                threads)
    previous = _stop_on_sigterm()
    following = app.extensions["souyi"].follow()
    if jobs is not None:
        jobs.start()  # the worker process starts (and loads its models) now, not when the first upload waits
        logger.info("write routes on (uploads go through jobs; docs/api.md)")
    try:
        server.run()  # returns on Ctrl-C: waitress catches KeyboardInterrupt and stops its threads
    except KeyboardInterrupt:  # pragma: no cover - raised between waitress's own handlers
        pass
    finally:
        following.set()
        server.close()
        if jobs is not None:
            jobs.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    logger.info("stopped")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _stop_on_sigterm():
    """Let SIGTERM stop the server like Ctrl-C does (only possible from the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, stop)

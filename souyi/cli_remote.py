"""``souyi add --server URL`` and ``souyi remove --server URL``: send a batch to a running server and wait for it.

The files are found and named exactly as a local ``souyi add`` names them
(:func:`indexer.build.batch_sources`), sent in one request (one atomic batch on
the server: docs/api.md, "Writing over HTTP"), and the job is followed until
it ends, with a progress bar in passages.  The token comes from a file and
travels only in the ``Authorization`` header; it is never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from indexer.build import batch_sources, sidecar_meta
from indexer.documents import MAX_DOCUMENT_CHARS, SUPPORTED_SUFFIXES
from indexer.embedding import DEFAULT_RESCORER
from indexer.errors import BadQuery, DocumentError, IndexBusy, SearchError
from indexer.split import DEFAULT_PASSAGE_SIZE
from search import parse_filters

from .cli_serve_writes import read_token_file

#: Seconds between two looks at a running job.
POLL_SECONDS = 0.25
#: Options of a local add or remove, with their defaults, that mean nothing to a server (its index keeps its own).
LOCAL_ONLY = {"index": None, "model": None, "userdict": None, "store": None, "milvus_uri": None,
              "milvus_collection": None, "passage_size": DEFAULT_PASSAGE_SIZE, "ann": "auto",
              "rescorer": DEFAULT_RESCORER, "fast": False, "max_chars": MAX_DOCUMENT_CHARS}


class RemoteError(SearchError):
    """The server could not be reached, or answered with an error (exit code 1)."""


def wants_server(args: argparse.Namespace) -> bool:
    """Whether the command goes to a server; checks that ``--server`` and ``--token-file`` come together and that
    no option of a local index is given with them (a :class:`BadQuery`, exit code 2)."""
    if not getattr(args, "server", None):
        if getattr(args, "token_file", None):
            raise BadQuery("--token-file goes with --server URL")
        return False
    if not args.token_file:
        raise BadQuery("--server needs --token-file FILE (the server's write token)")
    given = [name for name, default in LOCAL_ONLY.items() if getattr(args, name, default) != default]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise BadQuery(f"{flags}: options of a local index; with --server the server's index keeps its own settings")
    args.token = read_token_file(args.token_file)  # read once, before any file is read or sent
    return True


def remote_add(args: argparse.Namespace, progress: bool) -> int:
    """Upload the batch of ``args.paths`` and wait for its job; the exit code (1 if anything was refused)."""
    sources = batch_sources(args.paths, args.include, args.exclude, args.name_prefix)
    if not sources:
        raise DocumentError(f"no {', '.join(SUPPORTED_SUFFIXES)} files found")
    common = parse_filters(args.meta)
    fields = {"meta": json.dumps(common, ensure_ascii=False), "replace": "true" if args.replace else "false"}
    files = []
    for source in sources:
        own = sidecar_meta(source.path)
        if own:
            fields[f"meta:{source.name}"] = json.dumps({**common, **own}, ensure_ascii=False)
        try:
            files.append((source.name, source.path.read_bytes()))
        except OSError as exc:
            raise DocumentError(f"{source.path}: cannot be read ({exc.strerror or exc})") from None
    body, content_type = multipart_body(files, fields)
    job = _request(args, "POST", "/api/documents", body, content_type)
    done = _wait(args, job["id"], progress)
    counts = {outcome: 0 for outcome in ("added", "replaced", "unchanged", "refused")}
    for doc in done["documents"]:
        counts[doc["outcome"]] = counts.get(doc["outcome"], 0) + 1
        if doc["outcome"] == "refused":
            print(f"souyi: refused: {doc['reason']}", file=sys.stderr)
    print(f"added {counts['added']}, updated {counts['replaced']}, unchanged {counts['unchanged']}; "
          f"job {done['id']} committed as generation {done['generation']} on {args.server}")
    return 1 if counts["refused"] else 0


def remote_remove(args: argparse.Namespace) -> int:
    """Remove the documents named ``args.docs`` on the server and wait for the job."""
    query = urllib.parse.urlencode([("id", name) for name in args.docs])
    job = _request(args, "DELETE", f"/api/documents?{query}")
    done = _wait(args, job["id"], progress=False)
    for doc in done["documents"]:
        print(f"removed {doc['name']}")
    print(f"removed {len(done['documents'])}; job {done['id']} committed as generation {done['generation']} on "
          f"{args.server}")
    return 0


def _wait(args: argparse.Namespace, job: int, progress: bool) -> dict:
    """The job once it has ended; a failed or lost job raises :class:`RemoteError` with the server's reason."""
    bar = None
    try:
        while True:
            found = _request(args, "GET", f"/api/jobs/{job}")
            total = found["progress"]["passages_total"]
            if progress and total and bar is None:
                from tqdm import tqdm

                bar = tqdm(total=total, desc="Indexing on the server", unit="passage")
            if bar is not None:
                bar.update(found["progress"]["passages_done"] - bar.n)
            if found["state"] == "done":
                return found
            if found["state"] in ("failed", "lost"):
                raise RemoteError(f"job {job} {found['state']}: {found['error']}")
            time.sleep(POLL_SECONDS)
    finally:
        if bar is not None:
            bar.close()


def _request(args: argparse.Namespace, method: str, path: str, body: bytes | None = None,
             content_type: str | None = None) -> dict:
    """One API call with the token; its JSON answer, or the error the server gave in words."""
    headers = {"Authorization": f"Bearer {args.token}", "Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    url = args.server.rstrip("/") + path
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers, method=method), timeout=60) as answer:
            raw = answer.read()
    except urllib.error.HTTPError as exc:
        message = _message(exc)
        if exc.code == 429:
            wait = exc.headers.get("Retry-After")
            raise IndexBusy(f"the server's job queue is full: {message}"
                            + (f" (retry after {wait} s)" if wait else "")) from None
        if exc.code in (401, 403):
            raise RemoteError(f"{args.server} refused the token in {args.token_file}: {message}") from None
        raise RemoteError(f"{args.server} answered {exc.code}: {message}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:  # ValueError: not a URL urllib can open
        reason = getattr(exc, "reason", exc)
        raise RemoteError(f"cannot reach {args.server}: {reason}") from None
    try:
        return json.loads(raw)
    except ValueError:
        raise RemoteError(f"{args.server} is not a souyi server: its answer to {path} is not JSON") from None


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        return json.loads(exc.read())["message"]
    except (ValueError, KeyError, TypeError, OSError):
        return exc.reason


def multipart_body(files: list[tuple[str, bytes]], fields: dict[str, str] | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body for ``POST /api/documents`` and its content type: text ``fields``, then one
    ``file`` part per (name, bytes).  Names are sent as UTF-8; a file name the file system could not decode
    keeps its raw bytes (the server then refuses the request and says why)."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n'.encode()
                     + value.encode("utf-8") + b"\r\n")
    for name, data in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{_quoted(name)}"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n".encode("utf-8", "surrogateescape")
                     + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _quoted(name: str) -> str:
    """A name inside a quoted header parameter (HTML's form encoding: quote and line breaks escaped)."""
    return name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")

"""``souyi serve``'s options for writing over HTTP: the tokens and the bounds of uploads.

A token is read from a file (``--write-token-file``, ``--read-token-file``)
or from the environment (``SOUYI_WRITE_TOKEN``, ``SOUYI_READ_TOKEN``), never
from the command line, where every user of the machine could read it in the
process list.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from indexer.errors import BadQuery
from indexer.jobs import UPLOAD_LIMITS

#: Option and app setting of each upload bound.
_LIMITS = (
    ("--max-upload-bytes", "SOUYI_MAX_UPLOAD_BYTES"),
    ("--max-upload-files", "SOUYI_MAX_UPLOAD_FILES"),
    ("--max-upload-chars", "SOUYI_MAX_DOCUMENT_CHARS"),
    ("--max-queued-jobs", "SOUYI_MAX_QUEUED_JOBS"),
)


class TokenError(BadQuery):
    """A token file that cannot be used (exit code 2, like any bad usage)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the token and upload options to the ``serve`` parser."""
    p.add_argument("--write-token-file", type=Path, default=None, metavar="FILE",
                   help="turn on the write routes (upload and remove documents, follow jobs: docs/api.md) for "
                   "clients that send the token in FILE (or $SOUYI_WRITE_TOKEN) as 'Authorization: Bearer TOKEN'; "
                   "without it the server is read-only")
    p.add_argument("--read-token-file", type=Path, default=None, metavar="FILE",
                   help="make the page and the read API private: they then need the token in FILE (or "
                   "$SOUYI_READ_TOKEN), as the password of the browser's login prompt or as a Bearer token")
    p.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                   help="folder of the jobs journal and of uploads waiting to be indexed (default: beside the "
                   "index, INDEX.jobs)")
    for flag, setting in _LIMITS:
        default, bound = UPLOAD_LIMITS[setting]
        p.add_argument(flag, type=int, default=None, metavar="N", help=f"{bound} (default: {default:,})")


def write_settings(args: argparse.Namespace) -> dict:
    """The app settings of these options (raises :class:`TokenError` for an unusable token file)."""
    limits = {setting: getattr(args, flag[2:].replace("-", "_")) for flag, setting in _LIMITS}
    return {
        **{setting: value for setting, value in limits.items() if value is not None},
        "SOUYI_WRITE_TOKEN": _token(args.write_token_file, "SOUYI_WRITE_TOKEN"),
        "SOUYI_READ_TOKEN": _token(args.read_token_file, "SOUYI_READ_TOKEN"),
        "SOUYI_STATE_DIR": args.state_dir,
    }


def _token(file: Path | None, variable: str) -> str | None:
    return (os.environ.get(variable) or None) if file is None else read_token_file(file)


def read_token_file(file: Path) -> str:
    """The token in ``file`` (surrounding space stripped); raises :class:`TokenError` when unreadable or empty.
    ``souyi serve`` and ``souyi add --server`` read their token files with this one function."""
    try:
        token = Path(file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenError(f"cannot read the token file {file}: {getattr(exc, 'strerror', None) or exc}") from None
    if not token:
        raise TokenError(f"the token file {file} is empty")
    return token

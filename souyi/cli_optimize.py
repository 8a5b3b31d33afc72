"""``souyi optimize``: merge an embedded index's segments, and convert an older index to the current format.

Registered from :mod:`souyi.cli`, which maps errors to exit codes (no index
3, another writer at work 5).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from indexer import optimize_index

DESCRIPTION = (
    "Merge the segments of an embedded index into at most K (default 1), in one crash-safe batch: "
    "searches visit fewer segments and deleted passages stop taking room. Every batch (souyi add/remove) "
    "writes a segment of its own and the writer already merges small segments as it goes, so this is "
    "seldom needed: after many deletions, before archiving an index, or to measure. It is also the one "
    "command that converts an index of an older format (format 2) to the current one; searching an older "
    "index needs no conversion. Searches keep running meanwhile (they see the merged index once it is "
    "committed); another writer waits. Exit codes: 0 done (or nothing to merge), 3 no index or a Milvus "
    "index (Milvus merges its own segments), 5 another process is writing."
)


def add_parser(sub: argparse._SubParsersAction, index_help: str) -> None:
    """Add the ``optimize`` subcommand to the ``souyi`` parser."""
    p = sub.add_parser("optimize", help="merge an index's segments (and convert an older index format)",
                       description=DESCRIPTION)
    p.add_argument("--index", type=Path, default=None, help=index_help)
    p.add_argument("--max-segments", type=_positive, default=1, metavar="K",
                   help="merge down to at most K segments (default: %(default)s)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def command(default_index: Callable[[], Path]) -> Callable[[argparse.Namespace], int]:
    """The ``optimize`` command; ``default_index`` is the index used without ``--index``."""

    def run(args: argparse.Namespace) -> int:
        target = args.index or default_index()
        show = not args.quiet and sys.stderr.isatty()
        with _ProgressBar(show) as bar:
            report = optimize_index(target, args.max_segments, progress=bar.update)
        dropped = f", {report.dropped:,} deleted passages dropped" if report.dropped else ""
        if report.segments_after != report.segments_before:
            print(f"merged {report.segments_before} segments into {report.segments_after}{dropped}, "
                  f"generation {report.generation}")
        elif report.dropped:
            print(f"rewrote {report.segments_after} segment(s){dropped}, generation {report.generation}")
        else:
            print(f"nothing to merge: {report.segments_after} segment(s), generation {report.generation}")
        return 0

    return run


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


class _ProgressBar:
    """A tqdm bar over the passages a merge reads, drawn only when asked (a terminal, no --quiet)."""

    def __init__(self, show: bool) -> None:
        self._show = show
        self._bar = None

    def update(self, done: int, total: int) -> None:
        if not self._show:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc="Merging", unit="passage", file=sys.stderr)
        self._bar.update(done - self._bar.n)

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()

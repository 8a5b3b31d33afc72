"""The ``souyi`` command: a thin layer over the indexer and search APIs."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from indexer import DEFAULT_MODEL, add_documents, build_index, remove_documents, stores
from indexer import ann as ann_index
from indexer.documents import MAX_DOCUMENT_CHARS
from indexer.embedding import DEFAULT_RESCORER
from indexer.errors import (
    BadQuery,
    IndexBusy,
    IndexFormatError,
    IndexNotFound,
    ModelMismatch,
    ModelUnavailableError,
    NotInIndex,
    SearchError,
)
from indexer.index_dir import index_exists
from indexer.preparation import logger as preparation_logger
from indexer.preparation import show_known_warnings
from indexer.split import DEFAULT_PASSAGE_SIZE
from search import MODES, Hit, Searcher, parse_filters
from search.evaluate import evaluate, load_collection

from . import SAMPLE_DIR, __version__, cli_optimize, cli_read, cli_remote, cli_serve_writes
from .cli_facets import SYNTAX_HELP, facet_lines

logger = logging.getLogger("souyi")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INDEX, EXIT_MODEL, EXIT_BUSY = 0, 1, 2, 3, 4, 5
EXIT_NOT_IN_INDEX = 6
_EXIT_CODES = (
    (BadQuery, EXIT_USAGE),
    (IndexNotFound, EXIT_INDEX),
    (IndexFormatError, EXIT_INDEX),
    (ModelMismatch, EXIT_MODEL),
    (ModelUnavailableError, EXIT_MODEL),
    (IndexBusy, EXIT_BUSY),
    (NotInIndex, EXIT_NOT_IN_INDEX),
)


NO_TRANSLATION_HELP = ("do not also search the query's dictionary translations (an English query over Chinese "
                       "passages, or the reverse; see docs/translation.md)")


def default_index_dir() -> Path:
    """Where the sample index lives unless ``--index`` or ``$SOUYI_INDEX`` says otherwise."""
    if os.environ.get("SOUYI_INDEX"):
        return Path(os.environ["SOUYI_INDEX"])
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "souyi" / "sample-index"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="souyi",
        description="搜义 souyi: semantic + full-text search over Chinese and English documents, offline.",
        epilog="Exit codes: 0 ok, 1 error, 2 bad usage or query, 3 index missing or unreadable, 4 model problem, "
        "5 index busy (another writer), 6 no such document or passage in the index.",
    )
    parser.add_argument("--version", action="version", version=f"souyi {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    index_help = f"index directory (default: $SOUYI_INDEX or {default_index_dir()})"

    for name, summary, description in (
        ("index", "build a fresh index from documents (replaces an existing one when complete)",
         "Build (or rebuild) an index from documents. Each file's encoding is detected; a file that cannot "
         "be read is refused and named, and the others are indexed (exit code 1 tells that some were refused)."),
        ("add", "add or update documents in an index, in one atomic batch",
         "Add files and folders to an index (created if missing). A changed file replaces its old passages; an "
         "unchanged one is skipped without being read. The batch becomes visible whole, or not at all. "
         "A document is named by its path relative to the folder given (a file given directly: its file name), "
         "and the index records the file it was read from: a name already held by a document read from ANOTHER "
         "file is refused (exit code 1) unless --replace is given; --name-prefix keeps both."),
    ):
        p = sub.add_parser(name, help=summary, description=description)
        p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (searched recursively)")
        p.add_argument("--index", type=Path, default=None, help=index_help)
        _store_args(p)
        p.add_argument("--include", action="append", default=[], metavar="GLOB",
                       help="only names matching this glob (repeatable), e.g. '*.md' or '2008/*'")
        p.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip names matching this glob")
        p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                       help="metadata field for every document of the batch (repeatable); a JSON object in "
                       "FILE.meta.json beside a file adds fields to that file")
        p.add_argument("--model", default=None,
                       help=f"sentence-transformers model name or folder for a new index (default: {DEFAULT_MODEL})")
        p.add_argument("--passage-size", type=int, default=DEFAULT_PASSAGE_SIZE,
                       help="longest passage of a new index, in units of about one model token (default: %(default)s)")
        p.add_argument("--userdict", type=Path, default=None, metavar="FILE",
                       help="jieba user dictionary of domain terms for a new index (one 'word [freq] [tag]' a line); "
                       "kept in the index so queries are cut the same way")
        p.add_argument("--ann", choices=ann_index.KINDS, default="auto",
                       help="vector index of a new index: exact (flat), IVF with 8-bit quantization (ivf), or by "
                       f"size (auto, default: exact up to {ann_index.FLAT_MAX:,} passages)")
        p.add_argument("--no-rescorer", dest="rescorer", action="store_const", const=None,
                       default=DEFAULT_RESCORER,
                       help=f"a new index without the rescoring model ({DEFAULT_RESCORER}: second opinion on "
                       "ranking and the answer sentence of each hit); smaller and faster to build")
        p.add_argument("--max-chars", type=int, default=MAX_DOCUMENT_CHARS, metavar="N",
                       help="refuse a document with more characters of text than this (default: %(default)s)")
        p.add_argument("--name-prefix", default="", metavar="PREFIX",
                       help="put the batch's names under PREFIX/ (e.g. --name-prefix 2009 names 2009/port.txt), so "
                       "that files of several folders with the same relative paths can all be indexed")
        if name == "add":
            p.add_argument("--replace", action="store_true",
                           help="replace a document of the same name even if it was read from another file")
            _remote_args(p, "send the batch to a running souyi serve at URL (its write routes: docs/api.md) "
                         "instead of writing a local index, and wait for its job with a progress bar")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        p.add_argument("--fast", action="store_true",
                       help="a new index built in fast mode: int8 passage vectors, no per-sentence rescorer vectors; "
                       "several times faster, slightly lower quality (docs/quality.md, \"Fast indexing\")")

    p = sub.add_parser("remove", help="remove documents from an index, in one atomic batch",
                       description="Remove documents in one atomic batch. Each DOC is a document name as `souyi "
                       "list` shows it, or the path a document was added from (relative or absolute): a file removes "
                       "the document read from it, a folder every document read from below it. A name wins over a "
                       "path. If any DOC matches nothing, nothing is removed (exit code 1).")
    p.add_argument("docs", nargs="+", metavar="DOC", help="document names, or the files and folders they came from")
    p.add_argument("--index", type=Path, default=None, help=index_help)
    _store_args(p)
    _remote_args(p, "remove from a running souyi serve at URL instead (DOC is then a document name only), and "
                 "wait for its job")

    p = sub.add_parser("list", help="list the documents of an index")
    p.add_argument("--index", type=Path, default=None, help=index_help)
    _store_args(p)
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.add_argument("--source", action="store_true", help="also show the file each document was read from")

    p = sub.add_parser("check", help="check that the database, vectors and BM25 index agree",
                       description="Check the index: SQLite integrity, and that FAISS and BM25 hold exactly the "
                       "stored passages. Exit code 1 when a problem is found.")
    p.add_argument("--index", type=Path, default=None, help=index_help)
    _store_args(p)
    p.add_argument("--repair", action="store_true",
                   help="rewrite damaged vector/BM25 files from the database (no re-reading, no re-embedding)")

    p = sub.add_parser("search", help="search an index", description="Print the best passages for a query.")
    p.add_argument("query", help="the question or keywords, in Chinese or English")
    p.add_argument("--index", type=Path, default=None, help=index_help)
    _store_args(p)
    p.add_argument("-k", type=int, default=10, help="number of passages (default: %(default)s)")
    p.add_argument("--offset", type=int, default=0, help="skip this many passages first (paging)")
    p.add_argument("--mode", choices=MODES, default="hybrid", help="retrieval mode (default: %(default)s)")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="only documents whose name (doc=...), title or metadata field has this value; repeat a key "
                   "for any of several values, different keys must all match")
    p.add_argument("--model", default=None, help="embedding model; must be the one that built the index")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--facet", action="append", default=[], metavar="FIELD",
                   help="after the hits, count the results per value of FIELD (doc, title or a metadata field; "
                   "repeatable); with --json: \"total\" and \"facets\"")
    p.epilog = SYNTAX_HELP
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="highlight matches with terminal colours (default: when printing to a terminal)")
    p.add_argument("--no-translation", dest="translate", action="store_false", help=NO_TRANSLATION_HELP)

    p = sub.add_parser("eval", help="measure retrieval quality on a test collection",
                       description="Index a collection (corpus.jsonl, queries.jsonl, qrels.tsv) in a temporary "
                       "directory and print Recall@1, Recall@10, MRR@10 and query latency per mode.")
    p.add_argument("collection", type=Path, help="collection folder")
    p.add_argument("--mode", choices=MODES, action="append", help="mode to measure (repeatable; default: all)")
    p.add_argument("--index", type=Path, default=None, help="reuse (or build once into) this index directory")
    _store_args(p)
    p.add_argument("--model", default=None, help=f"embedding model (default: {DEFAULT_MODEL})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--passage-size", type=int, default=DEFAULT_PASSAGE_SIZE,
                   help="longest passage when indexing the corpus (default: %(default)s)")
    p.add_argument("--fast", action="store_true", help="index the corpus in fast mode (as `souyi index --fast`)")
    p.add_argument("--no-translation", dest="translate", action="store_false", help=NO_TRANSLATION_HELP)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("migrate", help="copy an embedded index into Milvus without re-embedding",
                       description="Create a Milvus-backed index at --to holding the documents, passages, vectors "
                       "and terms of the embedded index at --index (nothing is re-read or re-embedded).")
    p.add_argument("--index", type=Path, default=None, help=f"the embedded index to copy ({index_help})")
    p.add_argument("--to", type=Path, required=True, metavar="DIR", help="directory of the new Milvus-backed index")
    _store_args(p)

    p = sub.add_parser("demo", help="index the bundled sample report (once) and run example queries")
    p.add_argument("--index", type=Path, default=None, help=index_help)

    p = sub.add_parser("serve", help="serve the search page and JSON API over HTTP (waitress)",
                       description="Serve the search page at / and the JSON API at /api/search with waitress. "
                       "Without --index, the bundled sample report is indexed first if needed. A missing index "
                       "does not stop the server: it answers 503 until the index is built, then recovers.",
                       epilog="Memory: the server maps the index's files, and the pages its searches touch count in "
                       "its RSS. On Linux it unmaps the BM25 postings' pages after a search once the mapped files "
                       "have grown by 64 MiB (SOUYI_POSTINGS=release, the default there; they stay in the page "
                       "cache); SOUYI_POSTINGS=map leaves them mapped (the default elsewhere) and "
                       "SOUYI_POSTINGS=read reads them with pread instead (docs/performance.md, Segments).")
    p.add_argument("--index", type=Path, default=None, help=index_help)
    _store_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one (default: %(default)s)")
    p.add_argument("--threads", type=int, default=4, help="request threads (default: %(default)s)")
    p.add_argument("--facet", action="append", default=None, metavar="FIELD",
                   help="list result counts per value of FIELD beside the results (doc, title or a metadata field; "
                   "repeatable; default: doc)")
    p.add_argument("--no-translation", dest="translate", action="store_false", help=NO_TRANSLATION_HELP)
    p.add_argument("--model", default=None, help="embedding model; must be the one that built the index")
    cli_serve_writes.add_arguments(p)
    cli_read.add_parsers(sub, index_help)
    cli_optimize.add_parser(sub, index_help)
    return parser


class _DeprecatedFlag(argparse.Action):
    """A flag's former name: still accepted, with a warning on stderr naming the new one."""

    def __init__(self, *args: object, new: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.new = new

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        print(f"souyi: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _remote_args(p: argparse.ArgumentParser, server_help: str) -> None:
    p.add_argument("--server", default=None, metavar="URL", help=server_help)
    p.add_argument("--token-file", type=Path, default=None, metavar="FILE",
                   help="with --server: a file holding the server's write token (sent as a Bearer token, never "
                   "shown)")


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", choices=stores.STORES, default=None,
                   help="store of a new index: embedded (FAISS + SQLite in the index directory, the default) or "
                   "milvus; an existing index keeps its own (recorded in its directory)")
    p.add_argument("--backend", dest="store", choices=stores.STORES, action=_DeprecatedFlag, new="--store",
                   help="deprecated name of --store")
    p.add_argument("--milvus-uri", default=None, metavar="URI",
                   help="Milvus of a new milvus index: a milvus-lite file (FILE.db, one process at a time) or a "
                   "server (http://HOST:19530)")
    p.add_argument("--collection", dest="milvus_collection", default=None, metavar="NAME",
                   help="Milvus collection name of a new milvus index (default: souyi)")


def _milvus_target(args: argparse.Namespace) -> stores.MilvusTarget | None:
    """The Milvus target that the store flags ask for (None: embedded)."""
    store = args.store or ("milvus" if args.milvus_uri or args.milvus_collection else "embedded")
    if store == "embedded":
        if args.milvus_uri or args.milvus_collection:
            raise BadQuery("--milvus-uri and --collection are options of --store milvus")
        return None
    if not args.milvus_uri:
        raise BadQuery("--store milvus needs --milvus-uri: a milvus-lite file (e.g. index.db) or http://HOST:19530")
    return stores.MilvusTarget(args.milvus_uri, args.milvus_collection or "souyi")


def _check_store(args: argparse.Namespace, target: Path) -> None:
    """Store flags given for an existing index must describe it (they never convert one)."""
    wanted = _milvus_target(args)
    if (args.store is None and wanted is None) or not index_exists(target):
        return
    actual = stores.store_of(target)
    if (wanted is not None) != (actual == "milvus"):
        raise BadQuery(f"{target} is an index of the {actual} store; to move an embedded index into Milvus "
                       "use: souyi migrate")
    if wanted is not None:
        recorded = stores.milvus_store.read_manifest(target)["milvus"]
        if (stores.milvus_store.resolve_uri(wanted.uri), wanted.collection) != (recorded["uri"],
                                                                                  recorded["collection"]):
            raise BadQuery(f"{target} is stored in collection {recorded['collection']!r} at {recorded['uri']}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``souyi`` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    try:
        return _COMMANDS[args.command](args)
    except SearchError as exc:
        print(f"souyi: error: {_missing_index_hint(exc, args) or exc}", file=sys.stderr)
        return next((code for kind, code in _EXIT_CODES if isinstance(exc, kind)), EXIT_ERROR)
    except (OSError, sqlite3.Error) as exc:  # the machine's problem (disk full, damaged file): a message, not a trace
        print(f"souyi: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _missing_index_hint(exc: SearchError, args: argparse.Namespace) -> str | None:
    """For an index that does not exist, the message naming the shortest command that makes it (else None)."""
    given = getattr(args, "index", None)
    target = given or default_index_dir()
    if not isinstance(exc, IndexNotFound) or target.exists():
        return None
    if given is None and not os.environ.get("SOUYI_INDEX"):
        return (f"no index yet at {target}; try souyi on the bundled sample with: souyi demo "
                "(or index your own documents: souyi index DIR)")
    return f"no index at {target}; build one with: souyi index DIR" + (f" --index {target}" if given else "")


def _configure_logging(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # The one-time model preparation is announced even without -v (a first run would look hung);
    # -v also lets through the warnings of that step known to be harmless.
    preparation_logger.setLevel(logging.INFO)
    show_known_warnings(verbose)
    import jieba  # jieba logs its dictionary loading at DEBUG on its own handler

    jieba.setLogLevel(level)
    if not verbose:  # transformers draws a "Loading weights" bar on every model load
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()


def _show_progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def _cmd_index(args: argparse.Namespace) -> int:
    if cli_remote.wants_server(args):
        return cli_remote.remote_add(args, _show_progress(args))
    target = args.index or default_index_dir()
    build = build_index if args.command == "index" else add_documents
    if args.command == "add":
        _check_store(args, target)
    report = build(args.paths, target, model=args.model, passage_size=args.passage_size, userdict=args.userdict,
                   meta=parse_filters(args.meta), include=args.include, exclude=args.exclude,
                   progress=_show_progress(args), ann=args.ann, milvus=_milvus_target(args), max_chars=args.max_chars,
                   rescorer=args.rescorer, fast=args.fast, name_prefix=args.name_prefix,
                   **({"replace": args.replace} if args.command == "add" else {}))
    for message in report.refused:
        print(f"souyi: refused: {message}", file=sys.stderr)
    if args.command == "add":
        print(f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}; ", end="")
    print(f"{report.documents} documents, {report.passages} passages in {target} ({report.seconds:.1f} s)")
    return EXIT_ERROR if report.refused else EXIT_OK


def _cmd_remove(args: argparse.Namespace) -> int:
    if cli_remote.wants_server(args):
        return cli_remote.remote_remove(args)
    target = args.index or default_index_dir()
    _check_store(args, target)
    report = remove_documents(args.docs, target)
    for name in report.removed_names:
        print(f"removed {name}")
    print(f"removed {report.removed}; {report.documents} documents, {report.passages} passages in {target}")
    return EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    target = args.index or default_index_dir()
    _check_store(args, target)
    documents = stores.list_documents(target)
    if args.json:
        print(json.dumps([vars(d) for d in documents], ensure_ascii=False, indent=2))
        return EXIT_OK
    print(f"{'passages':>8}  {'indexed':<19}  document")
    for doc in documents:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(doc.indexed_at))
        extra = f"  {json.dumps(doc.meta, ensure_ascii=False)}" if doc.meta else ""
        source = f"  <- {doc.source}" if args.source else ""
        print(f"{doc.passages:>8}  {when:<19}  {doc.name}  ({doc.title}){extra}{source}")
    print(f"{len(documents)} documents")
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    target = args.index or default_index_dir()
    _check_store(args, target)
    problems = stores.check_index(target, repair=args.repair)
    for problem in problems:
        print(f"souyi: problem: {problem}", file=sys.stderr)
    if problems and not args.repair and not stores.database_damaged(problems):
        print(f"souyi: try: souyi check --repair --index {target}", file=sys.stderr)
    print("ok" if not problems else f"{len(problems)} problem(s)")
    return EXIT_ERROR if problems else EXIT_OK


def _cmd_search(args: argparse.Namespace) -> int:
    target = args.index or default_index_dir()
    _check_store(args, target)
    searcher = Searcher.open(target, args.model, translate=args.translate)
    filters = parse_filters(args.filter)
    results = None
    if args.facet:
        results = searcher.query(args.query, k=args.k, mode=args.mode, offset=args.offset, filters=filters,
                                 facets=args.facet)
        hits = list(results.hits)
        also = results.also_searched
    else:
        hits = searcher.search(args.query, k=args.k, mode=args.mode, offset=args.offset, filters=filters)
        also = searcher.also_searched(args.query, filters) if args.mode != "dense" else ()
    if args.json:
        # argv's undecodable bytes arrive as lone surrogates, which stdout cannot print: shown escaped
        query = args.query.encode("utf-8", "backslashreplace").decode("utf-8")
        payload = {"query": query, "mode": args.mode, "k": args.k, "offset": args.offset,
                   "hits": [hit.to_dict() for hit in hits], "also_searched": list(also)}
        if results is not None:
            payload.update({key: value for key, value in results.to_dict().items() if key != "hits"})
        print(json.dumps(payload, ensure_ascii=False, indent=2))
        return EXIT_OK
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    if also:
        print(f"also searched: {' '.join(also)}\n")
    if not hits:
        print("no results")
    for hit in hits:
        print(_format_hit(hit, color))
    if results is not None:
        print("\n".join(facet_lines(results)))
    return EXIT_OK


def _format_hit(hit: Hit, color: bool) -> str:
    head = f"{hit.rank:>3}. [{hit.score:.4f}] {hit.doc_id} ¶{hit.paragraph} passage {hit.passage_id}"
    if hit.heading:
        head += f" · {hit.heading}"
    body = paint(hit.text, hit.highlights + hit.translation_highlights, color, hit.answer).replace("\n", "\n     ")
    if hit.answer and not color:  # without ANSI the answer sentence is repeated on a line of its own
        body += "\n     » " + hit.text[hit.answer[0] : hit.answer[1]].replace("\n", " ")
    return f"{head}\n     {body}\n"


def paint(text: str, spans: Sequence[tuple[int, int]], color: bool, answer: tuple[int, int] | None = None) -> str:
    """``text`` with ``spans`` in bold yellow and the ``answer`` sentence underlined (ANSI) when ``color`` is on."""
    if not color:
        return text
    marks = [(start, "\x1b[1;33m") for start, _ in spans] + [(end, "\x1b[22;39m") for _, end in spans]
    if answer:
        marks += [(answer[0], "\x1b[4m"), (answer[1], "\x1b[24m")]
    out, last = [], 0
    for position, code in sorted(marks, key=lambda mark: mark[0]):
        out += [text[last:position], code]
        last = position
    out.append(text[last:])
    return "".join(out) + "\x1b[0m"


def _cmd_eval(args: argparse.Namespace) -> int:
    collection = load_collection(args.collection)
    result = evaluate(collection, modes=args.mode or MODES, index_dir=args.index, model=args.model,
                      progress=_show_progress(args), passage_size=args.passage_size, milvus=_milvus_target(args),
                      fast=args.fast, translate=args.translate)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return EXIT_OK
    print(f"{result['collection']}: {result['n_docs']} documents, {result['n_passages']} passages, "
          f"{result['n_queries']} queries, model {result['model']}")
    print(f"{'mode':<8} {'R@1':>7} {'R@10':>7} {'MRR@10':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for mode, m in result["modes"].items():
        print(f"{mode:<8} {m['recall@1']:>7.4f} {m['recall@10']:>7.4f} {m['mrr@10']:>7.4f} "
              f"{m['latency_ms_p50']:>8.1f} {m['latency_ms_p99']:>8.1f}")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    target = args.index or default_index_dir()
    ensure_sample_index(target, progress=sys.stderr.isatty())
    searcher = Searcher.open(target)
    for query in ("2008年浙江省信息产业的发展思路是什么", "How fast did software revenue grow?"):
        print(f"\n=== {query}")
        for hit in searcher.search(query, k=3):
            print(_format_hit(hit, sys.stdout.isatty()))
    where = f" --index {target}" if args.index else ""
    print(f"Index: {target}. Try: souyi search \"杭州软件服务外包\"{where}")
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    from web import create_app  # Flask is imported only by the command that needs it
    from web.server import serve

    if args.threads < 1 or not 0 <= args.port <= 65535:
        print("souyi: error: --threads must be at least 1 and --port from 0 to 65535", file=sys.stderr)
        return EXIT_USAGE
    target = args.index or default_index_dir()
    if args.index is None:
        ensure_sample_index(target, progress=sys.stderr.isatty())
    _check_store(args, target)
    for name in ("web", "waitress"):  # the URL served and start/stop are worth seeing without -v
        logging.getLogger(name).setLevel(logging.INFO)
    app = create_app(target, {"SOUYI_MODEL": args.model, "SOUYI_FACETS": tuple(args.facet or ("doc",)),
                              "SOUYI_TRANSLATE": args.translate, **cli_serve_writes.write_settings(args)})
    try:
        serve(app, host=args.host, port=args.port, threads=args.threads)
    except OSError as exc:
        print(f"souyi: error: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _cmd_migrate(args: argparse.Namespace) -> int:
    source = args.index or default_index_dir()
    target = _milvus_target(argparse.Namespace(**{**vars(args), "store": "milvus"}))
    documents, passages = stores.migrate(source, args.to, target)
    print(f"copied {documents} documents, {passages} passages from {source} into Milvus collection "
          f"{target.collection} ({args.to}); search it with: souyi search QUERY --index {args.to}")
    return EXIT_OK


def ensure_sample_index(target: Path, progress: bool = False) -> None:
    """Build the index of the bundled sample report at ``target`` unless one is there."""
    if index_exists(target):
        return
    print(f"building the sample index at {target} ...", file=sys.stderr)
    build_index([SAMPLE_DIR], target, progress=progress)


_COMMANDS = {
    "index": _cmd_index,
    "add": _cmd_index,
    "remove": _cmd_remove,
    "list": _cmd_list,
    "check": _cmd_check,
    "search": _cmd_search,
    "eval": _cmd_eval,
    "demo": _cmd_demo,
    "serve": _cmd_serve,
    "migrate": _cmd_migrate,
}
_COMMANDS.update(cli_read.commands(lambda args: Searcher.open(args.index or default_index_dir(), args.model)))
_COMMANDS["optimize"] = cli_optimize.command(default_index_dir)

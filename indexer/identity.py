"""Document identity: the name a document carries and the source it was read from.

A document's *name* is what users see and search by: its path relative to
the folder given to ``souyi index``/``souyi add`` (a file given directly: its
file name), optionally under a name prefix.  Two different files can earn the
same name in two batches (``a/notes.txt`` and ``b/notes.txt``, each added
from inside its folder), so a name alone cannot tell "this file changed"
from "another file claims this name".  Every document therefore also records
its *source* (the resolved absolute path of the file, or a label for text
that came from elsewhere), and identity is compared on it:

- the same name from the same source is an update (the file changed);
- the same name from another source is a *conflict*, refused by name unless
  the caller says ``replace`` (``souyi add --replace``), or avoided with a
  name prefix (``souyi add a/ --name-prefix a``);
- removing accepts the name or the path the document was added from (a file,
  or a folder for everything below it).

Indexes made before this rule keep their names and sources unchanged: the
rule only reads what every index already stores.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import DocumentError
from .records import StoredDocument

#: Longest name prefix accepted (a prefix is a short folder-like label, not a path to a file).
MAX_PREFIX_CHARS = 200
#: Longest document name a client may send (an upload's name).
MAX_NAME_CHARS = 512


def check_name_prefix(prefix: str) -> str:
    """``prefix`` as the folder-like label names get (``"a/"``), or ``""``; raises :class:`DocumentError`.

    A prefix is relative, has no ``.``/``..`` parts, no backslash and no
    control character: names are index keys shown to users and sent in URLs,
    never paths on this machine.
    """
    cleaned = prefix.strip().strip("/")
    if not cleaned:
        return ""
    if not _is_label(cleaned, MAX_PREFIX_CHARS):
        raise DocumentError(
            f"name prefix {prefix[:80]!r} must be a relative label such as 'reports/2009' "
            f"(no '..', no backslash, no control characters, at most {MAX_PREFIX_CHARS} characters)"
        )
    return cleaned + "/"


def check_document_name(name: str) -> str:
    """``name`` when it can be a document name sent by a client (an upload); raises :class:`DocumentError`.

    The same rule as a prefix: a relative, folder-like label such as
    ``reports/2008.txt``.  It is only ever a key in the index, but names that
    look like paths out of a folder (``../x``, ``/etc/x``) would make ``remove
    FOLDER`` and the page's document links ambiguous, so they are refused.
    """
    if not name or name != name.strip() or name.startswith("/") or not _is_label(name, MAX_NAME_CHARS):
        raise DocumentError(
            f"document name {name[:80]!r} must be a relative label such as 'reports/2008.txt' (no leading '/', "
            f"no '..', no backslash, no control characters, no surrounding spaces, at most {MAX_NAME_CHARS} "
            "characters)"
        )
    return name


def _is_label(text: str, longest: int) -> bool:
    """Relative, at most ``longest`` characters, no empty, ``.`` or ``..`` part, no backslash or control character."""
    return not (
        len(text) > longest
        or "\\" in text
        or any(ch < " " or ch == "\x7f" or "\ud800" <= ch <= "\udfff" for ch in text)
        or any(part in ("", ".", "..") for part in text.split("/"))
    )


def conflict(name: str, old: StoredDocument, source: str) -> str | None:
    """Why adding ``source`` as ``name`` would replace another document, or None when it is the same one."""
    if old.source == source:
        return None
    return (
        f"{source}: the index already has a document named {name!r}, read from {old.source}; not replaced. "
        f"Keep both with --name-prefix (e.g. --name-prefix {_prefix_hint(source)}), "
        f"or replace it with --replace"
    )


def documents_to_remove(
    targets: Iterable[str], known: Mapping[str, StoredDocument], cwd: str | os.PathLike[str] | None = None
) -> list[str]:
    """The names of the documents ``targets`` designate, in order, without repeats.

    Each target is a document name as ``souyi list`` shows it, or else a path
    (relative to ``cwd``, default the current directory, or absolute): a file
    designates the document read from it, a folder every document read from
    below it.  A name wins over a path that would designate something else.
    Raises :class:`DocumentError` naming the first target that designates
    nothing.
    """
    base = Path(cwd) if cwd is not None else Path.cwd()
    by_source: dict[str, list[str]] = {}
    for name, doc in known.items():
        by_source.setdefault(doc.source, []).append(name)
    chosen: dict[str, None] = {}
    for target in targets:
        if target in known:
            chosen[target] = None
            continue
        found = _under(_resolved(base, target), by_source)
        if not found:
            raise DocumentError(
                f"no document named {target!r}, and no document was read from that path; see: souyi list --source"
            )
        chosen.update(dict.fromkeys(found))
    return list(chosen)


def _resolved(base: Path, target: str) -> str:
    path = Path(os.path.expanduser(target))
    try:
        return str((path if path.is_absolute() else base / path).resolve())
    except (OSError, RuntimeError):  # a symlink loop or an unreadable part: compare the plain absolute path
        return os.path.abspath(base / path)


def _under(path: str, by_source: Mapping[str, list[str]]) -> list[str]:
    """Names of the documents read from ``path`` or from below it (sorted by name)."""
    folder = path.rstrip(os.sep) + os.sep
    return sorted(name for source, names in by_source.items()
                  if source == path or source.startswith(folder) for name in names)


def _prefix_hint(source: str) -> str:
    """A prefix a user could pick for ``source``: the name of the folder that holds it."""
    parent = Path(source).parent.name
    return parent if parent and parent.isprintable() and " " not in parent else "NAME"

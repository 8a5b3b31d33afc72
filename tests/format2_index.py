"""Turn a freshly built index into the format-2 directory the previous souyi wrote, to test reading and converting it.

How it is honest: SQLite's schema and rows are the same in both formats, so
only the files beside it differ.  Format 2's writer (``git show
3c41c55:indexer/store.py``, ``IndexWriter._save_generation`` and
``_write_manifest``) kept, per generation, ``vectors-<gen>.faiss`` (the FAISS
index of the live passages, by ``ann.build``), ``lexical-<gen>.npz``
(``BM25Index.to_arrays`` saved by ``np.savez``) and a manifest with
``format_version`` 2, ``ann`` = ``ann.describe`` of that index and ``files``
naming the two; this helper writes exactly those from the rows SQLite keeps
(``IndexReader.load_vectors``/``load_lexical``: the
same ``ann.build`` and ``BM25Index.build`` that writer called) and removes the format-3 parts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import faiss
import numpy as np

from indexer import ann
from indexer.store import IndexReader

FORMAT3_KEYS = ("segments", "lexical_length", "merge", "retired")


def make_format2(path: Path) -> None:
    """Rewrite the (format-3) index at ``path`` as format 2, same generation and rows."""
    reader = IndexReader.open(path)
    manifest, gen = dict(reader.manifest), reader.generation
    vectors, lexical = reader.load_vectors(), reader.load_lexical()  # format 3: built from SQLite's rows
    reader.close()
    files = {"vectors": f"vectors-{gen:06d}.faiss", "lexical": f"lexical-{gen:06d}.npz"}
    faiss.write_index(vectors, str(path / files["vectors"]))
    with open(path / files["lexical"], "wb") as fh:
        np.savez(fh, **lexical.to_arrays())
    for key in FORMAT3_KEYS:
        manifest.pop(key, None)
    manifest.update(format_version=2, ann=ann.describe(vectors, manifest["ann"]["requested"]), files=files)
    (path / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    shutil.rmtree(path / "segments")

"""The reader's segment API (issue 18) over a format-2 index (one segment) and its conversion to format 3.

The format-2 directory is made by tests/format2_index.py from a fresh build
(its docstring says why that is the directory the previous writer made).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from format2_index import make_format2

from indexer import check_index
from indexer.bm25 import term_weight
from indexer.bm25_segments import BM25Segment, SegmentedBM25, average_length
from indexer.store import IndexReader, IndexWriter
from souyi.cli import main as cli_main


@pytest.fixture()
def format2_index(sample_index, tmp_path):
    target = tmp_path / "format2"
    shutil.copytree(sample_index, target)
    make_format2(target)
    return target


def bm25_of(reader: IndexReader) -> SegmentedBM25:
    """The lexical side of a generation as a searcher builds it from :meth:`IndexReader.segments`."""
    segments = [
        BM25Segment.from_arrays(s.lexical).with_deletions(s.deleted_ids, s.deleted_terms, s.deleted_length)
        for s in reader.segments()
    ]
    return SegmentedBM25(segments, **reader.manifest["bm25"])


def test_a_format2_index_reads_as_one_segment_of_its_live_passages(format2_index):
    reader = IndexReader.open(format2_index)
    ids, _ = reader.stored_vectors()
    [entry] = reader.segment_entries()
    [segment] = reader.segments()

    assert segment.name == entry["name"]
    assert segment.passages == len(ids) == segment.vectors.ntotal
    assert (segment.first_id, segment.last_id) == (int(ids.min()), int(ids.max()))
    np.testing.assert_array_equal(segment.lexical["row_ids"], np.sort(ids))
    assert len(segment.deleted_ids) == 0 and segment.deleted_terms == {} and segment.deleted_length == 0
    assert len(reader.load_deletions(entry).ids) == 0


def test_format2_weights_are_the_term_part_at_the_live_average_length(format2_index):
    reader = IndexReader.open(format2_index)
    [segment] = reader.segments()
    arrays = segment.lexical
    k1, b, avgdl_ref = arrays["params"]
    assert avgdl_ref == average_length(int(arrays["doc_len"].sum(dtype=np.float64)), len(arrays["row_ids"]))
    expected = term_weight(1.0, arrays["tfs"].astype(np.float64),
                           arrays["doc_len"][arrays["rows"]].astype(np.float64), avgdl_ref, k1, b)
    np.testing.assert_allclose(arrays["weights"], expected, rtol=1e-6)
    first_term = slice(arrays["offsets"][0], arrays["offsets"][1])
    assert arrays["max_weight"][0] == arrays["weights"][first_term].max()


def test_a_segment_vector_search_finds_its_own_passage(format2_index):
    reader = IndexReader.open(format2_index)
    ids, vectors = reader.stored_vectors()
    [segment] = reader.segments()
    _, found = segment.vectors.search(vectors[:1], 1)
    assert found[0, 0] == ids[0]


def test_the_first_writer_converts_format2_to_one_segment_that_ranks_the_same(format2_index):
    old = IndexReader.open(format2_index)
    assert old.format_version == 2 and check_index(format2_index) == []
    queries = [["软件", "收入"], ["software", "companies"], ["港口"]]
    before = [bm25_of(old).top(q, 5) for q in queries]
    old_files = set(old.manifest["files"].values())

    with IndexWriter(format2_index) as writer:  # opening converts, before any batch
        assert writer.manifest["format_version"] == 3 and writer.generation == old.generation + 1
    new = IndexReader.open(format2_index)
    [segment] = new.segments()
    np.testing.assert_array_equal(segment.lexical["row_ids"], old.segments()[0].lexical["row_ids"])
    assert check_index(format2_index) == []
    for query, (ids, scores) in zip(queries, before, strict=True):
        got_ids, got_scores = bm25_of(new).top(query, 5)
        np.testing.assert_array_equal(got_ids, ids)
        np.testing.assert_array_equal(got_scores, scores)
    manifest = json.loads((format2_index / "manifest.json").read_text())
    assert "files" not in manifest
    assert {r["path"] for r in manifest["retired"]} == old_files  # kept for readers still on format 2
    assert all((format2_index / f).is_file() for f in old_files)


def test_souyi_optimize_is_the_migration_command(format2_index, capsys):
    assert cli_main(["optimize", "--index", str(format2_index), "-q"]) == 0
    assert "1 segment" in capsys.readouterr().out
    reader = IndexReader.open(format2_index)
    assert reader.format_version == 3 and len(reader.segment_entries()) == 1
    assert check_index(format2_index) == []


def test_a_format2_index_with_a_damaged_bm25_file_converts_from_sqlite(format2_index):
    old = IndexReader.open(format2_index)
    before = bm25_of(old).top(["软件", "收入"], 5)
    (format2_index / old.manifest["files"]["lexical"]).write_bytes(b"damaged")
    with IndexWriter(format2_index):
        pass
    assert check_index(format2_index) == []
    ids, scores = bm25_of(IndexReader.open(format2_index)).top(["软件", "收入"], 5)
    np.testing.assert_array_equal(ids, before[0])
    np.testing.assert_array_equal(scores, before[1])

"""The reader's segment API (issue 18) over the indexes the writer makes today (format 2: one segment)."""

from __future__ import annotations

import numpy as np

from indexer.bm25 import term_weight
from indexer.bm25_segments import average_length
from indexer.store import IndexReader


def test_a_format2_index_reads_as_one_segment_of_its_live_passages(sample_index):
    reader = IndexReader.open(sample_index)
    ids, _ = reader.stored_vectors()
    [entry] = reader.segment_entries()
    [segment] = reader.segments()

    assert segment.name == entry["name"]
    assert segment.passages == len(ids) == segment.vectors.ntotal
    assert (segment.first_id, segment.last_id) == (int(ids.min()), int(ids.max()))
    np.testing.assert_array_equal(segment.lexical["row_ids"], np.sort(ids))
    assert len(segment.deleted_ids) == 0 and segment.deleted_terms == {} and segment.deleted_length == 0
    assert len(reader.load_deletions(entry).ids) == 0


def test_format2_weights_are_the_term_part_at_the_live_average_length(sample_index):
    reader = IndexReader.open(sample_index)
    [segment] = reader.segments()
    arrays = segment.lexical
    k1, b, avgdl_ref = arrays["params"]
    assert avgdl_ref == average_length(int(arrays["doc_len"].sum(dtype=np.float64)), len(arrays["row_ids"]))
    expected = term_weight(1.0, arrays["tfs"].astype(np.float64),
                           arrays["doc_len"][arrays["rows"]].astype(np.float64), avgdl_ref, k1, b)
    np.testing.assert_allclose(arrays["weights"], expected, rtol=1e-6)
    first_term = slice(arrays["offsets"][0], arrays["offsets"][1])
    assert arrays["max_weight"][0] == arrays["weights"][first_term].max()


def test_a_segment_vector_search_finds_its_own_passage(sample_index):
    reader = IndexReader.open(sample_index)
    ids, vectors = reader.stored_vectors()
    [segment] = reader.segments()
    _, found = segment.vectors.search(vectors[:1], 1)
    assert found[0, 0] == ids[0]

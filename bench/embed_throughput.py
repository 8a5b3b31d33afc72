"""Embedding speed: indexing throughput against txtai, and single-query latency, per backend.

Passages are real: the documents of an eval corpus (default cmrc2018_dev) split exactly as
`souyi index` splits them, embedded as `build_index` embeds them (heading + text).  Systems, all
on the same local model folder (the converted multilingual-e5-small-q4):

- txtai: ``Embeddings({"path": <folder>, "method": "sentence-transformers"}).index(passages)``
  (its default pipeline: sentence-transformers on torch, batches of 32, a FAISS index), with
  the instruction ``{"data": "passage: "}`` so that it embeds exactly what souyi embeds;
- souyi torch: ``SentenceTransformerEmbedder.encode_passages`` (float32, the reference);
- souyi onnx-fp32 / onnx-int8: ``OnnxEmbedder.encode_passages`` (the default is onnx-int8).

Every round runs each system once, in turn, so that load from other jobs hits all of them
alike; the table reports medians over rounds and ratios to txtai's median (txtai comes with
the ``bench`` extra; without it the txtai row and the ratios are left out).  Query latency is
one query at a time (short Chinese and English questions of the eval sets), per backend.

    nice -n 10 python -m bench.embed_throughput --passages 2000 --rounds 3
"""

from __future__ import annotations

import importlib.util
import json
import logging
import statistics
import time
from pathlib import Path

import numpy as np

from bench.common import (
    EVAL_DIR,
    NewPassage,
    add_eval_dir,
    add_out,
    embedding_text,
    first_questions,
    machine,
    parser_for,
    write_perf,
)
from indexer.e5_convert import E5_MODEL_ID, ensure_e5_model
from indexer.embedding import SentenceTransformerEmbedder
from indexer.onnx_embedding import OnnxEmbedder
from indexer.onnx_export import ensure_onnx_model
from indexer.split import split_document

logger = logging.getLogger(__name__)
TXTAI = "txtai (sentence-transformers)"


def corpus_passages(corpus: Path, limit: int) -> list[str]:
    """The first ``limit`` passages of the corpus, as the indexer would embed them."""
    texts = []
    for line in corpus.read_text(encoding="utf-8").splitlines():
        for chunk in split_document(json.loads(line)["text"]):
            texts.append(embedding_text(NewPassage(chunk.paragraph, chunk.start, chunk.end, chunk.heading, chunk.text)))
            if len(texts) == limit:
                return texts
    return texts


def txtai_system(model_dir: Path):
    from txtai import Embeddings

    # sentence-transformers' encode_document (what txtai calls) uses the model's "document" prompt, which
    # sentence-transformers 6 adds as "" beside our "passage: "; txtai's own instruction restores the E5 recipe.
    config = {"path": str(model_dir), "method": "sentence-transformers", "content": False}
    embeddings = Embeddings({**config, "instructions": {"data": "passage: "}})
    return embeddings, lambda texts: embeddings.index(texts)


def percentiles(values: list[float]) -> list[float | None]:
    """p50 and p99 in ms, rounded; ``[None, None]`` for a system without a query path of ours."""
    if not values:
        return [None, None]
    return [round(statistics.median(values), 1), round(float(np.percentile(values, 99)), 1)]


def main(argv: list[str] | None = None) -> None:
    parser = parser_for(__doc__, summary_only=True)
    parser.add_argument("--corpus", type=Path, default=EVAL_DIR / "cmrc2018_dev" / "corpus.jsonl")
    add_eval_dir(parser)
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=50, help="per language, per round")
    add_out(parser, "embedding")
    args = parser.parse_args(argv)

    model_dir = ensure_e5_model()
    passages = corpus_passages(args.corpus, args.passages)
    # short questions: Chinese from xquad_zh-zh, English from xquad_en-zh
    by_set = first_questions(args.eval_dir, ("xquad_zh-zh", "xquad_en-zh"), args.queries)
    questions = {"zh": by_set["xquad_zh-zh"], "en": by_set["xquad_en-zh"]}
    torch_embedder = SentenceTransformerEmbedder(E5_MODEL_ID, str(model_dir))
    ours = {"souyi torch (fp32)": torch_embedder}
    for precision in ("fp32", "int8"):
        path = ensure_onnx_model(model_dir, precision)
        ours[f"souyi onnx-{precision}"] = OnnxEmbedder(E5_MODEL_ID, model_dir, path, f"onnx-{precision}")
    index_fns, agreement = {}, {}
    probe = passages[:64]
    if importlib.util.find_spec("txtai"):
        txtai_embeddings, index_fns[TXTAI] = txtai_system(model_dir)
        agreement[TXTAI] = txtai_embeddings.batchtransform(probe, category="data")
    else:
        logger.warning("txtai is not installed (pip install 'souyi[bench]'): its row is left out")
    index_fns.update({name: embedder.encode_passages for name, embedder in ours.items()})

    # Same vectors?  txtai's against ours on torch, ours against each other.
    reference = torch_embedder.encode_passages(probe)
    agreement.update({name: embedder.encode_passages(probe) for name, embedder in ours.items()})
    cosine = {name: float((np.asarray(v) * reference).sum(1).min()) for name, v in agreement.items()}

    for fn in index_fns.values():  # warm-up: first-call allocations, lazy imports
        fn(passages[:64])
    seconds = {name: [] for name in index_fns}
    latency = {(name, lang): [] for name in ours for lang in questions}
    for round_number in range(args.rounds):
        for name, fn in index_fns.items():
            started = time.perf_counter()
            fn(passages)
            seconds[name].append(time.perf_counter() - started)
            print(f"round {round_number + 1} {name}: {len(passages) / seconds[name][-1]:.1f} passages/s", flush=True)
        for name, embedder in ours.items():
            for lang, texts in questions.items():
                for text in texts:
                    started = time.perf_counter()
                    embedder.encode_queries([text])
                    latency[(name, lang)].append((time.perf_counter() - started) * 1000)

    rate = {name: len(passages) / statistics.median(s) for name, s in seconds.items()}
    baseline = rate.get(TXTAI)
    columns = [
        "system",
        "passages/s (median)",
        "× txtai",
        "min cosine to torch",
        "zh query p50 ms",
        "zh query p99 ms",
        "en query p50 ms",
        "en query p99 ms",
    ]
    rows = []
    for name in index_fns:
        row = [name, round(rate[name], 1), round(rate[name] / baseline, 2) if baseline else None,
               round(cosine[name], 4)]
        for lang in questions:
            row += percentiles(latency.get((name, lang), []))
        rows.append(row)
    print("\t".join(columns))
    for row in rows:
        print("\t".join(str(v) for v in row))
    report = {
        "title": "Embedding: indexing throughput vs txtai and query latency per backend",
        "command": f"nice -n 10 python -m bench.embed_throughput --passages {args.passages} --rounds {args.rounds} "
        f"--queries {args.queries}",
        "machine": f"{machine()} (shared with other jobs)",
        "columns": columns,
        "rows": rows,
        "notes": f"{len(passages)} passages of {args.corpus.parent.name} split as `souyi index` splits them; "
        f"medians of {args.rounds} interleaved rounds, ratios to txtai's median in the same run; query "
        f"latency over {args.queries} Chinese (xquad_zh-zh) and {args.queries} English (xquad_en-zh) "
        "questions per round, one at a time, one intra-op thread (the product's setting for queries). "
        "txtai's time includes building its FAISS index (a few ms here). The machine ran other jobs "
        "at the same time: absolute figures are pessimistic, ratios are what to compare.",
    }
    write_perf(args.out, report)


if __name__ == "__main__":
    main()

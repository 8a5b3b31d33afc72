"""Build an index of N passages at scale without embedding N passages: real text, modelled vectors.

    python -m bench.synth_index --passages 100000 --out /tmp/souyi-perf/100k

What is real and what is synthetic:

* **Text and BM25 side: real sentences, recombined.**  The documents of the
  ``../shared/eval`` corpora and the bundled report are cut into passages by
  the real splitter, those into sentences (ending in 。！？；), and N distinct
  passages of 60–120 characters are drawn as random runs of sentences.  Their
  terms are the real analyzer's terms: each distinct sentence is tokenized
  once and a passage's terms are its sentences' terms joined (exact, because
  jieba and the bigrams never cross the sentence-final punctuation; the
  script checks this on a sample).  Every sentence recurs ~N/15,000 times, so
  posting lists are *longer* than in a real corpus of N passages: lexical
  timings are pessimistic.
* **Vectors: a real sample plus a fitted model of it.**  ``--sample`` real
  passages are embedded with the real model (cached beside the output, done
  once); the first rows of the index get these real vectors, the rest are
  drawn by a *smoothed bootstrap*: a random real vector, shrunk towards the
  mean, plus Gaussian noise with the sample's covariance, normalised
  (``x' = μ + a·(x_i − μ) + a·h·L·z``, ``a = 1/√(1+h²)``, ``LLᵀ = Σ``).  That
  keeps the mean and covariance of the real vectors (so cosine similarities
  between unrelated passages are distributed like real ones) and keeps the
  clustered shape of real data that ANN indexes depend on, instead of an
  isotropic cloud.  ``--check`` compares the cosine distributions of real
  and synthetic vectors and writes ``docs/perf/synthetic_vectors.json``
  (``--check-out``).
  A passage's vector is therefore unrelated to its text.

Rows go in through the store's ``IndexWriter`` in batches of
``--batch`` passages, exactly as ``souyi add`` writes them (so the vector
index grows incrementally and switches from exact to IVF on the way); then
one 50-passage document is added and removed again to time a small batch on
the full index.  Times are merged into ``docs/perf/scale_build.json`` (``--out``).
"""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path

import numpy as np

from bench import common
from indexer import build_from_documents
from indexer.analyze import default_analyzer
from indexer.embedding import Embedder, load_embedder

PASSAGES_PER_DOC = 50
MIN_CHARS, MAX_CHARS = 60, 120
#: Smoothed-bootstrap bandwidth: noise scale relative to the sample's spread (see --check).
BANDWIDTH = 0.85


def sample_vectors(passages: list[str], size: int, cache: Path, embedder: Embedder) -> np.ndarray:
    """Real embeddings of ``size`` real passages (random, fixed seed), computed once and cached."""
    if cache.is_file():
        with np.load(cache) as data:
            if len(data["vectors"]) >= size:
                return data["vectors"][:size]
    chosen = random.Random(0).sample(passages, min(size, len(passages)))
    seconds, vectors = common.timed(lambda: embedder.encode_passages(chosen, show_progress=True))
    print(f"embedded {len(chosen)} real passages in {seconds:.0f} s -> {cache}")
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, vectors=vectors)
    return vectors


class VectorModel:
    """The smoothed bootstrap of a real sample (see the module docstring)."""

    def __init__(self, real: np.ndarray, bandwidth: float = BANDWIDTH) -> None:
        self.real = real.astype(np.float64)
        self.mean = self.real.mean(axis=0)
        cov = np.cov(self.real - self.mean, rowvar=False)
        self.chol = np.linalg.cholesky(cov + 1e-6 * np.eye(len(cov)))
        self.shrink = 1 / np.sqrt(1 + bandwidth**2)
        self.bandwidth = bandwidth

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        anchors = self.real[rng.integers(0, len(self.real), n)]
        noise = rng.standard_normal((n, len(self.mean))) @ self.chol.T
        x = self.mean + self.shrink * (anchors - self.mean) + self.shrink * self.bandwidth * noise
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x.astype(np.float32)


def check_terms(sentences: list[str], sentence_terms: list[list[str]], runs: list[list[int]]) -> int:
    """Passages (of up to 300 checked) whose joined sentence terms differ from the analyzer's terms of the text."""
    analyzer = default_analyzer()
    bad = 0
    for run in runs[:300]:
        joined = sorted(t for i in run for t in sentence_terms[i])
        bad += joined != sorted(analyzer.tokens("".join(sentences[i] for i in run)))
    return bad


def cosine_check(model: VectorModel, queries: np.ndarray, rng: np.random.Generator) -> dict:
    """Cosine distributions of real vs synthetic vectors (same count): random pairs, nearest neighbour, queries."""
    real = model.real.astype(np.float32)
    synth = model.draw(len(real), rng)
    pct = (5, 25, 50, 75, 95)

    def stats(x: np.ndarray) -> dict:
        sim = x @ x.T
        pairs = sim[np.triu_indices(len(x), 1)]
        np.fill_diagonal(sim, -1)
        top_query = (queries @ x.T).max(axis=1)
        return {
            "random pair cosine": np.percentile(pairs, pct).round(4).tolist(),
            "nearest-neighbour cosine": np.percentile(sim.max(axis=1), pct).round(4).tolist(),
            "best cosine of a real query": np.percentile(top_query, pct).round(4).tolist(),
        }

    return {"real": stats(real), "synthetic": stats(synth)}


def main(argv: list[str] | None = None) -> None:
    parser = common.parser_for(__doc__, summary_only=True)
    parser.add_argument("--passages", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="index directory to create (must not exist)")
    parser.add_argument("--sample", type=int, default=4000, help="real passages to embed (default: %(default)s)")
    parser.add_argument("--sample-cache", type=Path, default=None,
                        help="where the real embeddings are cached (default: OUT/../synth-sample.npz)")
    parser.add_argument("--batch", type=int, default=50_000,
                        help=f"passages per committed batch, a multiple of {PASSAGES_PER_DOC}")
    parser.add_argument("--ann", default="auto", help="vector index kind (auto, flat, ivf)")
    parser.add_argument("--check", action="store_true",
                        help="compare real and synthetic cosine distributions (into --check-results)")
    parser.add_argument("--check-questions", type=int, default=1000, help="eval questions the --check embeds")
    common.add_eval_dir(parser)
    common.add_out(parser, "scale_build", "--results")
    common.add_out(parser, "synthetic_vectors", "--check-results")
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists; pick a new directory")
    if args.batch % PASSAGES_PER_DOC:  # a document cut by a batch end would be replaced by its second half
        parser.error(f"--batch must be a multiple of {PASSAGES_PER_DOC} (passages per synthetic document)")
    started = time.perf_counter()
    passages = common.real_passages(args.eval_dir)
    sentences = common.real_sentences(passages)
    embedder = load_embedder()
    real = sample_vectors(passages, args.sample, args.sample_cache or args.out.parent / "synth-sample.npz", embedder)
    model = VectorModel(real)
    rng = np.random.default_rng(0)
    if args.check:
        questions = common.eval_questions(args.check_questions, eval_dir=args.eval_dir)
        result = cosine_check(model, embedder.encode_queries(questions), rng)
        rows = [[name, kind, *values] for kind in ("real", "synthetic") for name, values in result[kind].items()]
        common.write_perf(args.check_results, {
            "title": "Synthetic vectors against the real sample (cosine percentiles)",
            "command": f"python -m bench.synth_index --check --passages {args.passages} --out {args.out}",
            "machine": common.machine(),
            "columns": ["distribution", "vectors", "p5", "p25", "p50", "p75", "p95"],
            "rows": sorted(rows),
            "notes": f"{len(real)} real passage embeddings vs as many synthetic vectors (smoothed bootstrap, "
                     f"bandwidth {BANDWIDTH}); queries: {len(questions)} real eval questions embedded at run time.",
        })
    analyzer = default_analyzer()
    sentence_terms = [analyzer.tokens(s) for s in sentences]
    runs = common.sentence_runs([len(s) for s in sentences], args.passages + PASSAGES_PER_DOC, random.Random(0),
                         MIN_CHARS, MAX_CHARS)
    runs, extra = runs[: args.passages], runs[args.passages :]  # extra: the small batch timed at the end
    mismatched = check_terms(sentences, sentence_terms, runs)
    print(f"{len(passages)} real passages, {len(sentences)} sentences; terms differ on {mismatched}/300 checked")
    prepared = time.perf_counter() - started
    # an empty index of the product's settings; no rescorer: its vectors would need embedding
    build_from_documents([], args.out, embedder=embedder, ann=args.ann, rescorer=None)
    commits = []
    with common.IndexWriter(args.out) as writer:
        for first in range(0, len(runs), args.batch):
            batch = runs[first : first + args.batch]
            vectors = (real[first : first + len(batch)] if first + len(batch) <= len(real) else
                       np.concatenate([real[first:], model.draw(len(batch) - max(0, len(real) - first), rng)]))
            for d in range(0, len(batch), PASSAGES_PER_DOC):
                number = (first + d) // PASSAGES_PER_DOC
                stage(writer, sentences, sentence_terms, batch[d : d + PASSAGES_PER_DOC], number,
                      vectors[d : d + PASSAGES_PER_DOC])
            tick = time.perf_counter()
            writer.commit()
            commits.append(round(time.perf_counter() - tick, 2))
            print(f"{first + len(batch):>9,} passages committed ({commits[-1]:.1f} s), "
                  f"{len(writer.manifest['segments'])} segments")
        seconds = time.perf_counter() - started
        # one small batch on the full index: what `souyi add` of one document (50 passages) and its removal cost
        tick = time.perf_counter()
        stage(writer, sentences, sentence_terms, extra, 10**6, model.draw(len(extra), rng))
        writer.commit()
        add_s = time.perf_counter() - tick
        tick = time.perf_counter()
        writer.remove(f"synth/{10**6:06d}.txt")
        writer.commit()
        remove_s = time.perf_counter() - tick
        manifest = writer.manifest
    print(f"built {args.passages:,} passages in {seconds:.0f} s into {args.out}; "
          f"adding one 50-passage document took {add_s:.1f} s, removing it {remove_s:.1f} s")
    row = [args.passages, round(seconds), round(prepared), len(commits), float(np.median(commits)), commits[-1],
           round(add_s, 2), round(remove_s, 2), common.vector_kinds(manifest)]
    common.write_perf(args.results, {
        "title": "Building and updating the scale-test indexes",
        "command": "python -m bench.synth_index --passages N --out DIR",
        "machine": common.machine(),
        "columns": ["passages", "build s", "of which preparing text s", "batches", "commit s median",
                    "last commit s", "add 1 doc (50 passages) s", "remove it s", "vector index"],
        "rows": sorted(common.merged_rows(args.results, [row], lambda r: r[0] == args.passages)),
        "notes": f"Batches of {args.batch:,} passages written through IndexWriter like `souyi add` (no embedding: "
                 "vectors are the cached real sample plus synthetic ones). A commit writes one segment of its "
                 "passages (index format 3), and the writer merges segments when its tiered policy asks "
                 "(docs/index-format.md). Shared machine (other jobs running): times are upper bounds.",
    })


def stage(writer: common.IndexWriter, sentences: list[str], sentence_terms: list[list[str]], doc_runs: list[list[int]],
          number: int, vectors: np.ndarray) -> None:
    """Stage one synthetic document made of the passages ``doc_runs`` (runs of sentence numbers)."""
    texts = ["".join(sentences[i] for i in run) for run in doc_runs]
    starts = np.cumsum([0] + [len(t) + 1 for t in texts])
    text = "\n".join(texts)
    doc = common.DocumentRecord(f"synth/{number:06d}.txt", f"synthetic {number}", "bench/synth_index.py", "utf-8",
                         hashlib.sha256(text.encode()).hexdigest(), text, meta={"shard": str(number % 10)})
    news = [common.NewPassage(j + 1, int(starts[j]), int(starts[j]) + len(t), "", t) for j, t in enumerate(texts)]
    writer.add(doc, news, vectors, [[t for i in run for t in sentence_terms[i]] for run in doc_runs])


if __name__ == "__main__":
    main()

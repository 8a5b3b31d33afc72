"""Issue 7 levers measured offline as variants of the final fused score (MRR@10 per collection).

Every variant starts from the searcher's own rule (:func:`search.fusion.semantic` and
:func:`search.fusion.combine` over the union of the e5 and BM25 top-100 lists, lexical weight
``0.8 × coverage``, rescorer share from the script gap) and changes one thing:

* extra lexical **fields** built in memory from the stored passage texts with the index's own
  analyzer: CJK bigrams alone, CJK unigrams, jieba search-mode words alone, jieba precise-mode
  words; fused with the stored BM25 (words + bigrams) as a weighted sum of min-max normalised
  scores, coverage likewise;
* **pseudo-relevance feedback**: Rocchio on the query vectors (q + α·mean of the top-3 fused
  passages' vectors, searched again) and RM3-style lexical expansion;
* **document-level evidence**: a prior from the best passage of the same document, the
  second-best passage, per-signal document maxima, BM25 over whole documents, and the e5 cosine
  to the document's centroid or to the passage's neighbour window;
* from reading the misses (questions whose words are all in a neighbouring paragraph, numbers
  next to their measure words: 第 49 届, 1998 年): **term proximity** as ordered pairs of
  adjacent jieba precise-mode words ("49|届") and unordered window pairs, in the spirit of the
  sequential dependence model; score normalisation (min-max vs z-score); candidate depth;
* **f**, finer and wider e5 views and the query's form: e5 vectors of every sentence (the
  passage's best sentence, as max-sim), e5 vectors of each passage embedded together with
  context (its document's opening sentence, the sentence before it, the sentences on both
  sides), question words (谁, 什么, 哪个, 多少, what, who, …) left out of the lexical query,
  and BM25's k1 and b.  These views embed texts once more; the vectors are cached like the
  query vectors.

``--misses`` also writes, per collection, the questions the default does not rank first.

Indexes are the ones bench.experiments.fusion_ablation builds (one per corpus under --index-root);
only readers are used (the store's ``IndexReader``, :class:`indexer.bm25.BM25Index`).
Query embeddings are cached under ``<out dir>/cache`` (keyed by model and query texts).

    nice -n 15 python -m bench.experiments.lexical_variants ../shared/eval/xquad_zh-zh ../shared/eval/xquad_en-zh \
        ../shared/eval/cmrc2018_dev --index-root /tmp/souyi-quality --out /tmp/q7/lexical_variants.json
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

import jieba
import numpy as np

from bench.common import IndexReader, collection_index, parser_for, times_ms, write_json
from indexer.analyze import Analyzer, is_cjk, normalize
from indexer.bm25 import BM25Index
from indexer.embedding import (
    DEFAULT_MODEL,
    QUERY_PRECISION_ENV,
    RUNTIME_ENV,
    Embedder,
    embed_runtime,
    load_embedder,
)
from indexer.split import sentences
from search import fusion
from search.evaluate import load_collection
from search.searcher import CANDIDATES, SCRIPT_SAMPLE

mm = fusion.minmax


# ----------------------------------------------------------------------------------------------
# corpus: every signal of every passage, loaded once per collection


def _precise_words(tokenizer: jieba.Tokenizer, norm: str) -> list[str]:
    return [w for w, _, _ in tokenizer.tokenize(norm) if any(ch.isalnum() or is_cjk(ch) for ch in w)]


def _word_pairs(tokenizer: jieba.Tokenizer, norm: str) -> list[str]:
    """Adjacent precise-mode words as one term ("49|届"), a proximity field in the spirit of the
    sequential dependence model's ordered pairs; white space is skipped, punctuation breaks a pair."""
    pairs, previous = [], None
    for w, _, _ in tokenizer.tokenize(norm):
        if w.isspace():
            continue
        if not any(ch.isalnum() or is_cjk(ch) for ch in w):
            previous = None
            continue
        if previous is not None:
            pairs.append(f"p:{previous}|{w}")
        previous = w
    return pairs


def _window_pairs(tokenizer: jieba.Tokenizer, norm: str, window: int = 3) -> list[str]:
    """Unordered pairs of precise-mode words at most ``window`` − 1 words apart (the sequential
    dependence model's unordered-window feature); punctuation ends a window."""
    pairs, run = [], []
    for w, _, _ in tokenizer.tokenize(norm):
        if w.isspace():
            continue
        if not any(ch.isalnum() or is_cjk(ch) for ch in w):
            run = []
            continue
        pairs += [f"u:{min(v, w)}|{max(v, w)}" for v in run[-(window - 1):]]
        run.append(w)
    return pairs


def _unigrams(analyzer: Analyzer, norm: str) -> list[str]:
    """CJK single characters, plus the non-CJK words (Latin words, numbers) of the analyzer."""
    chars = ["1:" + ch for ch in norm if is_cjk(ch)]
    return chars + [w for w, _, _ in analyzer.normalized_words(norm) if not any(is_cjk(ch) for ch in w)]


@dataclass
class Corpus:
    name: str
    queries: list[tuple[str, str]]
    relevant: dict[str, set[str]]
    texts: list[str]  # passage texts, in row order
    doc: np.ndarray  # document name of each passage
    doc_index: np.ndarray  # document number of each passage
    n_docs: int
    e5_vectors: np.ndarray
    use_vectors: np.ndarray
    sentence_matrix: np.ndarray
    owner: np.ndarray  # passage row of each sentence row
    analyzer: Analyzer
    fields: dict[str, BM25Index]  # lexical fields; each BM25Index's rows are passage rows ("doc": document rows)
    doc_centroids: np.ndarray  # normalised mean e5 vector of each document's passages
    windows: np.ndarray  # normalised mean e5 vector of each passage and its neighbours in the same document
    e5_queries: np.ndarray
    use_queries: np.ndarray
    cache: Path
    model_id: str
    seconds: dict[str, float] = field(default_factory=dict)
    views: dict[str, np.ndarray] = field(default_factory=dict)


def _cached_vectors(cache: Path, model_id: str, texts: list[str], kind: str = "queries") -> np.ndarray:
    """Query vectors (``kind="queries"``, once per model, query precision and question set) or
    passage vectors of other texts (``kind="passages"``, once per model, embedding backend and texts)."""
    tag = ""
    if model_id == DEFAULT_MODEL:
        tag = os.environ.get(QUERY_PRECISION_ENV, "") if kind == "queries" else embed_runtime()
    key = hashlib.sha256((model_id + "\n" + "\n".join(texts)).encode("utf-8")).hexdigest()[:16]
    file = cache / f"{kind}-{model_id}{'-' + tag if tag else ''}-{key}.npy"
    if file.is_file():
        return np.load(file)
    embedder = _embedder_on(model_id, embed_runtime(), os.environ.get(QUERY_PRECISION_ENV, ""))
    vectors = embedder.encode_queries(texts) if kind == "queries" else embedder.encode_passages(texts)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(file, vectors)
    return vectors


def load_corpus(collection_dir: Path, index_root: Path, cache: Path) -> Corpus:
    collection = load_collection(collection_dir)
    index_dir = collection_index(collection_dir, index_root)
    reader = IndexReader.open(index_dir)
    passages = reader.all_passages()
    ids = np.array([p.passage_id for p in passages])
    stored_lexical = reader.load_lexical()
    if not np.array_equal(stored_lexical.row_ids, ids):
        raise SystemExit(f"{index_dir}: BM25 rows differ from the stored passages")
    e5_vectors = reader.load_vectors().reconstruct_batch(ids)
    stored = reader.sentence_vectors(ids)
    use_vectors = np.stack([stored[int(i)].passage for i in ids])
    sentence_rows = [stored[int(i)].sentences for i in ids]
    owner = np.repeat(np.arange(len(ids)), [len(rows) for rows in sentence_rows])
    analyzer = Analyzer.from_config(reader.manifest["analyzer"], reader.userdict())
    texts = [p.text for p in passages]
    doc = np.array([p.doc_name for p in passages])
    names, doc_index = np.unique(doc, return_inverse=True)
    started = time.perf_counter()
    norms = [normalize(t) for t in texts]
    precise = jieba.Tokenizer()
    words = [[w for w, _, _ in analyzer.normalized_words(n)] for n in norms]
    bigrams = [[t for t, _, _ in analyzer.bigrams(n)] for n in norms]
    fields = {
        "cur": stored_lexical,
        "words": BM25Index.build(words, ids),
        "bigrams": BM25Index.build(bigrams, ids),
        "unigrams": BM25Index.build([_unigrams(analyzer, n) for n in norms], ids),
        "precise": BM25Index.build([_precise_words(precise, n) for n in norms], ids),
        "precise+bigrams": BM25Index.build(
            [_precise_words(precise, n) + b for n, b in zip(norms, bigrams, strict=True)], ids
        ),
        "pairs": BM25Index.build([_word_pairs(precise, n) for n in norms], ids),
        "windows": BM25Index.build([_window_pairs(precise, n) for n in norms], ids),
    }
    # the product-shaped form: pair terms added to the one stored field (doc_len and avg_len grow alike)
    fields["shared"] = BM25Index.build(
        [w + b + _word_pairs(precise, n) for w, b, n in zip(words, bigrams, norms, strict=True)], ids
    )
    doc_tokens: list[list[str]] = [[] for _ in names]
    doc_precise: list[list[str]] = [[] for _ in names]
    for row, d in enumerate(doc_index):
        doc_tokens[d] += words[row] + bigrams[row]
        doc_precise[d] += _precise_words(precise, norms[row])
    fields["doc"] = BM25Index.build(doc_tokens)
    fields["doc-precise"] = BM25Index.build(doc_precise)
    fields["no-question-words"] = stored_lexical
    current = [w + g for w, g in zip(words, bigrams, strict=True)]  # the stored field's tokens
    for k1, b in BM25_SETTINGS:
        fields[f"bm25 k1={k1} b={b}"] = BM25Index.build(current, ids, k1, b)
    tokenize_seconds = time.perf_counter() - started
    query_texts = [text for _, text in collection.queries]
    centroids = np.zeros((len(names), e5_vectors.shape[1]))
    np.add.at(centroids, doc_index, e5_vectors)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    windows = e5_vectors.astype(np.float64).copy()
    same_prev = np.r_[False, doc_index[1:] == doc_index[:-1]]  # rows are in passage-id order
    windows[same_prev] += e5_vectors[:-1][same_prev[1:]]
    same_next = np.r_[doc_index[:-1] == doc_index[1:], False]
    windows[same_next] += e5_vectors[1:][same_next[:-1]]
    windows /= np.linalg.norm(windows, axis=1, keepdims=True)
    corpus = Corpus(
        collection.name, collection.queries, collection.relevant, texts, doc, doc_index, len(names),
        e5_vectors, use_vectors, np.vstack(sentence_rows), owner, analyzer, fields, centroids, windows,
        _cached_vectors(cache, reader.model_id, query_texts),
        _cached_vectors(cache, reader.manifest["rescorer"]["id"], query_texts),
        cache, reader.model_id,
    )
    corpus.seconds["tokenize_extra_fields"] = round(tokenize_seconds, 2)
    reader.close()
    return corpus


def query_terms(corpus: Corpus, name: str, text: str) -> list[str]:
    """The query's terms for lexical field ``name`` (same tokenization as the field's passages)."""
    a, norm = corpus.analyzer, normalize(text)
    if name in ("cur", "doc", "shared:cur") or name.startswith("bm25 "):
        return a.terms(norm)
    if name == "no-question-words":
        return without_question_words(a, norm)
    if name in ("shared:all", "shared:all-covered"):
        return a.terms(norm) + query_terms(corpus, "pairs", text)
    if name == "shared:pairs":
        name = "pairs"
    if name == "doc-precise":
        name = "precise"
    if name == "words":
        return [w for w, _, _ in a.normalized_words(norm)]
    if name == "bigrams":
        return [t for t, _, _ in a.bigrams(norm)]
    if name == "unigrams":
        return _unigrams(a, norm)
    tokenizer = _PRECISE.setdefault("t", jieba.Tokenizer())
    if name == "pairs":
        return _word_pairs(tokenizer, norm)
    if name == "windows":
        return _window_pairs(tokenizer, norm)
    words = _precise_words(tokenizer, norm)
    return words + [t for t, _, _ in a.bigrams(norm)] if name == "precise+bigrams" else words


_PRECISE: dict[str, jieba.Tokenizer] = {}

#: Caps (characters) on the opening sentence of the in-context view: about a title's length.
OPENING_CAPS = (48, 24)

#: BM25 (k1, b) settings of section f: Anserini's defaults, then one step around souyi's (1.2, 0.75).
BM25_SETTINGS = ((0.9, 0.4), (1.2, 0.3), (1.2, 0.9), (1.5, 0.75), (0.9, 0.75))

#: Interrogatives (folded to simplified) and English wh-words: a question's form, not its content.
QUESTION_WORDS = frozenset(
    "谁 什么 啥 哪 哪儿 哪里 哪个 哪些 哪种 哪位 哪家 哪年 哪天 哪一 哪一个 多少 几 几个 几种 几次 几年 "
    "怎么 怎样 怎么样 如何 为什么 为何 何时 何处 何地 何人 何种 何为 何以 是否 吗 呢 "
    "what which who whom whose when where why how".split()
)


def without_question_words(a: Analyzer, norm: str) -> list[str]:
    """The query's terms less its question words (哪座 too: 哪 + a measure word) and the bigrams
    that overlap one ("2:个郡" of 哪个郡); all terms if nothing else is left."""
    words = a.normalized_words(norm)
    masked = [(s, e) for w, s, e in words if w in QUESTION_WORDS or (w.startswith("哪") and len(w) <= 3)]
    kept = [w for w, s, e in words if not any(ms <= s and e <= me for ms, me in masked)]
    kept += [t for t, s, e in a.bigrams(norm) if not any(s < me and ms < e for ms, me in masked)]
    return kept or a.terms(norm)


def _sentence_texts(text: str) -> list[str]:
    return [text[s:e] for s, e in sentences(text) or [(0, len(text))]]


def _first_rows(doc: np.ndarray) -> dict[int, int]:
    """Document number → row of its first passage (rows are in passage order)."""
    return {int(d): row for row, d in reversed(list(enumerate(doc)))}


def _opening(texts: list[str], doc: np.ndarray, cap: int | None = None) -> list[str | None]:
    """Each passage after its document's opening sentence (at most ``cap`` characters of it);
    None for a document's first passage, which is its own context."""
    first = _first_rows(doc)
    return [None if first[int(d)] == r else _sentence_texts(texts[first[int(d)]])[0][:cap] + "\n" + t
            for r, (t, d) in enumerate(zip(texts, doc, strict=True))]


@cache
def _embedder_on(model_id: str, backend: str, precision: str) -> Embedder:
    """The model on one embedding backend, its queries at ``precision`` (both read when an embedder
    is loaded, so they are the cache key), loaded once per process: each view and query set would
    otherwise load the model again.  ``precision`` must be the ``$SOUYI_QUERY_PRECISION`` in force."""
    saved = os.environ.get(RUNTIME_ENV)
    os.environ[RUNTIME_ENV] = backend
    try:
        return load_embedder(model_id)
    finally:
        if saved is None:
            del os.environ[RUNTIME_ENV]
        else:
            os.environ[RUNTIME_ENV] = saved


def view_cost(corpus: Corpus, sample: int, rounds: int = 3) -> dict:
    """What the opening-sentence context view adds at indexing, on the first ``sample`` passages:
    seconds to embed them as the index does (onnx-fp32), and their in-context texts (whole opening
    sentence, or cut to OPENING_CAPS characters) with fp32 and with int8 weights; a document's
    first passage needs no second text. Rounds interleave every part; medians, and each part's
    share of the index's own embedding time."""
    texts, doc = corpus.texts[:sample], corpus.doc_index[:sample]
    parts = {"plain": texts} | {
        f"opening{'' if cap is None else f' cut to {cap}'}": [t for t in _opening(texts, doc, cap) if t is not None]
        for cap in (None, *OPENING_CAPS)
    }
    precision = os.environ.get(QUERY_PRECISION_ENV, "")
    embedders = {backend: _embedder_on(corpus.model_id, backend, precision) for backend in ("onnx-fp32", "onnx-int8")}
    for embedder in embedders.values():
        embedder.encode_passages(texts[:8])  # sessions loaded before timing
    times: dict[str, list[float]] = {}
    for _ in range(rounds):
        for backend, embedder in embedders.items():
            for name, items in parts.items():
                started = time.perf_counter()
                embedder.encode_passages(items)
                times.setdefault(f"{name}, {backend}", []).append(time.perf_counter() - started)
    medians = {name: float(np.median(t)) for name, t in times.items()}
    base = medians["plain, onnx-fp32"]
    return {"passages": len(texts), "in_context_texts": len(parts["opening"]), "rounds": rounds} | {
        name: {"seconds": round(m, 2), "share_of_index_embedding": round(m / base, 3)} for name, m in medians.items()
    }


def e5_view(c: Corpus, name: str) -> np.ndarray:
    """e5 passage vectors of another view of each passage, embedded once and cached:

    * ``plain``: the passage itself, as the index embeds it (the embedding backend in force, so
      ``SOUYI_EMBED_BACKEND=onnx-int8`` shows what an index of int8-embedded passages would rank);
    * ``sentences``: every sentence (rows follow ``c.views["sentence-owner"]``);
    * ``opening``: the passage after its document's opening sentence (a first passage as it is);
      ``opening:<n>``: the same with at most n characters of the opening sentence;
    * ``previous``: the passage after the sentence before it in the same document;
    * ``neighbours``: the sentence before, the passage, the sentence after.
    """
    if name in c.views:
        return c.views[name]
    texts, doc = c.texts, c.doc_index
    same_prev = np.r_[False, doc[1:] == doc[:-1]]
    same_next = np.r_[doc[:-1] == doc[1:], False]
    if name == "plain":
        views = list(texts)
    elif name == "sentences":
        per = [_sentence_texts(t) for t in texts]
        c.views["sentence-owner"] = np.repeat(np.arange(len(texts)), [len(x) for x in per])
        views = [x for rows in per for x in rows]
    elif name.startswith("opening"):  # "opening" or "opening:<cap>"
        cap = int(name.split(":")[1]) if ":" in name else None
        views = [t if v is None else v for t, v in zip(texts, _opening(texts, doc, cap), strict=True)]
    elif name == "previous":
        views = [(_sentence_texts(texts[r - 1])[-1] if same_prev[r] else "") + t for r, t in enumerate(texts)]
    else:
        views = [(_sentence_texts(texts[r - 1])[-1] if same_prev[r] else "") + t
                 + (_sentence_texts(texts[r + 1])[0] if same_next[r] else "") for r, t in enumerate(texts)]
    c.views[name] = _cached_vectors(c.cache, c.model_id, views, kind="passages")
    return c.views[name]


def weighted_scores(bm25: BM25Index, weights: dict[str, float]) -> np.ndarray:
    """BM25 with a weight per query term (RM3); ``weights`` of 1 give :meth:`BM25Index.scores`."""
    out = np.zeros(bm25.n_rows, dtype=np.float64)
    for term, w in weights.items():
        t = bm25.terms.get(term)
        if t is None or w == 0:
            continue
        s = slice(bm25.offsets[t], bm25.offsets[t + 1])
        out += np.bincount(bm25.rows[s], weights=bm25.impacts[s] * w, minlength=bm25.n_rows)
    return out


def top_positive(scores: np.ndarray, n: int) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")[:n]
    return order[scores[order] > 0]


# ----------------------------------------------------------------------------------------------
# one query: lazily computed signals


@dataclass(frozen=True)
class Lex:
    """One lexical list over all passages, its coverage and its top rows."""

    scores: np.ndarray
    coverage: float
    top: np.ndarray


class Query:
    def __init__(self, corpus: Corpus, i: int) -> None:
        self.c = corpus
        self.i = i
        self.qid, self.text = corpus.queries[i]
        self.e5_q = corpus.e5_queries[i]
        self.use_q = corpus.use_queries[i]

    @cached_property
    def e5(self) -> np.ndarray:
        return self.c.e5_vectors @ self.e5_q

    @cached_property
    def use(self) -> np.ndarray:
        return self.c.use_vectors @ self.use_q

    def sentence_of(self, use_q: np.ndarray) -> np.ndarray:
        best = np.full(len(self.c.texts), -1.0)
        np.maximum.at(best, self.c.owner, self.c.sentence_matrix @ use_q)
        return best

    @cached_property
    def sentence(self) -> np.ndarray:
        return self.sentence_of(self.use_q)

    @cached_property
    def share(self) -> float:
        nearest = np.argsort(-self.e5, kind="stable")[:SCRIPT_SAMPLE]
        return fusion.rescorer_share(self.text, [self.c.texts[i] for i in nearest])

    _lex_cache: dict

    def lex(self, name: str, depth: int = CANDIDATES) -> Lex:
        cache = self.__dict__.setdefault("_lex_cache", {})
        if (name, depth) not in cache:
            bm25 = self.c.fields[name.split(":")[0]]
            terms = query_terms(self.c, name, self.text)
            scores = bm25.scores(terms).astype(np.float64)
            if name.startswith("doc"):  # document rows -> every passage of the document
                scores = scores[self.c.doc_index]
            top = top_positive(scores, depth)
            cover = 0.0
            if len(top):
                row = int(self.c.doc_index[top[0]]) if name.startswith("doc") else int(top[0])
                if name == "shared:all":  # as the product would: the top passage of all terms, coverage
                    terms = query_terms(self.c, "shared:cur", self.text)  # of the non-pair terms only
                cover = fusion.coverage(bm25.term_idf(terms), bm25.matched_terms(terms, row))
            cache[(name, depth)] = Lex(scores, cover, top)
        return cache[(name, depth)]

    def pool(self, dense: np.ndarray, lexicals: list[Lex], depth: int = CANDIDATES) -> np.ndarray:
        parts = [np.argsort(-dense, kind="stable")[:depth]] + [lx.top[:depth] for lx in lexicals]
        return np.unique(np.concatenate(parts))

    @cached_property
    def default(self) -> tuple[np.ndarray, np.ndarray]:
        """(pool, fused score) of the searcher's rule."""
        return fuse(self)


def fuse(
    q: Query,
    fields: tuple[tuple[str, float], ...] = (("cur", 1.0),),
    e5: np.ndarray | None = None,
    use: np.ndarray | None = None,
    sentence: np.ndarray | None = None,
    lex_override: np.ndarray | None = None,
    max_weight: float = fusion.MAX_LEXICAL_WEIGHT,
    depth: int = CANDIDATES,
    norm: Callable[[np.ndarray], np.ndarray] = mm,
    coverage_from: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The default rule with its inputs swappable; returns (pool, fused score of each pool row)."""
    e5 = q.e5 if e5 is None else e5
    use = q.use if use is None else use
    sentence = q.sentence if sentence is None else sentence
    lexes = [(q.lex(name, depth), w) for name, w in fields]
    pool = q.pool(e5, [lx for lx, _ in lexes], depth)
    total = sum(w for _, w in fields)
    if lex_override is not None:
        lexical = lex_override[pool]
    elif len(fields) == 1:
        lexical = lexes[0][0].scores[pool]
    else:
        lexical = sum(w * norm(lx.scores[pool]) for lx, w in lexes) / total
    if coverage_from is not None:
        cover = q.lex(coverage_from, depth).coverage
    else:
        cover = sum(w * lx.coverage for lx, w in lexes) / total
    any_match = any(len(lx.top) for lx, _ in lexes)
    weight = min(max_weight * min(max(cover, 0.0), 1.0), 1.0) if any_match else 0.0
    if norm is mm:
        semantic = fusion.semantic([e5[pool], use[pool], sentence[pool]], q.share)
        return pool, fusion.combine(semantic, lexical, weight)
    share = q.share
    semantic = (1 - share) * norm(e5[pool]) + share / 2 * (norm(use[pool]) + norm(sentence[pool]))
    return pool, (1 - weight) * norm(semantic) + weight * norm(lexical)


def zscore(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    sd = x.std()
    return (x - x.mean()) / sd if sd > 1e-12 else np.zeros_like(x)


# ----------------------------------------------------------------------------------------------
# variants: each maps a query to (pool, scores)

Variant = Callable[[Query], tuple[np.ndarray, np.ndarray]]


def v_dense(q: Query) -> tuple[np.ndarray, np.ndarray]:
    """The semantic score alone (e5, plus the rescorer by script gap), over every passage."""
    pool = np.arange(len(q.c.texts))
    return pool, fusion.semantic([q.e5, q.use, q.sentence], q.share)


def v_lexical(name: str) -> Variant:
    def rule(q: Query) -> tuple[np.ndarray, np.ndarray]:
        return np.arange(len(q.c.texts)), q.lex(name).scores

    return rule


def v_fields(fields: tuple[tuple[str, float], ...], coverage_from: str | None = None) -> Variant:
    return lambda q: fuse(q, fields, coverage_from=coverage_from)


def v_rocchio(alpha: float, k: int = 3, use_too: bool = False) -> Variant:
    """Rocchio on the query vectors: q + α·mean(vectors of the top-k fused passages), then fuse again."""

    def rule(q: Query) -> tuple[np.ndarray, np.ndarray]:
        pool, score = q.default
        top = pool[np.argsort(-score, kind="stable")[:k]]
        e5_q = q.e5_q + alpha * q.c.e5_vectors[top].mean(axis=0)
        e5_q /= np.linalg.norm(e5_q)
        use, sentence = None, None
        if use_too:
            use_q = q.use_q + alpha * q.c.use_vectors[top].mean(axis=0)
            use_q /= np.linalg.norm(use_q)
            use, sentence = q.c.use_vectors @ use_q, q.sentence_of(use_q)
        return fuse(q, e5=q.c.e5_vectors @ e5_q, use=use, sentence=sentence)

    return rule


def v_rm3(lam: float, k: int = 3, m: int = 10) -> Variant:
    """RM3-style expansion: feedback terms from the top-k fused passages (P(t|D) weighted by the
    fused score, the m best by weight × IDF), interpolated with the original terms (1 − λ : λ)."""

    def rule(q: Query) -> tuple[np.ndarray, np.ndarray]:
        pool, score = q.default
        order = np.argsort(-score, kind="stable")[:k]
        bm25 = q.c.fields["cur"]
        relevance: Counter[str] = Counter()
        for row, s in zip(pool[order], score[order], strict=True):
            tokens = q.c.analyzer.tokens(q.c.texts[row])
            for t, n in Counter(tokens).items():
                relevance[t] += max(float(s), 0.0) * n / len(tokens)
        original = set(query_terms(q.c, "cur", q.text))
        if not original:
            return pool, score
        idf = bm25.term_idf(relevance)
        chosen = sorted(relevance, key=lambda t: -relevance[t] * idf[t])[:m]
        mass = sum(relevance[t] for t in chosen) or 1.0
        weights = {t: (1 - lam) / len(original) for t in original}
        for t in chosen:
            weights[t] = weights.get(t, 0.0) + lam * relevance[t] / mass
        expanded = weighted_scores(bm25, weights)
        return fuse(q, lex_override=expanded)

    return rule


def _doc_max(values: np.ndarray, docs: np.ndarray, n_docs: int) -> np.ndarray:
    best = np.full(n_docs, -np.inf)
    np.maximum.at(best, docs, values)
    return best[docs]


def v_doc_prior(beta: float) -> Variant:
    """Default + β × the best fused score of the passage's document (the passage itself included)."""

    def rule(q: Query) -> tuple[np.ndarray, np.ndarray]:
        pool, score = q.default
        return pool, score + beta * _doc_max(score, q.c.doc_index[pool], q.c.n_docs)

    return rule


def v_doc_second(beta: float) -> Variant:
    """Default + β × the best fused score of *another* passage of the document (in the pool)."""

    def rule(q: Query) -> tuple[np.ndarray, np.ndarray]:
        pool, score = q.default
        docs = q.c.doc_index[pool]
        best = _doc_max(score, docs, q.c.n_docs)
        # second best of each document: mask each document's best once
        order = np.lexsort((-score, docs))
        first = np.ones(len(pool), bool)
        first[1:] = docs[order][1:] != docs[order][:-1]
        masked = score.copy()
        masked[order[first]] = -np.inf
        second = _doc_max(masked, docs, q.c.n_docs)
        other = np.where(score >= best, second, best)  # for the best passage: the second; else: the best
        other = np.where(np.isfinite(other), other, score.min())
        return pool, score + beta * other

    return rule


def v_doc_signals(beta: float) -> Variant:
    """Default + β × the default rule applied to the document-wise maxima of each signal (the best
    semantic and the best lexical score of the passage's document, each min-max normalised)."""

    def rule(q: Query) -> tuple[np.ndarray, np.ndarray]:
        pool, score = q.default
        docs = q.c.doc_index[pool]
        semantic = fusion.semantic([q.e5[pool], q.use[pool], q.sentence[pool]], q.share)
        lx = q.lex("cur")
        weight = fusion.lexical_weight(lx.coverage) if len(lx.top) else 0.0
        doc_score = fusion.combine(_doc_max(mm(semantic), docs, q.c.n_docs),
                                   _doc_max(mm(lx.scores[pool]), docs, q.c.n_docs), weight)
        return pool, score + beta * doc_score

    return rule


def v_doc_bm25(gamma: float, doc_coverage: bool = False, field: str = "cur") -> Variant:
    """Lexical side = (1 − γ)·BM25(passage) + γ·BM25(whole document), each min-max normalised."""
    doc = "doc" if field == "cur" else f"doc-{field}"
    fields = ((field, 1 - gamma), (doc, gamma))
    return lambda q: fuse(q, fields, coverage_from=doc if doc_coverage else field)


def v_doc_centroid(delta: float) -> Variant:
    """e5 side = (1 − δ)·cos(q, passage) + δ·cos(q, normalised mean of the document's passage vectors)."""

    def rule(q: Query) -> tuple[np.ndarray, np.ndarray]:
        doc_cos = (q.c.doc_centroids @ q.e5_q)[q.c.doc_index]
        return fuse(q, e5=(1 - delta) * q.e5 + delta * doc_cos)

    return rule


def v_neighbour_window(delta: float) -> Variant:
    """e5 side = (1 − δ)·cos(q, passage) + δ·cos(q, normalised mean of the passage and its neighbours)."""

    def rule(q: Query) -> tuple[np.ndarray, np.ndarray]:
        return fuse(q, e5=(1 - delta) * q.e5 + delta * (q.c.windows @ q.e5_q))

    return rule


def v_gap_window(delta: float, fields: tuple[tuple[str, float], ...] = (("cur", 1.0),),
                 coverage_from: str | None = None) -> Variant:
    """The neighbour-window e5 smoothing with δ scaled by the script gap (as the rescorer's share):
    a cross-script question gets δ, a same-script one none."""

    def rule(q: Query) -> tuple[np.ndarray, np.ndarray]:
        d = delta * q.share / fusion.MAX_RESCORER_SHARE
        return fuse(q, fields, e5=(1 - d) * q.e5 + d * (q.c.windows @ q.e5_q), coverage_from=coverage_from)

    return rule


def v_pairs_centroid(lam: float, delta: float) -> Variant:
    def rule(q: Query) -> tuple[np.ndarray, np.ndarray]:
        doc_cos = (q.c.doc_centroids @ q.e5_q)[q.c.doc_index]
        return fuse(q, (("cur", 1.0), ("pairs", lam)), e5=(1 - delta) * q.e5 + delta * doc_cos, coverage_from="cur")

    return rule


def v_best_sentence(lam: float | None) -> Variant:
    """e5 side from the best-matching sentence's e5 vector: max(passage, sentence) for ``None``,
    else (1 − λ)·passage + λ·sentence."""

    def rule(q: Query) -> tuple[np.ndarray, np.ndarray]:
        vectors = e5_view(q.c, "sentences")
        best = np.full(len(q.c.texts), -1.0)
        np.maximum.at(best, q.c.views["sentence-owner"], vectors @ q.e5_q)
        return fuse(q, e5=np.maximum(q.e5, best) if lam is None else (1 - lam) * q.e5 + lam * best)

    return rule


def v_context(view: str, delta: float | None) -> Variant:
    """e5 side from the passage embedded with context (:func:`e5_view`): max with the plain
    passage's cosine for ``None``, else (1 − δ)·plain + δ·in context."""

    def rule(q: Query) -> tuple[np.ndarray, np.ndarray]:
        cos = e5_view(q.c, view) @ q.e5_q
        return fuse(q, e5=np.maximum(q.e5, cos) if delta is None else (1 - delta) * q.e5 + delta * cos)

    return rule


def v_embedded_again(context: bool) -> Variant:
    """Every passage embedded again with the backend in force (:func:`e5_view` ``plain``), alone or
    with the opening-sentence context view (max), candidates included."""

    def rule(q: Query) -> tuple[np.ndarray, np.ndarray]:
        cos = e5_view(q.c, "plain") @ q.e5_q
        return fuse(q, e5=np.maximum(cos, e5_view(q.c, "opening") @ q.e5_q) if context else cos)

    return rule


def v_norm(norm: Callable[[np.ndarray], np.ndarray]) -> Variant:
    return lambda q: fuse(q, norm=norm)


def v_depth(depth: int) -> Variant:
    return lambda q: fuse(q, depth=depth)


#: The proximity lever in the form recommended for the product: ordered pairs of adjacent jieba
#: precise-mode words added as terms to the one lexical field; one BM25 over all query terms;
#: coverage (hence the lexical weight) over the non-pair terms only.
RECOMMENDED = "e. RECOMMENDED word-pair terms in the one lexical field, coverage of non-pair terms"

VARIANTS: dict[str, Variant] = {
    "default (searcher's rule)": lambda q: q.default,
    "dense (semantic) alone": v_dense,
    "lexical alone: current field (jieba search words + bigrams)": v_lexical("cur"),
    "lexical alone: search-mode words": v_lexical("words"),
    "lexical alone: precise-mode words": v_lexical("precise"),
    "lexical alone: precise words + bigrams": v_lexical("precise+bigrams"),
    "lexical alone: CJK bigrams": v_lexical("bigrams"),
    "lexical alone: CJK unigrams": v_lexical("unigrams"),
    "lexical alone: adjacent word pairs": v_lexical("pairs"),
    "lexical alone: unordered window-3 pairs": v_lexical("windows"),
    "lexical alone: whole-document BM25": v_lexical("doc"),
    # a: character n-gram fields (the stored field already holds words + bigrams in one field)
    "a. search words + bigrams as two fields (1:1)": v_fields((("words", 1.0), ("bigrams", 1.0))),
    "a. current + bigram field 0.25": v_fields((("cur", 1.0), ("bigrams", 0.25))),
    "a. current + bigram field 0.5": v_fields((("cur", 1.0), ("bigrams", 0.5))),
    "a. current + bigram field 1.0": v_fields((("cur", 1.0), ("bigrams", 1.0))),
    "a. current + unigram field 0.25": v_fields((("cur", 1.0), ("unigrams", 0.25))),
    "a. current + unigram field 0.5": v_fields((("cur", 1.0), ("unigrams", 0.5))),
    "a. current + unigram field 1.0": v_fields((("cur", 1.0), ("unigrams", 1.0))),
    "a. current + bigram 0.5 + unigram 0.5": v_fields((("cur", 1.0), ("bigrams", 0.5), ("unigrams", 0.5))),
    # b: segmentation mode
    "b. search words only (no bigrams) replaces current": v_fields((("words", 1.0),)),
    "b. precise words only replaces current": v_fields((("precise", 1.0),)),
    "b. precise words + bigrams replaces current": v_fields((("precise+bigrams", 1.0),)),
    # c: pseudo-relevance feedback
    "c. Rocchio e5 α=0.1": v_rocchio(0.1),
    "c. Rocchio e5 α=0.25": v_rocchio(0.25),
    "c. Rocchio e5 α=0.5": v_rocchio(0.5),
    "c. Rocchio e5 α=1.0": v_rocchio(1.0),
    "c. Rocchio e5+USE α=0.25": v_rocchio(0.25, use_too=True),
    "c. Rocchio e5+USE α=0.5": v_rocchio(0.5, use_too=True),
    "c. RM3 λ=0.1": v_rm3(0.1),
    "c. RM3 λ=0.2": v_rm3(0.2),
    "c. RM3 λ=0.3": v_rm3(0.3),
    "c. RM3 λ=0.5": v_rm3(0.5),
    # d: document-level evidence
    "d. + β·best fused passage of the document β=0.5 (no-op for document ranks)": v_doc_prior(0.5),
    "d. + β·best other passage β=0.05": v_doc_second(0.05),
    "d. + β·best other passage β=0.1": v_doc_second(0.1),
    "d. + β·best other passage β=0.2": v_doc_second(0.2),
    "d. + β·fused per-signal document maxima β=0.1": v_doc_signals(0.1),
    "d. + β·fused per-signal document maxima β=0.25": v_doc_signals(0.25),
    "d. + β·fused per-signal document maxima β=0.5": v_doc_signals(0.5),
    "d. + β·fused per-signal document maxima β=1.0": v_doc_signals(1.0),
    "d. lexical (1-γ)·passage + γ·document BM25 γ=0.1": v_doc_bm25(0.1),
    "d. lexical (1-γ)·passage + γ·document BM25 γ=0.2": v_doc_bm25(0.2),
    "d. lexical (1-γ)·passage + γ·document BM25 γ=0.3": v_doc_bm25(0.3),
    "d. lexical (1-γ)·passage + γ·document BM25 γ=0.5": v_doc_bm25(0.5),
    "d. same γ=0.3, coverage of the best document": v_doc_bm25(0.3, doc_coverage=True),
    "d. precise words, (1-γ)·passage + γ·document BM25 γ=0.1": v_doc_bm25(0.1, field="precise"),
    "d. precise words, (1-γ)·passage + γ·document BM25 γ=0.2": v_doc_bm25(0.2, field="precise"),
    "d. precise words, (1-γ)·passage + γ·document BM25 γ=0.3": v_doc_bm25(0.3, field="precise"),
    "d. precise words, (1-γ)·passage + γ·document BM25 γ=0.5": v_doc_bm25(0.5, field="precise"),
    "d. e5 (1-δ)·passage + δ·document centroid δ=0.1": v_doc_centroid(0.1),
    "d. e5 (1-δ)·passage + δ·document centroid δ=0.2": v_doc_centroid(0.2),
    "d. e5 (1-δ)·passage + δ·document centroid δ=0.3": v_doc_centroid(0.3),
    "d. e5 (1-δ)·passage + δ·passage with its neighbours δ=0.1": v_neighbour_window(0.1),
    "d. e5 (1-δ)·passage + δ·passage with its neighbours δ=0.2": v_neighbour_window(0.2),
    "d. e5 (1-δ)·passage + δ·passage with its neighbours δ=0.3": v_neighbour_window(0.3),
    "d. same, δ=0.3 × script gap": v_gap_window(0.3),
    # e: from the misses: term proximity (ordered adjacent word pairs, unordered window pairs)
    "e. current + word-pair field 0.25": v_fields((("cur", 1.0), ("pairs", 0.25)), coverage_from="cur"),
    "e. current + word-pair field 0.5": v_fields((("cur", 1.0), ("pairs", 0.5)), coverage_from="cur"),
    "e. current + word-pair field 1.0": v_fields((("cur", 1.0), ("pairs", 1.0)), coverage_from="cur"),
    "e. current + word-pair field 1.5": v_fields((("cur", 1.0), ("pairs", 1.5)), coverage_from="cur"),
    "e. current + word-pair field 2.0": v_fields((("cur", 1.0), ("pairs", 2.0)), coverage_from="cur"),
    "e. current + unordered window-3 pair field 0.5": v_fields((("cur", 1.0), ("windows", 0.5)), coverage_from="cur"),
    "e. current + unordered window-3 pair field 1.0": v_fields((("cur", 1.0), ("windows", 1.0)), coverage_from="cur"),
    "e. current + word pairs 0.5 + window pairs 0.5": v_fields((("cur", 1.0), ("pairs", 0.5), ("windows", 0.5)),
                                                               coverage_from="cur"),
    RECOMMENDED: v_fields((("shared:all", 1.0),)),
    "e. same, coverage of all terms (pairs included)": v_fields((("shared:all-covered", 1.0),)),
    "e. same, coverage of non-pair terms from their own best passage":
        v_fields((("shared:all", 1.0),), coverage_from="shared:cur"),
    "e. word-pair terms in the one lexical field, scored as a second list 0.5":
        v_fields((("shared:cur", 1.0), ("shared:pairs", 0.5)), coverage_from="shared:cur"),
    "e. word-pair terms in the one lexical field, scored as a second list 1.0":
        v_fields((("shared:cur", 1.0), ("shared:pairs", 1.0)), coverage_from="shared:cur"),
    "e. z-score instead of min-max": v_norm(zscore),
    "e. candidate depth 50": v_depth(50),
    "e. candidate depth 200": v_depth(200),
    # combinations of two levers (not tuned further)
    "b+e. precise words + word-pair field 0.5": v_fields((("precise", 1.0), ("pairs", 0.5)), coverage_from="precise"),
    "b+e. precise words + word-pair field 1.0": v_fields((("precise", 1.0), ("pairs", 1.0)), coverage_from="precise"),
    "d+e. current 0.7 + word pairs 0.7 + document BM25 0.3": v_fields((("cur", 0.7), ("pairs", 0.7), ("doc", 0.3)),
                                                                      coverage_from="cur"),
    "d+e. word pairs 0.5 + document centroid δ=0.1": v_pairs_centroid(0.5, 0.1),
    "d+e. word pairs 0.5 + document centroid δ=0.2": v_pairs_centroid(0.5, 0.2),
    "d+e. word pairs 1.0 + document centroid δ=0.1": v_pairs_centroid(1.0, 0.1),
    "d+e. recommended + neighbour window δ=0.3 × script gap":
        v_gap_window(0.3, (("shared:all", 1.0),)),
    # f: finer and wider e5 views, the query's form, BM25's parameters
    "f. e5 best sentence, max(passage, sentence)": v_best_sentence(None),
    "f. e5 best sentence, λ=0.25": v_best_sentence(0.25),
    "f. e5 best sentence, λ=0.5": v_best_sentence(0.5),
    "f. e5 in context: document's opening sentence + passage, max": v_context("opening", None),
    "f. e5 in context: document's opening sentence + passage, δ=0.5": v_context("opening", 0.5),
    **{f"f. e5 in context: opening sentence cut to {cap} characters + passage, max": v_context(f"opening:{cap}", None)
       for cap in OPENING_CAPS},
    "f. e5 in context: sentence before + passage, max": v_context("previous", None),
    "f. e5 in context: sentence before + passage, δ=0.5": v_context("previous", 0.5),
    "f. e5 in context: sentence before + passage + sentence after, max": v_context("neighbours", None),
    "f. e5 in context: sentence before + passage + sentence after, δ=0.3": v_context("neighbours", 0.3),
    "f. passages embedded again (backend in force)": v_embedded_again(False),
    "f. passages embedded again + opening-sentence context, max": v_embedded_again(True),
    "f. question words left out of the lexical query": v_fields((("no-question-words", 1.0),)),
    **{f"f. BM25 k1={k1} b={b}": v_fields(((f"bm25 k1={k1} b={b}", 1.0),)) for k1, b in BM25_SETTINGS},
}


# ----------------------------------------------------------------------------------------------


def reciprocal_rank(corpus: Corpus, q: Query, pool: np.ndarray, score: np.ndarray) -> tuple[float, int | None]:
    order = pool[np.argsort(-score, kind="stable")]
    ranking = list(dict.fromkeys(corpus.doc[order[:60]]))[:10]
    gold = corpus.relevant[q.qid]
    rank = next((r for r, d in enumerate(ranking, start=1) if d in gold), None)
    return (1.0 / rank if rank else 0.0), rank


def measure(corpus: Corpus, names: list[str], misses: Path | None) -> tuple[dict[str, float], dict[str, float]]:
    rr = {name: np.zeros(len(corpus.queries)) for name in names}
    seconds = dict.fromkeys(names, 0.0)
    records = []
    for i in range(len(corpus.queries)):
        q = Query(corpus, i)
        ranks = {}
        for name in names:
            started = time.perf_counter()
            pool, score = VARIANTS[name](q)
            seconds[name] += time.perf_counter() - started
            rr[name][i], ranks[name] = reciprocal_rank(corpus, q, pool, score)
        if misses is not None and ranks.get("default (searcher's rule)") != 1:
            records.append(_miss(corpus, q, ranks))
    if misses is not None:
        misses.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    n = len(corpus.queries)
    base = rr["default (searcher's rule)"]
    paired = {}
    for name, values in rr.items():
        diff = values - base
        paired[name] = {"better": int((diff > 1e-12).sum()), "worse": int((diff < -1e-12).sum()),
                        "se_of_delta": round(float(diff.std(ddof=1) / np.sqrt(n)), 4) if n > 1 else None}
    return ({k: round(float(v.mean()), 4) for k, v in rr.items()},
            {k: round(1000 * v / n, 3) for k, v in seconds.items()}, paired)


def _miss(corpus: Corpus, q: Query, ranks: dict[str, int | None]) -> dict:
    pool, score = q.default
    order = pool[np.argsort(-score, kind="stable")]
    gold = corpus.relevant[q.qid]
    gold_rows = [int(r) for r in order if corpus.doc[r] in gold]
    top = int(order[0])
    lx = q.lex("cur")
    at = {int(r): s for r, s in zip(pool, score, strict=True)}
    return {
        "query": q.text,
        "rank": {k: v for k, v in ranks.items()},
        "coverage": round(lx.coverage, 3),
        "share": round(q.share, 3),
        "top1": {"doc": str(corpus.doc[top]), "score": round(at[top], 4), "e5": round(float(q.e5[top]), 4),
                 "bm25": round(float(lx.scores[top]), 2), "text": corpus.texts[top]},
        "gold": [{"doc": str(corpus.doc[r]), "score": round(at[r], 4), "e5": round(float(q.e5[r]), 4),
                  "bm25": round(float(lx.scores[r]), 2), "text": corpus.texts[r]} for r in gold_rows[:3]],
        "gold_e5_rank": int((q.e5 > max(q.e5[gold_rows[0]], -1)).sum()) + 1 if gold_rows else None,
    }


def pair_cost(corpus: Corpus) -> dict:
    """What the recommended lever adds per query (tokenising the pairs, BM25 over more postings lists)
    and to the index (postings, vocabulary, tokenising every passage once more): p50/p99 in ms."""
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    cur, shared, texts = corpus.fields["cur"], corpus.fields["shared"], [t for _, t in corpus.queries]

    def timed(fn: Callable[[str], object], items: list[str]) -> list[float]:
        times = times_ms(fn, items)
        return [round(float(np.percentile(times, 50)), 3), round(float(np.percentile(times, 99)), 3)]

    def with_pairs(t: str) -> list[str]:
        return corpus.analyzer.tokens(t) + _word_pairs(tokenizer, normalize(t))

    return {
        "query_terms_now_ms": timed(corpus.analyzer.tokens, texts),
        "query_terms_with_pairs_ms": timed(with_pairs, texts),
        "bm25_top100_now_ms": timed(lambda t: cur.top(corpus.analyzer.tokens(t), CANDIDATES), texts),
        "bm25_top100_with_pairs_ms": timed(lambda t: shared.top(with_pairs(t), CANDIDATES), texts),
        "index_tokenize_per_passage_now_ms": timed(corpus.analyzer.tokens, corpus.texts),
        "index_tokenize_per_passage_with_pairs_ms": timed(with_pairs, corpus.texts),
        "postings_now": int(len(cur.rows)),
        "postings_with_pairs": int(len(shared.rows)),
        "terms_now": len(cur.terms),
        "terms_with_pairs": len(shared.terms),
    }


def main(argv: list[str] | None = None) -> None:
    parser = parser_for(__doc__)
    parser.add_argument("collections", nargs="+", type=Path)
    parser.add_argument("--index-root", type=Path, required=True,
                        help="indexes as bench.experiments.fusion_ablation keys them")
    parser.add_argument("--out", type=Path, required=True, help="JSON of MRR@10 per variant and collection")
    parser.add_argument("--only", nargs="*", help="variant names starting with one of these (default: all)")
    parser.add_argument("--misses", action="store_true", help="also write <out dir>/misses-<set>.jsonl")
    parser.add_argument("--cost", action="store_true",
                        help="only measure what the recommended word-pair terms cost (no MRR); JSON to --out")
    parser.add_argument("--view-cost", type=int, metavar="N",
                        help="only time embedding N passages plain and in context (fp32, int8); JSON to --out")
    parser.add_argument("--query-precision", choices=("fp32", "int8"), default="fp32",
                        help="e5 query weights (ONNX backends); fp32 gives the baseline of docs/quality.md")
    args = parser.parse_args(argv)
    command = " ".join(["python -m bench.experiments.lexical_variants", *(sys.argv[1:] if argv is None else argv)])
    os.environ[QUERY_PRECISION_ENV] = args.query_precision
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cache = args.out.parent / "cache"
    names = [n for n in VARIANTS if not args.only or any(n.startswith(p) for p in args.only)]
    if "default (searcher's rule)" not in names:
        names.insert(0, "default (searcher's rule)")
    if args.cost or args.view_cost:
        costs = {c.name: view_cost(load_corpus(c, args.index_root, cache), args.view_cost) if args.view_cost
                 else pair_cost(load_corpus(c, args.index_root, cache)) for c in args.collections}
        write_json(args.out, {"command": command, **costs})
        print(json.dumps(costs, indent=1))
        return
    table, cost, info, paired = {}, {}, {}, {}
    for c in args.collections:
        corpus = load_corpus(c, args.index_root, cache)
        misses = args.out.parent / f"misses-{corpus.name}.jsonl" if args.misses else None
        table[corpus.name], cost[corpus.name], paired[corpus.name] = measure(corpus, names, misses)
        info[corpus.name] = {"passages": len(corpus.texts), "documents": corpus.n_docs,
                             "queries": len(corpus.queries), **corpus.seconds}
        print(f"{corpus.name}: done", file=sys.stderr, flush=True)
    sets = list(table)
    base = {s: table[s]["default (searcher's rule)"] for s in sets}
    print(f"{'variant (MRR@10; Δ vs default; queries better/worse)':<66}" + "".join(f"{s:>30}" for s in sets))
    for name in names:
        cells = "".join(f"{table[s][name]:>10.4f} ({table[s][name] - base[s]:+.4f}) {paired[s][name]['better']:>3}/"
                        f"{paired[s][name]['worse']:<3}" for s in sets)
        print(f"{name:<66}{cells}")
    write_json(args.out, {
        "command": command,
        "query_precision": args.query_precision,
        "mrr@10": table,
        "delta_vs_default": {s: {n: round(table[s][n] - base[s], 4) for n in names} for s in sets},
        "paired_vs_default": paired,
        "offline_ms_per_query": cost,
        "collections": info,
    })


if __name__ == "__main__":
    main()

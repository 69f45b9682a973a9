"""Retrieval quality on labelled data: BEIR-layout loading, ranking metrics, and a
four-way comparison of how the store ranks passages.

A dataset directory holds ``corpus.jsonl`` (lines ``{"_id", "title", "text", ...}``),
``queries.jsonl`` (lines ``{"_id", "text", ...}``) and ``qrels.tsv`` (tab-separated,
header ``query-id corpus-id score``, integer graded scores; score > 0 is relevant).

Metrics follow trec_eval / BEIR: nDCG@10 with linear gain (the graded score) and
the ``1 / log2(rank + 1)`` discount, the ideal ranking built from the qrels;
recall@k = relevant passages in the top k / relevant passages; MRR@10 = 1 / rank
of the first relevant passage in the top 10 (0 if none). Queries without any
relevant passage in the qrels are not evaluated (as in BEIR).

``evaluate`` embeds the corpus once, keeps those float32 embeddings in memory only
as the exact baseline, ingests them into a store, embeds the queries once, and
ranks with six methods: ``float32`` (exact cosine over the float embeddings),
``int8`` (exhaustive asymmetric cosine over the stored int8 vectors), ``binary``
(Hamming distance of the codes only), ``binary+int8`` (the store's own search:
Hamming → asymmetric → int8 rerank), ``hybrid`` (the same with BM25 blended into the
int8 stage) and ``lexical`` (BM25 alone over every passage of the namespace: the hint
terms of a ``hints`` store, the exact words of a ``text`` store; ``memory.lexical``).

What it does not do: print, parse options or format tables (``cli/eval_cmds.py``),
or cache embeddings between runs (``benchmarks/eval_grid.py`` does).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashmem.memory.errors import ConfigError, InputError
from hashmem.memory.progress import progress_bar
from hashmem.memory.sources import json_object

METHODS: tuple[str, ...] = ("float32", "int8", "binary", "binary+int8", "hybrid", "lexical")
METRICS: tuple[str, ...] = ("ndcg@10", "recall@5", "recall@10", "recall@100", "mrr@10")
RETRIEVE = 100  # hits retrieved per query and method (for recall@100)
DEFAULT_NAMESPACE = "default"


# -- metrics (pure functions on one ranking) ------------------------------------------------


def ndcg_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k of one ranking with graded, linear gains (trec_eval's definition).

    Args:
        ranked: passage ids, best first (duplicates count once, at their first rank).
        qrels: passage id → graded relevance (<= 0 is not relevant).
        k: cut-off.

    Returns:
        DCG@k / IDCG@k in [0, 1]; 0.0 when no passage is relevant.
    """
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(r + 2) for r, g in enumerate(ideal))
    if idcg == 0:
        return 0.0
    dcg = sum(max(qrels.get(d, 0), 0) / math.log2(r + 2) for r, d in enumerate(_unique(ranked)[:k]))
    return dcg / idcg


def recall_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """Share of the relevant passages (score > 0) found in the top k; 0.0 when none is relevant."""
    relevant = {d for d, g in qrels.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(_unique(ranked)[:k])) / len(relevant)


def mrr_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """1 / rank of the first relevant passage (score > 0) in the top k, else 0.0."""
    for r, d in enumerate(_unique(ranked)[:k]):
        if qrels.get(d, 0) > 0:
            return 1.0 / (r + 1)
    return 0.0


def score_run(run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """Mean ``METRICS`` over the queries of ``qrels`` (a query missing from ``run`` scores 0)."""
    if not qrels:
        raise InputError("no judged queries to score: the qrels hold no relevant passage")
    sums = dict.fromkeys(METRICS, 0.0)
    for qid, rels in qrels.items():
        ranked = run.get(qid, [])
        sums["ndcg@10"] += ndcg_at_k(ranked, rels, 10)
        sums["recall@5"] += recall_at_k(ranked, rels, 5)  # LoCoMo's evidence recall@5
        sums["recall@10"] += recall_at_k(ranked, rels, 10)
        sums["recall@100"] += recall_at_k(ranked, rels, 100)
        sums["mrr@10"] += mrr_at_k(ranked, rels, 10)
    return {m: v / len(qrels) for m, v in sums.items()}


def _unique(ranked: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ranked))


# -- data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """A BEIR-layout dataset in memory.

    Attributes:
        name: the directory's name.
        doc_ids / doc_texts: the corpus in file order; a text is ``title + " " + text``
            when the title is not empty.
        doc_namespaces: each passage's namespace (all ``"default"`` without a namespace field).
        query_ids / query_texts / query_namespaces: the judged queries in file order.
        qrels: query id → {passage id → graded score}, only queries with a relevant passage.
        unjudged_queries: queries in queries.jsonl without any relevant passage (not evaluated).
        empty_passages: corpus lines with neither title nor text (not stored; a qrel may
            still name them, and then no method can find them).
    """

    name: str
    doc_ids: list[str]
    doc_texts: list[str]
    doc_namespaces: list[str]
    query_ids: list[str]
    query_texts: list[str]
    query_namespaces: list[str]
    qrels: dict[str, dict[str, int]]
    unjudged_queries: int = 0
    empty_passages: int = 0


def load_beir(path: str | os.PathLike, *, namespace_field: str | None = None) -> Dataset:
    """Read a BEIR-layout directory.

    Args:
        path: directory with corpus.jsonl, queries.jsonl and qrels.tsv.
        namespace_field: a query field naming the partition the query may search
            (LoCoMo: ``conv``). A passage's namespace is its own value of that
            field when it has one, else its id up to the first ``:``
            (``conv-26:D1:3`` → ``conv-26``).

    Returns:
        The Dataset.

    Raises:
        InputError: a missing file, a malformed line, an unknown id in the qrels,
            a corpus with no text at all, or a query without the namespace field.
    """
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"{root} is not a directory; give a BEIR-layout dataset directory "
                         "(corpus.jsonl, queries.jsonl, qrels.tsv)")
    files = {name: root / name for name in ("corpus.jsonl", "queries.jsonl", "qrels.tsv")}
    missing = [n for n, p in files.items() if not p.is_file()]
    if missing:
        raise InputError(f"{root} has no {', '.join(missing)}; a BEIR-layout dataset needs "
                         "corpus.jsonl, queries.jsonl and qrels.tsv")

    doc_ids, doc_texts, doc_ns, all_ids = [], [], [], []
    empty = 0
    for lineno, obj in _jsonl(files["corpus.jsonl"]):
        did = _field_id(obj, files["corpus.jsonl"], lineno)
        title = str(obj.get("title") or "").strip()
        body = str(obj.get("text") or "").strip()
        text = f"{title} {body}" if title and body else title or body
        all_ids.append(did)
        if not text:  # nothing to embed or store; it can never be retrieved
            empty += 1
            continue
        doc_ids.append(did)
        doc_texts.append(text)
        doc_ns.append(_doc_namespace(obj, did, namespace_field, files["corpus.jsonl"], lineno))
    if not doc_ids:
        raise InputError(f"{files['corpus.jsonl']} holds no passages")
    if len(set(all_ids)) != len(all_ids):
        raise InputError(f"{files['corpus.jsonl']} repeats passage ids; each _id must be unique")

    queries: dict[str, tuple[str, str]] = {}
    for lineno, obj in _jsonl(files["queries.jsonl"]):
        qid = _field_id(obj, files["queries.jsonl"], lineno)
        text = str(obj.get("text") or "").strip()
        if not text:
            raise InputError(f"{files['queries.jsonl']}:{lineno}: query {qid!r} has no text")
        ns = DEFAULT_NAMESPACE
        if namespace_field is not None:
            if obj.get(namespace_field) in (None, ""):
                raise InputError(f"{files['queries.jsonl']}:{lineno}: query {qid!r} has no "
                                 f"{namespace_field!r} field to choose its namespace")
            ns = str(obj[namespace_field])
        queries[qid] = (text, ns)

    qrels = _read_qrels(files["qrels.tsv"], set(all_ids), set(queries))
    judged = [q for q in queries if q in qrels]
    if not judged:
        raise InputError(f"{files['qrels.tsv']} judges none of the queries relevant to any passage")
    return Dataset(
        name=root.resolve().name,
        doc_ids=doc_ids,
        doc_texts=doc_texts,
        doc_namespaces=doc_ns,
        query_ids=judged,
        query_texts=[queries[q][0] for q in judged],
        query_namespaces=[queries[q][1] for q in judged],
        qrels={q: qrels[q] for q in judged},
        unjudged_queries=len(queries) - len(judged),
        empty_passages=empty,
    )


def _jsonl(path: Path):
    with open(path, encoding="utf-8") as f:
        try:
            for lineno, line in enumerate(f, 1):
                obj = json_object(path, lineno, line)
                if obj is not None:
                    yield lineno, obj
        except UnicodeDecodeError as e:
            raise InputError(f"{path}: invalid UTF-8 at byte {e.start} of a line") from e


def _field_id(obj: dict, path: Path, lineno: int) -> str:
    if obj.get("_id") in (None, ""):
        raise InputError(f"{path}:{lineno}: the line has no \"_id\"")
    return str(obj["_id"])


def _doc_namespace(obj: dict, did: str, field: str | None, path: Path, lineno: int) -> str:
    if field is None:
        return DEFAULT_NAMESPACE
    if obj.get(field) not in (None, ""):
        return str(obj[field])
    if ":" in did:
        return did.split(":", 1)[0]
    raise InputError(f"{path}:{lineno}: passage {did!r} has no {field!r} field and no "
                     "'namespace:' prefix in its id")


def _read_qrels(path: Path, doc_ids: set[str], query_ids: set[str]) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if lineno == 1 and parts[:2] == ["query-id", "corpus-id"]:
                continue
            if not line.strip():
                continue
            if len(parts) != 3:
                raise InputError(f"{path}:{lineno}: expected 3 tab-separated fields "
                                 f"(query-id, corpus-id, score), got {len(parts)}")
            qid, did, raw = parts
            try:
                score = int(float(raw))
            except ValueError as e:
                raise InputError(f"{path}:{lineno}: score {raw!r} is not a number") from e
            if qid not in query_ids:
                raise InputError(f"{path}:{lineno}: query {qid!r} is not in queries.jsonl")
            if did not in doc_ids:
                raise InputError(f"{path}:{lineno}: passage {did!r} is not in corpus.jsonl")
            if score > 0:
                qrels.setdefault(qid, {})[did] = score
    return qrels


# -- evaluation ------------------------------------------------------------------------------


def evaluate(
    dataset_dir: str | os.PathLike,
    *,
    store_path: str | os.PathLike | None = None,
    model: str | None = None,
    bits: int | None = None,
    method: str | None = None,
    candidates: int | None = None,
    namespace_field: str | None = None,
    hint_bytes: int | None = None,
    fidelity: str | None = None,
    lexical_weight: float | None = None,
    corpus_embeddings: np.ndarray | None = None,
    query_embeddings: np.ndarray | None = None,
    refit: bool = False,
    methods: Sequence[str] = METHODS,
    return_runs: bool = False,
    progress: bool | None = None,
) -> dict:
    """Compare float32, int8, binary, binary+int8, hybrid and lexical ranking on a BEIR-layout dataset.

    Args:
        dataset_dir: the dataset directory (see ``load_beir``).
        store_path: store to ingest into; a new or empty file. Default: a temporary
            store, deleted afterwards.
        model, bits, method, hint_bytes, fidelity: settings of the new store (store defaults
            when None); ``fidelity`` decides what ``hybrid`` and ``lexical`` score: hint terms
            (``hints``, ``llm``) or the exact words (``text``).
        lexical_weight: ``hybrid``'s BM25 share (default the store's, ``fusion.DEFAULT_LEXICAL_WEIGHT``).
        candidates: the store's int8 rerank depth C (default the store's, 100); the
            Hamming stage keeps ``search.ASYMMETRIC_FACTOR × C``. ``binary+int8`` returns at
            most ``max(C, 10)`` hits (``hybrid`` too), so recall@100 counts those.
        namespace_field: query field giving its namespace (LoCoMo: ``conv``); each
            passage is stored in its namespace and each query searches only its own,
            the float32 baseline included.
        corpus_embeddings: float32 [n_docs, dim] embeddings of ``Dataset.doc_texts``
            made with the store's model (skips embedding the corpus; for cached runs).
        query_embeddings: float32 [n_queries, dim] embeddings of ``Dataset.query_texts``.
        refit: refit the hasher on every stored vector after ingesting (what the store
            would do at its next refit point), before searching.
        methods: the methods to run, a subset of ``METHODS`` (all by default).
        return_runs: also return ``"runs"``: method → query id → ranked passage ids.
        progress: progress bars on stderr (default: for large inputs).

    Returns:
        ``{"dataset", "n_docs", "n_queries", "config": {...}, "methods": {method: {"ndcg@10",
        "recall@5", "recall@10", "recall@100", "mrr@10", "ms_per_query", "bytes_per_passage"}}}``.
        ``ms_per_query`` times the search only (embedding excluded). ``bytes_per_passage``
        is what each method keeps per passage: float32 ``4 × dim``, int8 ``dim``, binary
        ``bits / 8``, binary+int8 ``bits / 8 + dim +`` the mean hint bytes (the store's
        metadata, ids and SQLite overhead are not counted).

    Raises:
        InputError: the dataset cannot be read, or embeddings of the wrong shape.
        ConfigError: invalid settings, or a ``store_path`` that already holds passages.
    """
    from hashmem.memory.backends import is_milvus_uri
    from hashmem.memory.store import Memory

    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ConfigError(f"methods must be a non-empty subset of {', '.join(METHODS)}; got {list(methods)!r}")
    methods = [m for m in METHODS if m in methods]
    data = load_beir(dataset_dir, namespace_field=namespace_field)
    if candidates is not None and (isinstance(candidates, bool) or not isinstance(candidates, int)
                                   or candidates <= 0):
        raise ConfigError(f"candidates must be a positive integer, got {candidates!r}")
    with tempfile.TemporaryDirectory(prefix="hashmem-eval-") as tmp:
        if store_path is None:
            path = Path(tmp) / "eval.db"
        else:  # a file, or a milvus:// URI
            path = store_path if is_milvus_uri(store_path) else Path(store_path)
        with Memory(path, model=model, bits=bits, method=method, hint_bytes=hint_bytes, fidelity=fidelity) as mem:
            if len(mem):
                raise ConfigError(f"{path} already holds {len(mem)} passages; eval ingests the "
                                  "dataset itself, so give a new store path (or none)")
            dim = mem.config.dim
            docs = _embeddings(corpus_embeddings, len(data.doc_texts), dim, "corpus_embeddings")
            if docs is None:
                docs = mem.embedder.encode(data.doc_texts, progress=progress)
            ingest(mem, data, docs, progress=progress)
            if refit:
                mem.refit()
            queries = _embeddings(query_embeddings, len(data.query_texts), dim, "query_embeddings")
            if queries is None:
                queries = mem.embedder.encode(data.query_texts, progress=progress)
            runs, ms = {}, {}
            for m in methods:
                if m == "float32":
                    runs[m], ms[m] = run_exact(data, docs, queries)
                elif m == "lexical":
                    runs[m], ms[m] = run_lexical(mem, data)
                else:
                    runs[m], ms[m] = run_store(mem, data, queries, mode=m, candidates=candidates,
                                               lexical_weight=lexical_weight, progress=progress)
            stats = mem.stats()
            config = {
                "model": mem.config.model,
                "embed_backend": getattr(mem.embedder, "backend", "torch"),
                "dim": dim,
                "bits": mem.config.bits,
                "method": mem.config.method,
                "candidates": candidates if candidates is not None else _default_candidates(),
                "namespace_field": namespace_field,
                "hint_bytes": mem.config.hint_bytes,
                "fidelity": mem.config.fidelity,
                "lexical_weight": _lexical_weight(mem, lexical_weight),
                "mean_hint_bytes": stats.bytes_per_passage.get("hints", 0.0),
                "mean_text_bytes": stats.bytes_per_passage.get("text", 0.0),
                "hasher_fitted_on": stats.hasher["fitted_on"],
                "unjudged_queries_skipped": data.unjudged_queries,
                "empty_passages_skipped": data.empty_passages,
            }
    sizes = {
        "float32": 4.0 * dim,
        "int8": float(dim),
        "binary": config["bits"] / 8,
        "binary+int8": config["bits"] / 8 + dim + config["mean_hint_bytes"],
        "hybrid": config["bits"] / 8 + dim + config["mean_hint_bytes"],
        "lexical": config["mean_text_bytes"] if config["fidelity"] == "text" else config["mean_hint_bytes"],
    }
    out = {
        "dataset": data.name,
        "n_docs": len(data.doc_ids),
        "n_queries": len(data.query_ids),
        "config": config,
        "methods": {
            m: {**score_run(runs[m], data.qrels), "ms_per_query": ms[m], "bytes_per_passage": sizes[m]}
            for m in methods
        },
    }
    if namespace_field is not None:
        out["by_namespace"] = by_namespace(runs, data)
    if return_runs:
        out["runs"] = runs
    return out


def by_namespace(runs: Mapping[str, Mapping[str, Sequence[str]]], data: Dataset) -> dict[str, dict]:
    """Each query namespace's own ``METRICS`` per method, with its judged query count (LoCoMo: per conversation)."""
    groups: dict[str, dict[str, Mapping[str, int]]] = {}
    for qid, ns in zip(data.query_ids, data.query_namespaces, strict=True):
        if qid in data.qrels:
            groups.setdefault(ns, {})[qid] = data.qrels[qid]
    return {ns: {"n_queries": len(qrels), **{m: score_run(run, qrels) for m, run in runs.items()}}
            for ns, qrels in sorted(groups.items())}


def _lexical_weight(mem, weight: float | None) -> float:
    from hashmem.memory.fusion import check_hybrid

    return check_hybrid("hybrid", weight, [""], 1, mem.config.fidelity)


def _default_candidates() -> int:
    from hashmem.memory.config import DEFAULT_CANDIDATES

    return DEFAULT_CANDIDATES


def _embeddings(x, n: int, dim: int, name: str) -> np.ndarray | None:
    if x is None:
        return None
    x = np.asarray(x, dtype=np.float32)
    if x.shape != (n, dim):
        raise InputError(f"{name} must have shape ({n}, {dim}), got {x.shape}")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _groups(namespaces: Sequence[str]) -> dict[str, np.ndarray]:
    """namespace → positions (ascending), namespaces in order of first appearance."""
    out: dict[str, list[int]] = {}
    for i, ns in enumerate(namespaces):
        out.setdefault(ns, []).append(i)
    return {ns: np.asarray(pos, dtype=np.int64) for ns, pos in out.items()}


def ingest(mem, data: Dataset, embeddings: np.ndarray, *, progress: bool | None = None) -> None:
    """Add the corpus to a store, one ``Memory.add`` per namespace, with metadata ``{"_id"}``.

    Args:
        mem: an open, empty ``Memory``.
        data: the dataset.
        embeddings: float32 [n_docs, dim] unit embeddings of ``data.doc_texts``.
        progress: progress bar on stderr (default: for large inputs).
    """
    for ns, pos in _groups(data.doc_namespaces).items():
        mem.add(
            [data.doc_texts[i] for i in pos],
            embeddings=embeddings[pos],
            metadata=[{"_id": data.doc_ids[i]} for i in pos],
            namespace=ns,
            progress=progress,
        )


def run_exact(data: Dataset, docs: np.ndarray, queries: np.ndarray, *, k: int = RETRIEVE):
    """Exact cosine top k of each query within its namespace.

    Args:
        data: the dataset.
        docs: float32 [n_docs, dim] unit embeddings of ``data.doc_texts``.
        queries: float32 [n_queries, dim] unit embeddings of ``data.query_texts``.
        k: hits per query.

    Returns:
        (run: query id → passage ids best first, milliseconds per query).
    """
    by_ns = _groups(data.doc_namespaces)
    matrices = {ns: np.ascontiguousarray(docs[pos]) for ns, pos in by_ns.items()}  # [n_ns, dim] each
    nothing = np.zeros((0, docs.shape[1]), dtype=np.float32)
    run: dict[str, list[str]] = {}
    seconds = 0.0
    for qi, qid in enumerate(data.query_ids):
        ns = data.query_namespaces[qi]
        t = time.perf_counter()
        top = _exact_topk(matrices.get(ns, nothing), queries[qi], k)
        seconds += time.perf_counter() - t
        pos = by_ns.get(ns)
        run[qid] = [data.doc_ids[pos[j]] for j in top]
    return run, 1000.0 * seconds / max(len(data.query_ids), 1)


def run_store(mem, data: Dataset, queries: np.ndarray, *, mode: str, candidates: int | None = None,
              lexical_weight: float | None = None, k: int = RETRIEVE, progress: bool | None = None):
    """The store's top k of each query within its namespace (``Memory.search_embeddings``).

    Args:
        mem: a store holding the corpus (``ingest``).
        data: the dataset.
        queries: float32 [n_queries, dim] unit embeddings of ``data.query_texts``.
        mode: ``binary+int8``, ``hybrid``, ``binary`` or ``int8`` (see ``Memory.search``).
        candidates: the int8 rerank depth of ``binary+int8`` and ``hybrid``; there, at most
            ``max(candidates, 10)`` hits are asked for, so the store searches with the
            depth asked for (it raises the depth to k otherwise).
        lexical_weight: ``hybrid``'s BM25 share (None: the store's default).
        k: hits per query.
        progress: a progress bar over the queries on stderr (default: from 256 queries on).

    Returns:
        (run: query id → passage ids best first, milliseconds per query, search only).
    """

    show = len(data.query_ids) >= 256 if progress is None else progress
    bar = progress_bar(len(data.query_ids), show, desc=f"searching ({mode})")
    if mode in ("binary+int8", "hybrid") and candidates is not None:
        k = min(k, max(candidates, 10))
    run: dict[str, list[str]] = {}
    seconds = 0.0
    for qi, qid in enumerate(data.query_ids):
        t = time.perf_counter()
        texts = [data.query_texts[qi]] if mode == "hybrid" else None
        hits = mem.search_embeddings(queries[qi : qi + 1], k, namespace=data.query_namespaces[qi],
                                     candidates=candidates, mode=mode, lexical_weight=lexical_weight,
                                     query_texts=texts)[0]
        seconds += time.perf_counter() - t
        run[qid] = [h.metadata["_id"] for h in hits]
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return run, 1000.0 * seconds / max(len(data.query_ids), 1)


def run_lexical(mem, data: Dataset, *, k: int = RETRIEVE):
    """BM25 alone: each query against every passage of its namespace (``memory.lexical``).

    The passages' terms are what the store's ``hybrid`` search scores (hint terms, or the
    exact words of a ``text`` store), indexed in RAM once per namespace; IDF from the store
    lexicon. Ties (passages without any query term among them) by record id.

    Returns:
        (run: query id → passage ids best first, milliseconds per query: scoring and sorting
        only, the in-RAM index not counted).
    """
    from hashmem.memory import fusion, lexical
    from hashmem.memory.search import Candidates

    side = fusion.hybrid_for(mem, data.query_texts, 0.0)
    by_ns: dict[str, list[int]] = {}
    for qi, ns in enumerate(data.query_namespaces):
        by_ns.setdefault(ns, []).append(qi)
    run: dict[str, list[str]] = {}
    seconds = 0.0
    for ns, qis in by_ns.items():
        ids = mem.backend.select(ns)
        names = [m["_id"] for m in mem.backend.rows(ids, ("metadata",))["metadata"]]
        index, lengths = lexical.postings(side.passages(Candidates(ids, np.zeros(len(ids), np.uint32))))
        for qi in qis:
            t = time.perf_counter()
            scores = lexical.bm25_scores(side.queries[qi], index, lengths, side.weights[qi])  # [n_ns]
            top = np.lexsort((ids, -scores))[:k]
            seconds += time.perf_counter() - t
            run[data.query_ids[qi]] = [names[j] for j in top]
    return run, 1000.0 * seconds / max(len(data.query_ids), 1)


def _exact_topk(matrix: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k highest cosines of q [dim] against unit rows [n, dim], ties by position."""
    if len(matrix) == 0:
        return np.empty(0, dtype=np.int64)
    scores = matrix @ q  # [n]
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
    else:
        part = np.arange(len(scores))
    return part[np.lexsort((part, -scores[part]))]

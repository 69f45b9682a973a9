"""Issue 18 item 2: which hint terms, under the same byte budget, make hint-BM25 hybrid search strongest.

For scifact-train and cranfield, one ``hints`` store is built from cached embeddings
(``eval_grid.cached_embeddings``) and asked, once per query, for its 100 binary+int8
candidates and their int8 cosines (``mode="binary+int8"``, k = C = 100: every stage-3
candidate). Each term-selection strategy then re-makes every passage's hints offline,
exactly as ``Memory.add`` would (batches of 256: the lexicon observes a batch, then each
passage of it is encoded against the lexicon as it stands, in the same byte budget), and
stage 3 of ``mode="hybrid"`` is replayed on the same candidates: BM25 of the query terms
over each candidate's hint terms (IDF from the final lexicon, as ``fusion.hybrid_for``),
blended with the int8 cosine (``lexical.blend``) at several weights; nDCG@10 against
float32's. Strategy ``current`` (numbers first, the choice before issue 18) reproduces
``benchmarks/hybrid.py``'s hints rows of results/hybrid_defaults.json; ``numbers_last`` is
what ``hints.encode`` does now (the same hints, checked passage by passage). LoCoMo
(``--held-out``) is reported, never used to choose.

Fidelity proxy: the extractive decoder's reconstruction (the hints in passage order as
one line, ``decoders.extractive.layout``) embedded alone, its cosine to the original
embedded alone, on ``eval-recall``'s own draw (scifact-train and canterbury chunked at
100 tokens, 1,000 passages drawn with seed 0 and stored, the first ``--fidelity-sample``
scored). ``hashmem eval-recall`` itself (llama and extractive) is run before/after on the
winner only (docs/eval.md).

Run (2 shared cores; ~2-7 min per strategy on a loaded machine once the embeddings are cached).
results/hint_terms_round1.json: every strategy and search, scifact-train and cranfield only
(``--held-out`` with nothing); results/hint_terms.json: the runners-up with LoCoMo:

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/hint_terms.py --held-out --out benchmarks/results/hint_terms_round1.json
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/hint_terms.py --strategies current numbers_last \
        numbers_last_tf_log0.5 numbers_last_first_x1.25 --searches bm25_b0.4 stems --weights 0.1 0.15 0.2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import msgpack
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from eval_grid import DATA, cached_embeddings  # noqa: E402

from hashmem.decoders.extractive import layout  # noqa: E402
from hashmem.evaluation import recall as rc  # noqa: E402
from hashmem.evaluation import retrieval as ev  # noqa: E402
from hashmem.memory import Memory, hints, lexical  # noqa: E402
from hashmem.memory.config import DEFAULT_HINT_BYTES  # noqa: E402
from hashmem.memory.embedding.embedder import DEFAULT_MODEL, Embedder  # noqa: E402

BATCH = 256  # Memory's default batch_size
C = 100  # stage-3 candidates (config.DEFAULT_CANDIDATES)
NAMESPACE_FIELD = {"locomo": "conv"}
WEIGHTS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
_FIRST_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")


def stem(word: str) -> str:
    """A light English suffix stripper (plurals, -ing/-ed/-ly), enough to merge ``cell``/``cells``."""
    w = word.lower()
    if len(w) <= 3 or not w.isalpha():
        return w
    for suf, rep in (("ies", "y"), ("sses", "ss"), ("ss", "ss"), ("us", "us"), ("is", "is"), ("s", "")):
        if w.endswith(suf):
            w = w[: len(w) - len(suf)] + rep
            break
    for suf in ("ing", "edly", "ed", "ly"):
        if w.endswith(suf) and len(w) - len(suf) >= 4:
            return w[: len(w) - len(suf)]
    return w


@dataclass(frozen=True)
class Strategy:
    """How a passage's hint tokens are ranked for the budget (higher first).

    numbers: "first" (before issue 18; ``current``), "idf" (ranked with words, as a term seen in one passage), "last".
    name_bonus: added to a name's score (50: every name before any word).
    tf: "none" (hints.encode), "log" (idf · (1 + tf_scale · ln tf)), "bm25" (idf · tf (k1+1) / (tf + k1)).
    min_df: IDF computed from max(df, min_df) (a term only this passage holds ranks lower).
    first: multiplier of the score of a term in the passage's first sentence (a title).
    per_byte: rank by score per encoded byte.
    stems: one slot per stem (``cell``/``cells``), tf summed over the stem's variants.
    """

    numbers: str = "first"
    name_bonus: float = 50.0
    tf: str = "none"
    tf_scale: float = 1.0
    min_df: int = 0
    first: float = 1.0
    per_byte: bool = False
    stems: bool = False


@dataclass
class Search:
    """How stage 3 scores hints: BM25 parameters, lexical normalization, stem matching."""

    b: float = lexical.B
    k1: float = lexical.K1
    norm: str = "minmax"  # or "query": BM25 / the query's largest possible BM25 (its terms' idf sum)
    stems: bool = False


def item_bytes(item: int | str) -> int:
    if isinstance(item, str):
        n = len(item.encode("utf-8"))
        return n + (1 if n < 32 else 2 if n < 256 else 3)
    return 1 if item < 128 else 2 if item < 256 else 3 if item < 65536 else 5


def encode(tokens, lexicon: hints.Lexicon, budget: int, st: Strategy, text: str) -> bytes:
    """``hints.encode`` with the ranking of ``st`` (the same byte accounting)."""
    ids, df, n1 = lexicon.ids, lexicon.df, lexicon.n_docs + 1
    m = _FIRST_SENTENCE_END.search(text)
    first_end = m.end() if m else len(text)
    seen: dict[str, tuple[str, int, str, str]] = {}  # group → (text, pos, kind, lexicon key) of its first token
    tf: Counter = Counter()
    for tok_text, key, pos, kind in tokens:
        if kind == "word" and tok_text[:1].isupper() and tok_text in ids:
            key, kind = tok_text, "name"
        group = stem(key) if st.stems and kind != "number" else key
        tf[group] += 1
        if group not in seen:
            seen[group] = (tok_text, pos, kind, key)
    scored = []
    for group, (tok_text, pos, kind, key) in seen.items():
        if kind == "number":
            item = tok_text
            idf = math.log(n1 / (max(1, st.min_df) + 0.5))
            s = {"first": 100.0, "idf": idf, "last": idf - 100.0}[st.numbers]
        else:
            item = ids[key]
            idf = math.log(n1 / (max(df[item], st.min_df) + 0.5))
            t = tf[group]
            s = idf * (1.0 if st.tf == "none" else 1.0 + st.tf_scale * math.log(t) if st.tf == "log" else t * 1.9 / (t + 0.9))
            if kind == "name":
                s += st.name_bonus
        if pos < first_end:
            s = s * st.first if s > 0 else s
        if st.per_byte:
            s = s / item_bytes(item) if abs(s) < 40 else s  # keep the tiers (numbers/names first) intact
        scored.append((-s, pos, item))
    scored.sort()
    chosen, size = [], 1
    for _, pos, item in scored:
        if size >= budget:
            break
        add = item_bytes(item) + (2 if len(chosen) == 15 else 0)
        if size + add > budget:
            continue
        size += add
        chosen.append((pos, item))
    chosen.sort()
    return msgpack.packb([item for _, item in chosen])


def build(texts: list[str], st: Strategy, budget: int, namespaces=None) -> tuple[list[list[str]], hints.Lexicon]:
    """Every passage's hint strings as ``Memory.add`` would make them with ``st``, and the final lexicon.

    With ``namespaces``, passages are added as ``ev.ingest`` adds them: one ``add`` per namespace.
    """
    lex = hints.Lexicon()
    out: list[list[str] | None] = [None] * len(texts)
    groups = ev._groups(namespaces) if namespaces is not None else {"": np.arange(len(texts))}
    for pos in groups.values():
        for s in range(0, len(pos), BATCH):
            batch = [texts[j] for j in pos[s : s + BATCH]]
            toks = [hints.tokenize(t) for t in batch]
            lex.observe(hints.terms_of(t) for t in toks)
            blobs = [encode(t, lex, budget, st, x) for t, x in zip(toks, batch, strict=True)]
            for j, h in zip(pos[s : s + BATCH], hints.decode_many(blobs, lex), strict=True):
                out[j] = h
    return out, lex


@dataclass
class Candidates:
    """Per query: its 100 binary+int8 candidates (passage positions) and their int8 cosines."""

    pos: list[np.ndarray]
    dense: list[np.ndarray]
    f32: dict  # float32's ev.score_run
    base: dict  # binary+int8's


def candidates(data, docs, queries) -> Candidates:
    where = {d: j for j, d in enumerate(data.doc_ids)}
    f32 = ev.score_run(ev.run_exact(data, docs, queries)[0], data.qrels)
    pos, dense, run = [], [], {}
    with tempfile.TemporaryDirectory(prefix="hashmem-hintterms-") as tmp, Memory(Path(tmp) / "s.db") as mem:
        ev.ingest(mem, data, docs, progress=False)
        for qi, qid in enumerate(data.query_ids):
            hits = mem.search_embeddings(queries[qi : qi + 1], C, mode="binary+int8",
                                         namespace=data.query_namespaces[qi])[0]
            p = np.array([where[h.metadata["_id"]] for h in hits], np.int64)
            pos.append(p)
            dense.append(np.array([h.score for h in hits], np.float32))
            run[qid] = [data.doc_ids[j] for j in p]
    base = ev.score_run(run, data.qrels)
    return Candidates(pos, dense, f32, base)


def hybrid_scores(data, cands: Candidates, hint_strings, lex, sr: Search, weights) -> dict[str, dict]:
    """nDCG@10 (its ratio to float32's) and recall@5 of stage 3 replayed on the candidates, per lexical weight."""
    docs_terms = [lexical.hint_terms(h) for h in hint_strings]
    if sr.stems:
        docs_terms = [[stem(t) for t in d] for d in docs_terms]
    runs = {w: {} for w in weights}
    for qi, qid in enumerate(data.query_ids):
        q = lexical.terms(data.query_texts[qi])
        idf = lexical.idf(lexical.document_frequencies(lex, q), lex.n_docs)
        if sr.stems:
            stemmed: dict[str, float] = {}
            for t, v in idf.items():
                stemmed[stem(t)] = max(v, stemmed.get(stem(t), 0.0))
            q, idf = list(stemmed), stemmed
        p = cands.pos[qi]
        bm = lexical.bm25(q, [docs_terms[j] for j in p], idf, k1=sr.k1, b=sr.b)
        if sr.norm == "query":
            top = sum(idf.values()) or 1.0
            lex_n = bm / top
        else:
            lex_n = lexical.minmax(bm)
        d = lexical.minmax(cands.dense[qi])
        for w in weights:
            s = (1 - w) * d + w * lex_n
            order = np.lexsort((p, -s))[:10]
            runs[w][qid] = [data.doc_ids[j] for j in p[order]]
    out = {}
    for w in weights:
        got = ev.score_run(runs[w], data.qrels)
        out[f"{w:g}"] = {"ndcg@10": got["ndcg@10"], "ratio": got["ndcg@10"] / cands.f32["ndcg@10"],
                         "recall@5": got["recall@5"]}
    return out


def fidelity_sets(names, n_index: int, sample: int):
    """eval-recall's draw: (stored passages, the first ``sample`` of them) per dataset."""
    out = {}
    for name in names:
        passages = rc.load_passages(DATA / name)
        rng = np.random.default_rng(0)
        pick = rng.choice(len(passages), size=min(n_index, len(passages)), replace=False)
        out[name] = [passages[i] for i in pick]
    return out


def fidelity(stored: list[str], orig_emb: np.ndarray, st: Strategy, budget: int, emb: Embedder) -> dict:
    hs, _ = build(stored, st, budget)
    texts = [layout(h) or "." for h in hs[: len(orig_emb)]]
    e = np.concatenate([emb.encode([t], progress=False) for t in texts])
    cos = np.sum(e * orig_emb, axis=1)
    return {"cosine_mean": float(cos.mean()), "cosine_median": float(np.median(cos))}


STRATEGIES: dict[str, Strategy] = {
    "current": Strategy(),
    "names_by_idf": Strategy(name_bonus=0.0),
    "numbers_by_idf": Strategy(numbers="idf"),
    "numbers_last": Strategy(numbers="last"),
    "all_by_idf": Strategy(numbers="idf", name_bonus=0.0),
    "tf_log": Strategy(tf="log"),
    "tf_bm25": Strategy(tf="bm25"),
    "min_df2": Strategy(min_df=2),
    "min_df3": Strategy(min_df=3),
    "first_x1.5": Strategy(first=1.5),
    "per_byte": Strategy(per_byte=True),
    "stems": Strategy(stems=True),
    "tf_log_min_df2": Strategy(tf="log", min_df=2),
    "tf_log_names_by_idf": Strategy(tf="log", name_bonus=0.0),
    "tf_log_numbers_last": Strategy(tf="log", numbers="last"),
    # round 2: around numbers_last
    "numbers_last_first_x1.25": Strategy(numbers="last", first=1.25),
    "numbers_last_first_x1.5": Strategy(numbers="last", first=1.5),
    "numbers_last_min_df3": Strategy(numbers="last", min_df=3),
    "numbers_last_stems": Strategy(numbers="last", stems=True),
    "numbers_last_tf_log0.5": Strategy(numbers="last", tf="log", tf_scale=0.5),
    "numbers_last_tf_log0.25": Strategy(numbers="last", tf="log", tf_scale=0.25),
    "numbers_last_tf_log0.5_first_x1.25": Strategy(numbers="last", tf="log", tf_scale=0.5, first=1.25),
}
SEARCHES: dict[str, Search] = {
    "bm25_b0.4": Search(),
    "bm25_b0": Search(b=0.0),
    "query_norm": Search(norm="query"),
    "stems": Search(stems=True),
    "stems_b0": Search(stems=True, b=0.0),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["scifact-train", "cranfield"], help="weights chosen on these")
    p.add_argument("--held-out", nargs="*", default=["locomo"], help="reported only (LoCoMo: namespace field conv)")
    p.add_argument("--fidelity-datasets", nargs="+", default=["scifact-train", "canterbury"])
    p.add_argument("--fidelity-sample", type=int, default=100)
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    p.add_argument("--searches", nargs="+", default=list(SEARCHES))
    p.add_argument("--budget", type=int, default=DEFAULT_HINT_BYTES)
    p.add_argument("--weights", type=float, nargs="+", default=list(WEIGHTS))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "hint_terms.json"))
    args = p.parse_args()
    started = time.time()
    sets = {}
    for name in args.datasets + args.held_out:
        data = ev.load_beir(DATA / name, namespace_field=NAMESPACE_FIELD.get(name))
        docs, queries = cached_embeddings(data, DEFAULT_MODEL)
        sets[name] = (data, candidates(data, docs, queries))
        c = sets[name][1]
        print(f"{name}: float32 {c.f32['ndcg@10']:.4f}  binary+int8 {c.base['ndcg@10']:.4f} "
              f"(recall@5 {c.base['recall@5']:.4f})", file=sys.stderr, flush=True)
    emb = Embedder(DEFAULT_MODEL)
    fid = fidelity_sets(args.fidelity_datasets, 1000, args.fidelity_sample)
    orig = {n: np.concatenate([emb.encode([t], progress=False) for t in s[: args.fidelity_sample]])
            for n, s in fid.items()}
    rows = []
    for sname in args.strategies:
        st = STRATEGIES[sname]
        row = {"strategy": sname, "settings": st.__dict__, "datasets": {}, "fidelity": {}}
        built = {n: build(data.doc_texts, st, args.budget, data.doc_namespaces) for n, (data, _) in sets.items()}
        for n, (data, cands) in sets.items():
            hs, lex = built[n]
            row["datasets"][n] = {"hints_per_passage": float(np.mean([len(h) for h in hs])), "search": {}}
            for rname in args.searches:
                row["datasets"][n]["search"][rname] = hybrid_scores(data, cands, hs, lex, SEARCHES[rname],
                                                                    args.weights)
        for n, stored in fid.items():
            row["fidelity"][n] = fidelity(stored, orig[n], st, args.budget, emb)
        best = None
        for rname in args.searches:
            for w in args.weights:
                rs = [row["datasets"][n]["search"][rname][f"{w:g}"]["ratio"] for n in args.datasets]
                key = (min(rs), float(np.mean(rs)))
                if best is None or key > best[0]:
                    best = (key, rname, w, rs)
        row["best"] = {"search": best[1], "weight": best[2], "ratios": dict(zip(args.datasets, best[3], strict=True)),
                       "min_ratio": best[0][0], "mean_ratio": best[0][1]}
        rows.append(row)
        fids = "  ".join(f"{n} cos {v['cosine_mean']:.4f}" for n, v in row["fidelity"].items())
        cur = "  ".join(f"{n} {row['datasets'][n]['search']['bm25_b0.4']['0.15']['ratio']:.4f}" for n in sets) \
            if "bm25_b0.4" in args.searches and 0.15 in args.weights else ""
        if "bm25_b0.4" in args.searches and 0.15 in args.weights:
            cur += "".join(f"  {n} R@5 {row['datasets'][n]['search']['bm25_b0.4']['0.15']['recall@5']:.4f}"
                           for n in args.held_out)
        print(f"{sname:22s} best {best[1]}@{best[2]:g} " + " ".join(f"{r:.4f}" for r in best[3])
              + f"  [default search@0.15: {cur}]  {fids}", file=sys.stderr, flush=True)
    Path(args.out).write_text(json.dumps({
        "command": "HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/hint_terms.py " + " ".join(sys.argv[1:]),
        "model": DEFAULT_MODEL, "budget": args.budget, "weights": args.weights, "load": os.getloadavg(),
        "seconds": time.time() - started,
        "chosen_on": args.datasets, "held_out": args.held_out,
        "baselines": {n: {"float32": c.f32, "binary+int8": c.base} for n, (_, c) in sets.items()},
        "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Item 4 of issue 4: embedding throughput (passages/s) and recall@10 per backend, on SciFact.

Steps measured on the same passages (SciFact title + abstract cut by ``chunk_text`` into
the store's ~120-token passages; all-MiniLM-L6-v2):
  1. plain ``SentenceTransformer.encode`` (torch fp32, batch 32; it already sorts by length)
  2. ONNX fp32 export run by onnxruntime (our length-sorted batching)
  3. ONNX int8 (per-channel dynamic quantization) — hashmem's default
  4. ONNX int8 in 2 processes × 1 thread each
Quality: recall@10 against SciFact-train qrels, exact float search over the full
corpus, for torch fp32 and ONNX int8.

    flock /tmp/hashmem-bench.lock .venv/bin/python benchmarks/ingest.py --n 400
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-train"
CACHE = Path(os.environ.get("HASHMEM_BENCH_CACHE", "/tmp/hashmem-bench-cache"))


def load_scifact():
    corpus = [json.loads(line) for line in open(DATA / "corpus.jsonl")]
    queries = {q["_id"]: q["text"] for q in map(json.loads, open(DATA / "queries.jsonl"))}
    qrels: dict[str, set[str]] = {}
    for line in list(open(DATA / "qrels.tsv"))[1:]:
        q, d, _ = line.rstrip("\n").split("\t")
        qrels.setdefault(q, set()).add(d)
    texts = [(c.get("title", "") + ". " + c["text"]).strip() for c in corpus]
    return [c["_id"] for c in corpus], texts, queries, qrels


def recall_at_10(doc_ids, doc_emb, queries, qrels, encode) -> float:
    qids = [q for q in qrels if q in queries]
    qe = encode([queries[q] for q in qids])
    top = np.argsort(-(qe @ doc_emb.T), axis=1)[:, :10]
    r = [len({doc_ids[j] for j in row} & qrels[q]) / len(qrels[q]) for q, row in zip(qids, top, strict=True)]
    return float(np.mean(r))


_worker = None


def _init_worker():
    global _worker
    from hashmem.memory.embedding.models import default_model_path
    from hashmem.memory.embedding.onnx import OnnxEncoder

    _worker = OnnxEncoder(default_model_path(), threads=1)


def _encode_chunk(texts):
    return _worker.encode(texts)


def rate(fn, texts) -> float:
    fn(texts[:32])  # warm up
    t = time.perf_counter()
    fn(texts)
    return len(texts) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000, help="passages for the throughput runs")
    ap.add_argument("--no-recall", action="store_true")
    args = ap.parse_args()
    from hashmem.memory.chunk import chunk_text
    from hashmem.memory.embedding.models import default_model_path, load_model
    from hashmem.memory.embedding.onnx import OnnxEncoder, export

    doc_ids, texts, queries, qrels = load_scifact()
    # throughput on passages as the store makes them (chunk_text's default, ~120 tokens)
    sample = [p.text for t in texts[: args.n] for p in chunk_text(t)][: args.n]
    model_dir = default_model_path()
    st = load_model(str(model_dir))

    def plain(t):
        return st.encode(t, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)

    onnx_int8 = OnnxEncoder(model_dir)
    out = {"n": len(sample)}
    out["torch_fp32_plain"] = rate(plain, sample)
    with tempfile.TemporaryDirectory() as tmp:
        # an fp32 export: the same recipe without the quantization step
        import torch

        transformer = st[0].auto_model.eval()
        tok = st.tokenizer(["a b", "c d e"], padding=True, return_tensors="pt")
        names = ["input_ids", "attention_mask", "token_type_ids"]

        class Hidden(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, a, b, c):
                return self.m(input_ids=a, attention_mask=b, token_type_ids=c).last_hidden_state

        fp32 = Path(tmp) / "fp32.onnx"
        torch.onnx.export(Hidden(transformer), tuple(tok[n] for n in names), str(fp32), input_names=names,
                          output_names=["h"], dynamic_axes={n: {0: "b", 1: "t"} for n in [*names, "h"]},
                          opset_version=17, dynamo=False)
        onnx_fp32 = OnnxEncoder(model_dir, onnx_file=fp32)
        out["onnx_fp32"] = rate(onnx_fp32.encode, sample)
    del export
    out["onnx_int8"] = rate(onnx_int8.encode, sample)
    with ProcessPoolExecutor(2, initializer=_init_worker) as pool:
        def two_procs(t):
            half = len(t) // 2
            parts = list(pool.map(_encode_chunk, [t[:half], t[half:]]))
            return np.concatenate(parts)

        out["onnx_int8_2proc"] = rate(two_procs, sample)
    for k in ("onnx_fp32", "onnx_int8", "onnx_int8_2proc"):
        out[f"speedup_{k}"] = out[k] / out["torch_fp32_plain"]
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}), flush=True)
    if not args.no_recall:
        e_t = plain(texts)
        e_q = onnx_int8.encode(texts)
        CACHE.mkdir(parents=True, exist_ok=True)  # reused by benchmarks/scale.py and the plot
        np.save(CACHE / "scifact-corpus-torch.npy", e_t)
        np.save(CACHE / "scifact-corpus-onnx-int8.npy", e_q)
        qids = [q for q in qrels if q in queries]
        np.save(CACHE / "scifact-queries-torch.npy", plain([queries[q] for q in qids]))
        out["mean_cosine_int8_vs_fp32"] = float((e_t * e_q).sum(axis=1).mean())
        out["recall10_torch_fp32"] = recall_at_10(doc_ids, e_t, queries, qrels, plain)
        out["recall10_onnx_int8"] = recall_at_10(doc_ids, e_q, queries, qrels, onnx_int8.encode)
        out["recall10_loss"] = out["recall10_torch_fp32"] - out["recall10_onnx_int8"]
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}), flush=True)


if __name__ == "__main__":
    main()

"""How faithful reconstructions are: the measurements behind ``hashmem eval-recall``.

For a dataset directory (BEIR layout with ``corpus.jsonl``, or a folder of
``.txt`` files), documents are chunked into passages of about 60 words;
``index`` of them, drawn with ``seed``, are stored in a temporary ``text``-tier
store (so that the same store also measures the text tier), and the first
``sample`` of those are reconstructed by each decoder *from their hints, vector
and code only* (the stored text is withheld from the decoders). The original
text is used only for scoring:

- ``cosine_mean`` / ``cosine_median``: cosine between the float embeddings
  (the store's model, each text embedded alone) of the original and of the
  reconstruction;
- ``invented_rate``: share of reconstructions holding a number or capitalized
  name absent from the original (``base.invented_terms``);
- ``ms_p50`` / ``ms_p90``: wall time per reconstruction;
- ``hint_bytes_mean``: stored hint bytes per passage;
- text tier: the store's text bytes (every stored body plus the dictionary) per
  stored passage, against gzip -9 and zstd -19 applied to each stored passage
  alone. The whole store, not the sample: the dictionary is trained on the
  first passages added, which therefore compress better than later ones.
- llm tier (``llm_sample`` > 0): the first ``llm_sample`` stored passages coded
  by ``memory.llmtier`` under the decoder GGUF, conditioned on their stored
  hints, exactly as an ``llm``-tier store would (a passage that does not pay or
  round-trip keeps its text-tier body): body bytes per passage against gzip -9,
  zstd -19 and the text tier's body (+ its share of the dictionary) *for the
  same passages*, the share coded, and an independent decode of every body
  afterwards (``roundtrip_rate``, decode ms p50/p90).

Each passage's metadata holds ``start``/``end`` offsets, as passages chunked by
``Memory.add_documents`` do, so the decoder knows the length to aim for.

What it does not do: evaluate retrieval (``memory.eval``).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from hashmem.decoders.base import embed_each, invented_terms
from hashmem.memory import InputError, Memory
from hashmem.memory.chunk import chunk_text
from hashmem.memory.progress import progress_bar

PASSAGE_TOKENS = 100  # memory.chunk tokens (words and marks) per passage: ~60 words of English prose


def iter_documents(dataset_dir: str | Path) -> Iterator[str]:
    """Documents of a dataset: ``corpus.jsonl`` texts (BEIR), else every ``.txt`` file, sorted.

    Raises:
        InputError: the directory holds neither.
    """
    root = Path(dataset_dir)
    corpus = root / "corpus.jsonl"
    if corpus.is_file():
        with open(corpus, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    text = json.loads(line).get("text", "")
                    if text.strip():
                        yield text
        return
    files = sorted(p for p in root.glob("*.txt") if p.is_file()) if root.is_dir() else []
    if not files:
        raise InputError(f"{root} holds neither corpus.jsonl (BEIR layout) nor .txt files; give a dataset directory")
    for p in files:
        yield p.read_text(encoding="utf-8", errors="replace")


def load_passages(dataset_dir: str | Path, *, passage_tokens: int = PASSAGE_TOKENS) -> list[str]:
    """All passages of a dataset, chunked on sentence boundaries."""
    return [p.text for doc in iter_documents(dataset_dir) for p in chunk_text(doc, tokens=passage_tokens)]


def _summary(cosines: Sequence[float], invented: Sequence[bool], ms: Sequence[float]) -> dict:
    return {
        "cosine_mean": round(float(np.mean(cosines)), 4),
        "cosine_median": round(float(np.median(cosines)), 4),
        "invented_rate": round(float(np.mean(invented)), 4),
        "ms_p50": round(float(np.percentile(ms, 50)), 1),
        "ms_p90": round(float(np.percentile(ms, 90)), 1),
    }


def evaluate(
    dataset_dir: str | Path,
    *,
    sample: int = 100,
    seed: int = 0,
    index: int = 1000,
    hint_bytes: int | None = None,
    decoders: Sequence[str] = ("llama", "extractive"),
    model: str | None = None,
    decoder_options: dict | None = None,
    progress: bool = False,
    details: list | None = None,
    llm_sample: int = 0,
) -> dict:
    """Measure the decoders and the text tier on one dataset.

    Args:
        dataset_dir: BEIR directory or a folder of .txt files.
        sample: passages reconstructed.
        seed: draws the stored passages (and seeds the llama decoder).
        index: passages stored (the sample is drawn from them); at least ``sample``.
        hint_bytes: hint budget of the store (default: the store default).
        decoders: which decoders to run (``llama``, ``extractive``).
        model: GGUF for the llama decoder.
        decoder_options: extra ``LlamaDecoder`` options (candidates, expand_terms, ...).
        progress: a progress bar on stderr.
        details: when a list, one dict per reconstruction is appended to it.
        llm_sample: passages coded with the ``llm`` tier (0: skip; ~5 s each on 2 busy cores).

    Returns:
        ``{"dataset", "n", "hint_bytes_mean", "decoders": {name: {"cosine_mean",
        "cosine_median", "invented_rate", "ms_p50", "ms_p90"}}, "text_tier":
        {"bytes_per_passage", "gzip9_bytes_per_passage", "zstd19_bytes_per_passage"}}``.
    """
    import zstandard

    from hashmem.decoders import open_decoder

    if sample <= 0 or index <= 0:
        raise InputError(f"sample and index must be positive, got sample={sample}, index={index}")
    passages = load_passages(dataset_dir)
    if not passages:
        raise InputError(f"{dataset_dir} holds no text")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(passages), size=min(max(index, sample), len(passages)), replace=False)
    stored = [passages[i] for i in pick]
    originals = stored[:sample]
    with tempfile.TemporaryDirectory(prefix="hashmem-eval-") as tmp, \
            Memory(Path(tmp) / "eval.db", fidelity="text", hint_bytes=hint_bytes) as mem:
        ids_all = mem.add(stored, metadata=[{"start": 0, "end": len(t)} for t in stored], progress=progress)
        ids = ids_all[: len(originals)]
        orig_emb = embed_each(mem, originals)  # [n, dim], each alone: see base.embed_each
        hint_bytes_mean = float(np.mean([len(r.hints) for r in mem.storage.fetch(ids).values()]))
        results = {}
        for name in decoders:
            options = dict(decoder_options or {}) if name == "llama" else {}
            if name == "llama":
                options.setdefault("seed", seed)
            dec = open_decoder(mem, name, model=model if name == "llama" else None, **options)
            recs = []
            bar = progress_bar(len(ids), progress, desc=f"recall ({name})")
            for i in ids:
                rec = dataclasses.replace(mem.get(i), text=None)  # decoders see hints, vector, code only
                recs.append(dec.reconstruct(rec))
                if bar is not None:
                    bar.update(1)
            if bar is not None:
                bar.close()
            texts = [r.text or "." for r in recs]
            emb = embed_each(mem, texts)
            cos = np.sum(emb * orig_emb, axis=1)  # [n]
            inv = [bool(invented_terms(r.text, o)) for r, o in zip(recs, originals, strict=True)]
            results[name] = _summary(cos.tolist(), inv, [r.ms for r in recs])
            if details is not None:
                for r, o, c in zip(recs, originals, cos, strict=True):
                    details.append({"decoder": name, "id": r.id, "cosine": float(c), "fidelity": r.fidelity,
                                    "invented": list(invented_terms(r.text, o)), "ms": r.ms,
                                    "text": r.text, "original": o})
        text_bytes = mem.storage.byte_sums()["text"] / len(stored)  # bodies and dictionary
        llm = _llm_tier(mem, stored, ids_all, llm_sample, model, progress) if llm_sample > 0 else None
    raw = [t.encode("utf-8") for t in stored]
    zc = zstandard.ZstdCompressor(level=19)
    extra = {"llm_tier": llm} if llm is not None else {}
    return {
        "dataset": str(dataset_dir),
        "n": len(originals),
        "hint_bytes_mean": round(hint_bytes_mean, 2),
        "decoders": results,
        "text_tier": {
            "bytes_per_passage": round(text_bytes, 1),
            "gzip9_bytes_per_passage": round(float(np.mean([len(gzip.compress(b, 9)) for b in raw])), 1),
            "zstd19_bytes_per_passage": round(float(np.mean([len(zc.compress(b)) for b in raw])), 1),
        },
        **extra,
    }


def _llm_tier(mem: Memory, stored: Sequence[str], ids: Sequence[int], n: int, model, progress: bool) -> dict:
    """Code the first n stored passages with the llm tier; sizes against gzip/zstd, an independent decode."""
    import time

    import zstandard

    from hashmem.decoders.llmcodec import token_model
    from hashmem.memory.tiers import text as texttier
    from hashmem.memory.tiers.llm import LLM_TAG, LlmTier

    texts, ids = list(stored[:n]), list(ids[:n])
    tier = LlmTier(mem.storage, token_model(model))
    hint_strings = [mem.get(i).hints for i in ids]
    fallback = mem.storage.fetch_texts(ids)
    fallbacks = [fallback[i] for i in ids]
    bar = progress_bar(len(texts), progress, desc="llm tier")
    bodies, fell = [], {}
    for t, h, fb in zip(texts, hint_strings, fallbacks, strict=True):
        bodies += tier.encode([t], [h], [fb])
        for k, v in tier.last_stats.fallback.items():
            fell[k] = fell.get(k, 0) + v
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    exact, ms = 0, []
    text_codec = texttier.for_storage(mem.storage)
    for body, t, h in zip(bodies, texts, hint_strings, strict=True):
        started = time.perf_counter()
        try:
            back = tier.decode(body, h) if body[:1] == bytes([LLM_TAG]) else text_codec.decode(body)
        except Exception:  # noqa: BLE001 - counted as a failed round trip
            back = None
        if body[:1] == bytes([LLM_TAG]):
            ms.append((time.perf_counter() - started) * 1000)
        exact += back == t
    raw = [t.encode("utf-8") for t in texts]
    zc = zstandard.ZstdCompressor(level=19)
    dict_share = text_codec.dictionary_bytes() / max(len(stored), 1)
    gzip9 = float(np.mean([len(gzip.compress(b, 9)) for b in raw]))
    llm_bytes = float(np.mean([len(b) for b in bodies]))
    words = [len(t.split()) for t in texts]
    return {
        "n": len(texts),
        "words_mean": round(float(np.mean(words)), 1),
        "coded_share": round(sum(b[:1] == bytes([LLM_TAG]) for b in bodies) / len(bodies), 4),
        "fallback": fell,
        "bytes_per_passage": round(llm_bytes, 1),
        "gzip9_bytes_per_passage": round(gzip9, 1),
        "zstd19_bytes_per_passage": round(float(np.mean([len(zc.compress(b)) for b in raw])), 1),
        "zstd_dict_bytes_per_passage": round(float(np.mean(list(map(len, fallbacks)))) + dict_share, 1),
        "ratio_to_gzip9": round(llm_bytes / gzip9, 4),
        "roundtrip_rate": round(exact / len(texts), 4),
        "decode_ms_p50": round(float(np.percentile(ms, 50)), 1) if ms else None,
        "decode_ms_p90": round(float(np.percentile(ms, 90)), 1) if ms else None,
        "model": tier.model().fingerprint(),
    }

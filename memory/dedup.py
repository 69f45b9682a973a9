"""Near-duplicate detection at ingest: which new passages repeat a stored one, or an earlier one of their batch.

Two tests, both on what the write pipeline has already made for a passage:

- **exact**: the SHA-256 of the *normalized* text — Unicode NFKC, ``str.casefold``, every run of
  whitespace made one space, the ends stripped. So "The  Cat\\n" and "the cat" are exact copies;
  punctuation, digits and word order are not normalized (a changed number is a different fact).
  Only passages of the same batch are compared this way: the store keeps no text hash (a
  ``hints`` store keeps no text at all; a side table of 16-byte keys would add 32.8 B per
  passage, +4.9 % of a SciFact ``hints`` store). An exact copy of a stored passage embeds to
  nearly the same vector (the model lowercases and ignores whitespace; another batch changes
  the ONNX model's dynamic int8 ranges a little), so the near test finds it: 300 of 300
  SciFact passages embedded again in other batches found their stored copy, the lowest
  score 0.992 (``benchmarks/dedup_cost.py``). A ``threshold`` above 0.99 may miss one.
- **near**: stage 1's Hamming candidates (``Backend.candidates``, the ``DEDUP_CANDIDATES``
  nearest codes of the same namespace), then the int8 cosine of the new passage's
  dequantized vector against each candidate's stored int8 vector; the best candidate at or
  above ``threshold`` is the match. Within a batch, the cosine of the dequantized vectors.

``DEFAULT_THRESHOLD`` was chosen by measurement (``benchmarks/dedup_detector.py`` on the
pairs of ``benchmarks/data/dedup_pairs.jsonl``; figures in ``benchmarks/results/dedup_detector.json``).

What a repeat becomes is the policy's: ``skip`` leaves it out, ``replace`` (``plan``) rewrites
the record it repeats with it in place (the id stays) — the newest of a group wins.

What it does not do: embed, quantize, hash, lock or write (``ingest`` calls it inside its
write transaction with the arrays it made, and writes what ``plan`` says).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from typing import Literal

import numpy as np

from .errors import ConfigError
from .results import Match

Policy = Literal["keep", "skip", "replace"]
POLICIES: tuple[str, ...] = ("keep", "skip", "replace")
DEFAULT_THRESHOLD = 0.89  # int8 cosine: P 0.982, R 0.948 on the built pairs (paraphrases alone: 35/44)
DEDUP_CANDIDATES = 32  # Hamming candidates whose int8 vectors are compared per new passage
_SPACE = re.compile(r"\s+")


def check_policy(policy: str) -> str:
    """The policy itself, or ConfigError naming the ones there are."""
    if policy not in POLICIES:
        raise ConfigError(f"dedup policy {policy!r} is not supported; use one of {', '.join(POLICIES)}")
    return policy


def normalize(text: str) -> str:
    """The form two texts must share to be exact copies: NFKC, casefolded, whitespace runs as one space, stripped."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def text_key(text: str) -> bytes:
    """SHA-256 (16 bytes) of the normalized text."""
    return hashlib.sha256(normalize(text).encode("utf-8")).digest()[:16]


def unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32 [n, dim]); zero rows stay zero."""
    v = np.asarray(vectors, dtype=np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def within_batch(texts: Sequence[str], deq: np.ndarray, threshold: float
                 ) -> list[tuple[int, float, bool] | None]:
    """For each passage, the earlier passage of the batch it repeats: (position, score, exact), or None.

    A passage is compared only with earlier ones that are not themselves repeats, so every
    repeat points at the first of its group.

    Args:
        texts: the batch's passages.
        deq: float32 [n, dim], their dequantized int8 vectors.
        threshold: int8 cosine at or above which two are one.
    """
    keys = [text_key(t) for t in texts]
    first: dict[bytes, int] = {}
    sims = unit(deq) @ unit(deq).T if len(texts) else np.zeros((0, 0), np.float32)  # [n, n]
    near = np.tril(sims >= threshold, -1).any(axis=1)  # [n]: some earlier passage is close (most are not)
    kept: list[int] = []
    out: list[tuple[int, float, bool] | None] = []
    for i, key in enumerate(keys):
        if key in first:
            out.append((first[key], 1.0, True))
            continue
        if near[i] and kept:
            row = sims[i, kept]
            j = int(np.argmax(row))
            if row[j] >= threshold:
                out.append((kept[j], float(row[j]), False))
                continue
        first[key] = i
        kept.append(i)
        out.append(None)
    return out


def best_stored(backend, hasher, quantizer, namespace: str, deq: np.ndarray, codes: np.ndarray, *,
                candidates: int = DEDUP_CANDIDATES) -> list[tuple[int, float] | None]:
    """For each new passage, its nearest stored record of ``namespace``: (id, int8 cosine), or None (empty).

    Stage 1 (Hamming top ``candidates`` of the passage's code) then the int8 cosine of the
    passage's dequantized vector with each candidate's stored int8 vector; the threshold is
    the caller's, so a measurement sees every score.

    Args:
        backend: the store's ``Backend`` (inside the write transaction, caught up).
        hasher / quantizer: the store's current ones.
        deq: float32 [n, dim], the new passages' dequantized int8 vectors.
        codes: uint8 [n, bits/8], their codes under ``hasher``.
    """
    if not len(deq):
        return []
    found = backend.candidates_many(namespace, codes, candidates, generation=hasher.generation)  # one call
    ids = np.unique(np.concatenate([c.ids for c in found]))  # every candidate once, ascending
    if not len(ids):
        return [None] * len(deq)
    vecs = {}
    for c in found:  # what the engine returned with its hits
        if c.qvecs is not None:
            vecs.update(zip(c.ids.tolist(), c.qvecs, strict=True))
    missing = [i for i in ids.tolist() if i not in vecs]
    if missing:  # one read for the whole batch; a record deleted meanwhile drops out
        got = backend.rows(missing, ("qvec",))
        vecs.update(zip(got.ids.tolist(), got.array("qvec", np.int8), strict=True))
    ids = np.array([i for i in ids.tolist() if i in vecs], dtype=np.int64)
    if not len(ids):
        return [None] * len(deq)
    deq_stored = quantizer.decode(np.stack([vecs[i] for i in ids.tolist()]))  # [n_ids, dim]
    deq_stored /= np.maximum(np.linalg.norm(deq_stored, axis=1, keepdims=True), 1e-12)
    col = {i: j for j, i in enumerate(ids.tolist())}
    # each passage's candidates as columns of ids (ascending, so a tie goes to the lowest id), padded with -1
    cols = [sorted(col[i] for i in c.ids.tolist() if i in col) for c in found]
    width = max(map(len, cols))
    idx = np.array([c + [-1] * (width - len(c)) for c in cols], dtype=np.int64)  # [n, width]
    scores = np.einsum("nd,nkd->nk", unit(deq), deq_stored[idx])  # [n, width]: int8 cosines
    scores[idx < 0] = -np.inf
    best = np.argmax(scores, axis=1)  # the first of the best
    return [None if not c else (int(ids[idx[qi, best[qi]]]), float(scores[qi, best[qi]]))
            for qi, c in enumerate(cols)]


def classify(backend, hasher, quantizer, namespace: str, texts: Sequence[str], deq: np.ndarray, codes: np.ndarray,
             threshold: float) -> tuple[list[int], list]:
    """Which of a batch's passages to store, and what each of the others repeats.

    A passage repeats the stored record nearest it when their int8 cosine is at least
    ``threshold``, else an earlier passage of the batch (``within_batch``), whichever scores higher.

    Returns:
        (positions to store, ascending; per position None or ("id", stored id, score, exact)
        or ("pos", earlier position, score, exact)), the second as ``resolve`` takes it.
    """
    stored = best_stored(backend, hasher, quantizer, namespace, deq, codes)
    earlier = within_batch(texts, deq, threshold)
    matched: list = []
    for s, e in zip(stored, earlier, strict=True):
        if s is not None and s[1] >= threshold and (e is None or s[1] >= e[1]):
            matched.append(("id", s[0], s[1], False))
        elif e is not None:
            matched.append(("pos", *e))
        else:
            matched.append(None)
    return [i for i, m in enumerate(matched) if m is None], matched


def resolve(n: int, keep: list[int] | None, new_ids: Sequence[int], matched: Sequence, found: list[Match] | None
            ) -> list[int]:
    """The id of each of a batch's ``n`` positions: its new id, or the id of what it repeats.

    Args:
        keep: the positions that were stored, in order (None: all of them), aligned with ``new_ids``.
        matched: per position None or ("id", stored id, score, exact) / ("pos", earlier position, score, exact).
        found: gets a ``Match`` (positions within the batch) for every repeat, when given.
    """
    stored_at = dict(zip(range(n) if keep is None else keep, map(int, new_ids), strict=True))
    out: list[int] = []
    for i in range(n):
        m = matched[i]
        if m is None:
            out.append(stored_at[i])
            continue
        kind, target, score, exact = m
        out.append(int(target) if kind == "id" else out[target])
        if found is not None:
            found.append(Match(i, out[-1], float(score), bool(exact)))
    return out


def plan(matched: Sequence, policy: str) -> tuple[list[int], list[int], dict[int, int]]:
    """What a batch stores under ``policy`` (``skip`` or ``replace``), from ``classify``'s ``matched``.

    Every position belongs to a group: a new record (its first position, stored) or a stored
    record it repeats (``("id", …)``, directly or through earlier positions). Under ``skip``
    each new record is stored with its first position's passage and a stored one is left as
    it is; under ``replace`` the *last* position of each group wins: a new record is stored
    with it, a stored record is rewritten with it (two groups of one stored id: the later).

    Returns:
        (positions whose new record is stored, ascending; the position whose passage each
        one is stored with, aligned; stored id → position it is rewritten with).
    """
    root: list[tuple[str, int]] = []  # per position: ("new", first position) or ("id", stored id)
    for i, m in enumerate(matched):
        root.append(("new", i) if m is None else ("id", int(m[1])) if m[0] == "id" else root[m[1]])
    keep = [i for i, m in enumerate(matched) if m is None]
    if policy != "replace":
        return keep, keep, {}
    last = {r: i for i, r in enumerate(root)}  # a later position overwrites an earlier one
    return keep, [last[("new", i)] for i in keep], {r[1]: i for r, i in last.items() if r[0] == "id"}

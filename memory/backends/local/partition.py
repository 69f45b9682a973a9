"""Vector partitions: the IVF lists of a store's large namespaces, fitted on the stored vectors, kept in SQLite.

A namespace of ``index.IVF_MIN_ROWS`` live records or more gets a partition:
spherical k-means centroids of its dequantized int8 vectors (``ivf.fit_vector_centroids``
on ``ivf.VECTOR_SAMPLE_PER_LIST`` sampled vectors per list) and, for every record,
the list whose centroid it scores highest with. A query probes the lists whose
centroids score highest with the query vector and scans only their codes.

Why vectors and not the codes: lists fitted on the codes (k-majority in Hamming
space, ``ivf.fit_centroids``) lost 0.018–0.031 of recall@10 against float32 end
to end at 128 of 2,048 lists (SciFact among 1M distractors, docs/scale.md);
lists fitted on the vectors and probed with the query vector lose 0.006 there,
and 0.0006 at the default 256 lists (0.0046 at 10M), because the partition follows the
similarity the final rerank uses. The price is that the assignment needs each
record's vector, which a store only has on disk: so the lists are persisted.

Persistence (``storage``): table ``ivf_lists(id, list)``, written in the same
transaction as the records (new records of a partitioned namespace get their list
when they are inserted, scored against the int8-rounded centroids the index
keeps); meta ``ivf.<namespace>`` holds the centroids (msgpack:
``nlist``, ``dim``, ``fitted_on``, float32 ``centroids``). Opening a store reads
codes and lists, never vectors. A partition is fitted once its namespace reaches
``IVF_MIN_ROWS`` and refitted (all lists rewritten, one transaction) each time the
namespace has grown ``LISTS_REFIT_GROWTH``× since. A read-only store whose large
namespace has no stored partition falls back to lists fitted on the codes.

What it does not do: scan codes (``index``), or decide thresholds for probing (``ivf``).
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack
import numpy as np

from ...errors import StoreCorruptError
from ...progress import progress_bar
from . import index as index_mod
from . import ivf

LISTS_REFIT_GROWTH = 4  # a namespace's stored IVF lists are refitted once it has grown this many times


@dataclass(frozen=True)
class Target:
    """What the partition works on: the local backend's file and in-RAM index, the vectors' dimension and
    the int8 calibration (never ``Memory``)."""

    storage: object  # storage.Storage
    index: object  # index.HammingIndex
    dim: int
    quantizer: object  # quantize.Quantizer


def _key(namespace: str) -> str:
    return f"ivf.{namespace}"


def stored(storage, namespace: str) -> dict | None:
    """The stored partition of a namespace: {"nlist", "dim", "fitted_on", "centroids"} or None."""
    raw = storage.get_meta(_key(namespace))
    if raw is None:
        return None
    try:
        d = msgpack.unpackb(bytes(raw), raw=False)
        d["centroids"] = np.frombuffer(d["centroids"], dtype=np.float32).reshape(d["nlist"], d["dim"]).copy()
    except (ValueError, KeyError, TypeError, msgpack.UnpackException) as e:
        raise StoreCorruptError(f"{storage.path}: the IVF partition of namespace {namespace!r} is damaged ({e})") from e
    return d


def load(t: Target) -> None:
    """Give every namespace of an opened store its partition (reads codes' lists, not vectors)."""
    for namespace, space in t.index.spaces.items():
        _load_one(t, namespace, space)
    index_mod.release_freed_heap()  # the lists read from SQLite are garbage now: hand the heap back


def _load_one(t: Target, namespace: str, space) -> None:
    part = stored(t.storage, namespace)
    if part is None:
        if space.n_alive >= index_mod.IVF_MIN_ROWS:
            if t.storage.readonly:
                space.build_ivf()  # cannot store one: lists fitted on the codes, for this process
            else:
                build(t, namespace)
        return
    if part["dim"] != t.dim:
        raise StoreCorruptError(f"{t.storage.path}: the IVF centroids of namespace {namespace!r} have "
                                f"{part['dim']} dimensions, the store's vectors {t.dim}")
    ids, lists = t.storage.lists_of(namespace)
    missing = np.setdiff1d(space.live_ids(), ids, assume_unique=True)
    if len(missing):  # records written by a version without partitions: assign them now
        extra = _assign_ids(t, missing, part["centroids"])
        ids, lists = np.concatenate([ids, missing]), np.concatenate([lists, extra])
    try:
        t.index.set_partition(namespace, part["centroids"], ids, lists)
    except ValueError as e:  # a list number outside the stored centroids
        raise StoreCorruptError(f"{t.storage.path}: the IVF lists of namespace {namespace!r} are damaged ({e})") from e
    space.fitted_on = int(part["fitted_on"])


def lists_for(t: Target, namespace: str, vectors: np.ndarray) -> np.ndarray | None:
    """Lists of new records (dequantized vectors [n, dim]) of a namespace, or None if it has no partition."""
    space = t.index.spaces.get(namespace)
    if space is None or space.vectors is None:
        return None
    return ivf.assign_vectors(vectors, space.vectors)


def maybe_build(t: Target, namespace: str, *, progress: bool = False) -> bool:
    """Fit (or refit) a namespace's partition when it has reached the size for one; True if it did."""
    space = t.index.spaces.get(namespace)
    if space is None or t.storage.readonly:
        return False
    if space.vectors is None:
        due = space.n_alive >= index_mod.IVF_MIN_ROWS
    else:
        due = space.n_alive >= LISTS_REFIT_GROWTH * space.fitted_on
    if due:
        build(t, namespace, progress=progress)
    return due


def build(t: Target, namespace: str, *, nlist: int | None = None, seed: int = 0, progress: bool = False) -> None:
    """Fit centroids on a sample of the namespace's vectors and store every record's list, in one transaction.

    ``progress``: a progress bar on stderr while the records are assigned to lists.
    """
    _build(t, namespace, nlist=nlist, seed=seed, progress=progress)
    index_mod.release_freed_heap()  # the build's temporaries are freed only now


def _build(t: Target, namespace: str, *, nlist: int | None, seed: int, progress: bool = False) -> None:

    space = t.index.spaces[namespace]
    live = space.live_ids()
    n = len(live)
    nlist = max(1, min(ivf.default_nlist(n) if nlist is None else nlist, n))
    rng = np.random.default_rng(seed)
    m = min(n, max(nlist, ivf.VECTOR_SAMPLE_PER_LIST * nlist))
    pick = np.sort(rng.choice(live, size=m, replace=False))
    sample = t.quantizer.decode(t.storage.fetch_qvecs(pick.tolist(), t.dim))
    centroids = ivf.fit_vector_centroids(sample, nlist, seed=seed)
    del sample
    ids_all, lists_all = [], []
    blob = msgpack.packb({"nlist": nlist, "dim": int(centroids.shape[1]), "fitted_on": n,
                          "centroids": centroids.astype(np.float32).tobytes()})
    bar = progress_bar(n, progress, desc=f"IVF lists ({nlist})")
    try:
        with t.storage.transaction() as c:
            for ids, qvecs in t.storage.iter_qvecs(t.dim, namespace=namespace):
                lists = ivf.assign_vectors(t.quantizer.decode(qvecs), centroids)
                t.storage.set_lists(c, ids, lists)
                ids_all.append(ids)
                lists_all.append(lists)
                if bar is not None:
                    bar.update(len(ids))
            t.storage.set_meta(c, _key(namespace), blob)
    finally:
        if bar is not None:
            bar.close()
    t.index.set_partition(namespace, centroids, np.concatenate(ids_all), np.concatenate(lists_all))


def _assign_ids(t: Target, ids: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    lists = ivf.assign_vectors(t.quantizer.decode(t.storage.fetch_qvecs(ids.tolist(), t.dim)), centroids)
    if not t.storage.readonly:
        with t.storage.transaction() as c:
            t.storage.set_lists(c, ids, lists)
    return lists

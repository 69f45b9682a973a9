"""IVF over binary codes: k-majority centroids, probing, exhaustive probe == brute force, consistency
under adds and deletes, and inside a store (disk reads == in-RAM rerank, reopening re-embeds nothing)."""

from __future__ import annotations

import numpy as np
import pytest
from test_index import brute  # the plain-numpy reference top-k

from hashmem.memory.backends.local import ivf
from hashmem.memory.backends.local.index import HammingIndex
from hashmem.memory.kernels import topk as kernels


def test_fit_centroids_recovers_planted_clusters():
    rng = np.random.default_rng(0)
    centers = rng.integers(0, 256, size=(4, 8), dtype=np.uint8)
    noise = np.packbits((rng.random((2000, 64)) < 0.05).astype(np.uint8), axis=-1)
    codes = centers[np.repeat(np.arange(4), 500)] ^ noise
    cents = ivf.fit_centroids(kernels.to_words(codes), bits=64, nlist=4, seed=1)
    got = {tuple(c) for c in kernels.from_words(cents, 8).tolist()}
    assert got == {tuple(c) for c in centers.tolist()}
    with pytest.raises(ValueError, match="at least nlist"):
        ivf.fit_centroids(kernels.to_words(codes[:3]), bits=64, nlist=4)


def test_probe_orders_by_distance_then_index():
    cents = kernels.to_words(np.array([[0b1111], [0b0001], [0b0011], [0b0001]], dtype=np.uint8))
    q = kernels.to_words(np.array([[0]], dtype=np.uint8))[0]
    assert ivf.probe(cents, q, 3).tolist() == [1, 3, 2]
    assert ivf.probe(cents, q, 10).tolist() == [1, 3, 2, 0]
    assert ivf.default_nlist(1_000_000) == 2048 and ivf.default_nprobe(2048) == 256


def test_probe_by_asymmetric_score_ranks_by_the_projections():
    # 4-bit centroids; the code of q is 0000, but its projections lean strongly on bit 0 (the
    # first, most significant) being set: the asymmetric probe prefers the lists with bit 0 set
    cents = kernels.to_words(np.array([[0b0000_0000], [0b1000_0000], [0b0100_0000], [0b1100_0000]], np.uint8))
    q = kernels.to_words(np.array([[0]], dtype=np.uint8))[0]
    signs = ivf.centroid_signs(cents, 8)
    assert signs.shape == (4, 8) and set(np.unique(signs).tolist()) == {-1.0, 1.0}
    proj = np.array([-0.1, -0.01, -1, -1, -1, -1, -1, -1], np.float32)
    assert ivf.probe(cents, q, 4).tolist() == [0, 1, 2, 3]  # Hamming: 0, 1, 1, 2 bits
    # scores: list 0 = 6.11, list 1 = 5.91, list 2 = 6.09, list 3 = 5.89
    assert ivf.probe(cents, q, 4, signs=signs, proj=proj).tolist() == [0, 2, 1, 3]
    proj[0] = 0.5  # now bit 0 set is favoured: list 1 = 6.51, 3 = 6.49, 0 = 5.51, 2 = 5.49
    assert ivf.probe(cents, q, 2, signs=signs, proj=proj).tolist() == [1, 3]


def make_clustered(n, nbytes, seed):
    rng = np.random.default_rng(seed)
    centers = rng.integers(0, 256, size=(32, nbytes), dtype=np.uint8)
    noise = (rng.random((n, nbytes * 8)) < 0.15).astype(np.uint8)
    codes = centers[rng.integers(0, 32, n)] ^ np.packbits(noise, axis=-1)
    return codes


@pytest.mark.parametrize("bits", [64, 256])
def test_ivf_exhaustive_probe_equals_brute_force(bits):
    codes = make_clustered(6000, bits // 8, seed=bits)
    ids = np.arange(6000) * 2 + 1
    index = HammingIndex(bits, ivf_min_rows=2000)
    index.add("x", ids[:2500], codes[:2500])  # builds the IVF at 2,000 rows
    index.spaces["x"].refresh()
    index.add("x", ids[2500:], codes[2500:])  # tail, then a relayout at the next search
    space = index.spaces["x"]
    space.refresh()
    assert space.is_ivf and space.nlist > 1
    rng = np.random.default_rng(1)
    for qi in (0, 17, 4999):
        got = index.search("x", codes[qi], 50, nprobe=space.nlist)
        assert (got[0].tolist(), got[1].tolist()) == brute(codes, ids, codes[qi], 50)
        proj = rng.standard_normal(bits).astype(np.float32)  # any probe order: all lists are scanned
        got = index.search("x", codes[qi], 50, nprobe=space.nlist, query_proj=proj)
        assert (got[0].tolist(), got[1].tolist()) == brute(codes, ids, codes[qi], 50)
        ex = index.search("x", codes[qi], 50, exact=True)
        assert (ex[0].tolist(), ex[1].tolist()) == brute(codes, ids, codes[qi], 50)


def test_ivf_stays_consistent_under_adds_and_deletes():
    codes = make_clustered(9000, 16, seed=5)
    ids = np.arange(9000) + 1
    index = HammingIndex(128, ivf_min_rows=1500)
    alive = np.zeros(9000, dtype=bool)
    rng = np.random.default_rng(2)
    for s in range(0, 9000, 1000):
        index.add("x", ids[s : s + 1000], codes[s : s + 1000])
        alive[s : s + 1000] = True
        dead = rng.choice(np.flatnonzero(alive), size=600, replace=False)
        index.remove("x", ids[dead])
        alive[dead] = False
        space = index.spaces["x"]
        space.refresh()
        assert len(index) == alive.sum()
        assert space.live_ids().tolist() == ids[alive].tolist()
        # every live row sits in exactly one list (or the tail) and is found by id
        rows, found = space.rows_of(ids[alive])
        assert found.all() and len(np.unique(rows)) == alive.sum()
        if space.is_ivf:
            got = index.search("x", codes[s], 40, nprobe=space.nlist)
            assert (got[0].tolist(), got[1].tolist()) == brute(codes[alive], ids[alive], codes[s], 40)
    assert index.spaces["x"].is_ivf


def test_ivf_recall_on_clustered_codes():
    codes = make_clustered(20000, 32, seed=8)
    ids = np.arange(20000)
    index = HammingIndex(256, ivf_min_rows=10000)
    index.add("x", ids, codes)
    hits = 0
    for qi in range(0, 20000, 1000):
        got = index.search("x", codes[qi] ^ 1, 20)[0]
        ref = brute(codes, ids, codes[qi] ^ 1, 20)[0]
        hits += len(set(got.tolist()) & set(ref))
    assert hits / (20 * 20) >= 0.9


# -- inside a store ------------------------------------------------------------------------


@pytest.fixture
def ivf_store(tmp_path, monkeypatch):
    """A 3,000-passage store (embeddings given) whose index switches to IVF from 1,000 rows."""
    from hashmem.evaluation import bench
    from hashmem.memory import Memory
    from hashmem.memory.backends.local import index as index_mod

    monkeypatch.setattr(index_mod, "IVF_MIN_ROWS", 1000)
    rng = np.random.default_rng(0)
    mix = bench.parametric_mixture(dim=384, clusters=24)
    emb = bench.draw(mix, 3000, rng)
    path = tmp_path / "ivf.db"
    with Memory(path, method="sign") as m:
        m.add([f"passage {i} on topic {i % 31}" for i in range(3000)], embeddings=emb, progress=False)
    return path, bench.draw(mix, 12, rng)


def _hits(mem, queries, **kw):
    return [[(h.id, round(h.score, 6), h.hamming) for h in hits] for hits in mem.search_embeddings(queries, 10, **kw)]


def _brute_hits(path, queries, monkeypatch):
    """The store's hits with its IVF lists ignored: every code scanned."""
    from hashmem.memory import Memory
    from hashmem.memory.backends.local import partition

    with monkeypatch.context() as mp:
        mp.setattr(partition, "load", lambda target: None)
        with Memory(path, create=False) as mem:
            assert not mem.index.spaces["default"].is_ivf
            return _hits(mem, queries)


def test_store_ivf_full_probe_equals_brute_force_and_disk_reads_equal_ram(ivf_store, monkeypatch):
    from hashmem.memory import Memory

    path, queries = ivf_store
    with Memory(path, create=False) as mem:
        space = mem.index.spaces["default"]
        assert space.is_ivf and space.vectors is not None and len(mem) == 3000
        mem.index.nprobe = space.nlist
        full_probe = _hits(mem, queries)
        mem.index.nprobe = None
        default_probe = _hits(mem, queries)
        # the int8 rerank reads C vectors from SQLite per query; an all-in-RAM copy gives the same hits
        ram = {int(i): v for i, v in zip(*_all_qvecs(mem), strict=True)}
        monkeypatch.setattr(mem.storage, "fetch_qvecs",
                            lambda ids, dim: np.stack([ram[int(i)] for i in ids]) if ids else np.zeros((0, dim), np.int8))
        assert _hits(mem, queries) == default_probe
    brute_hits = _brute_hits(path, queries, monkeypatch)
    assert full_probe == brute_hits
    # the default probe finds nearly the same top-10
    same = np.mean([len({h[0] for h in a} & {h[0] for h in b}) / 10 for a, b in zip(default_probe, brute_hits,
                                                                                     strict=True)])
    assert same >= 0.9


def _all_qvecs(mem):
    ids, vecs = zip(*mem.storage.iter_qvecs(mem.config.dim), strict=True)
    return np.concatenate(ids), np.concatenate(vecs)


def _stored_lists(mem):
    return dict(mem.storage.conn.execute("SELECT id, list FROM ivf_lists").fetchall())


def _index_lists(space):
    """id → list as the index holds it (main rows by offsets, tail rows by tail_lists)."""
    out = {}
    for li in range(space.nlist):
        for r in range(space.offsets[li], space.offsets[li + 1]):
            if space.alive[r]:
                out[int(space.ids[r])] = li
    for j, r in enumerate(range(space.main, space.size)):
        if space.alive[r]:
            out[int(space.ids[r])] = int(space.tail_lists[j])
    return out


def test_reopening_reads_stored_lists_not_vectors_and_embeds_nothing(ivf_store, monkeypatch):
    from hashmem.memory import Memory
    from hashmem.memory.backends.local.storage import Storage
    from hashmem.memory.embedding.embedder import Embedder

    path, queries = ivf_store
    embedded: list[int] = []
    real = Embedder.encode
    monkeypatch.setattr(Embedder, "encode", lambda self, texts, **kw: embedded.append(len(texts)) or real(self, texts, **kw))

    def no_vectors(*a, **kw):
        raise AssertionError("opening read stored vectors")

    with monkeypatch.context() as mp:
        mp.setattr(Storage, "iter_qvecs", no_vectors)
        mp.setattr(Storage, "fetch_qvecs", no_vectors)
        mem = Memory(path, create=False)
    with mem:
        space = mem.index.spaces["default"]
        assert space.is_ivf and space.fitted_on == 1024  # fitted once, when the store passed 1,000
        assert mem.stats().ivf == {"default": {"nlist": space.nlist, "lists_from": "vectors", "fitted_on": 1024}}
        stored = _stored_lists(mem)
        assert len(stored) == 3000 and stored == _index_lists(space)
        assert len(_hits(mem, queries[:1])[0]) == 10
    assert sum(embedded) <= 1  # at most the model's fingerprint probe, never a passage


def test_adds_and_deletes_keep_lists_consistent_with_the_store(ivf_store, monkeypatch):
    from hashmem.evaluation import bench
    from hashmem.memory import Memory

    path, queries = ivf_store
    rng = np.random.default_rng(5)
    new = bench.draw(bench.parametric_mixture(dim=384, clusters=24), 500, rng)
    with Memory(path, create=False) as mem:
        ids = mem.add([f"late passage {i}" for i in range(500)], embeddings=new, progress=False)
        space = mem.index.spaces["default"]
        stored = _stored_lists(mem)
        assert len(stored) == 3500 and stored == _index_lists(space)
        # a new passage is found through its list: its own vector is its nearest neighbour
        hits = mem.search_embeddings(new[:20], 1)
        assert [h[0].id for h in hits] == ids[:20]
        gone = ids[:50] + list(range(1, 101))
        assert mem.delete(gone) == 150
        stored = _stored_lists(mem)
        assert len(stored) == 3350 and not set(gone) & set(stored) and stored == _index_lists(space)
        assert not {h.id for hs in mem.search_embeddings(new[:50], 5) for h in hs} & set(ids[:50])
    with Memory(path, create=False) as mem:  # the same after reopening
        assert _stored_lists(mem) == _index_lists(mem.index.spaces["default"]) and len(mem) == 3350


def test_partition_refits_after_growth_and_old_stores_get_one(ivf_store, monkeypatch):
    from hashmem.evaluation import bench
    from hashmem.memory import Memory
    from hashmem.memory.backends.local import index as index_mod
    from hashmem.memory.backends.local import partition

    path, _ = ivf_store
    monkeypatch.setattr(partition, "LISTS_REFIT_GROWTH", 1.1)
    rng = np.random.default_rng(6)
    with Memory(path, create=False) as mem:
        before = partition.stored(mem.storage, "default")
        mem.add([f"more {i}" for i in range(400)],
                embeddings=bench.draw(bench.parametric_mixture(dim=384, clusters=24), 400, rng), progress=False)
        after = partition.stored(mem.storage, "default")
        assert before["fitted_on"] == 1024 and 3000 < after["fitted_on"] <= 3400  # refitted during the add
        assert _stored_lists(mem) == _index_lists(mem.index.spaces["default"])
        # a store written before partitions existed: no table, no centroids
        with mem.storage.transaction() as c:
            c.execute("DROP TABLE ivf_lists")
            c.execute("DELETE FROM meta WHERE key = 'ivf.default'")
    with Memory(path, create=False) as mem:  # opened for writing: fitted and stored once
        assert mem.index.spaces["default"].vectors is not None and len(_stored_lists(mem)) == 3400
    monkeypatch.setattr(index_mod, "IVF_MIN_ROWS", 10**9)
    with Memory(path, create=False) as mem:  # below the threshold now, but the stored lists stay in use
        assert mem.index.spaces["default"].vectors is not None


def test_read_only_store_without_stored_lists_falls_back_to_code_lists(ivf_store, monkeypatch):
    from hashmem.memory import Memory
    from hashmem.memory.backends.local import partition

    path, queries = ivf_store
    with Memory(path, create=False) as mem:
        with mem.storage.transaction() as c:
            c.execute("DELETE FROM ivf_lists")
            c.execute("DELETE FROM meta WHERE key = 'ivf.default'")
    real_load = partition.load
    monkeypatch.setattr(partition, "load", lambda target: None)
    with Memory(path, create=False) as mem:
        mem.storage.readonly = True  # as for a file without write permission (chmod does not bind root)
        real_load(partition.Target(mem.storage, mem.index, mem.config.dim, mem.quantizer))
        space = mem.index.spaces["default"]
        assert space.is_ivf and space.vectors is None  # k-majority lists over the codes, nothing written
        assert partition.stored(mem.storage, "default") is None and not _stored_lists(mem)
        assert len(_hits(mem, queries[:2])[0]) == 10


def test_vector_centroids_recover_planted_directions_and_probe_by_score():
    rng = np.random.default_rng(3)
    dirs = rng.standard_normal((6, 32)).astype(np.float32)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    x = dirs[np.repeat(np.arange(6), 200)] + 0.05 * rng.standard_normal((1200, 32)).astype(np.float32)
    cents = ivf.fit_vector_centroids(x, 6, seed=1)
    assert np.allclose(np.linalg.norm(cents, axis=1), 1, atol=1e-5)
    assert sorted(np.argmax(cents @ dirs.T, axis=1).tolist()) == list(range(6))  # one centroid per direction
    lists = ivf.assign_vectors(x, cents)
    assert all(len(set(lists[i * 200 : (i + 1) * 200].tolist())) == 1 for i in range(6))
    q = dirs[2]
    assert ivf.probe_vectors(cents, q, 1).tolist() == [int(np.argmax(cents @ q))]
    assert ivf.probe_vectors(cents, q, 6).tolist() == np.lexsort((np.arange(6), -(cents @ q))).tolist()
    with pytest.raises(ValueError, match="at least nlist"):
        ivf.fit_vector_centroids(x[:3], 6)


def test_vector_partition_index_full_probe_equals_brute_force_and_needs_lists():
    rng = np.random.default_rng(4)
    vecs = rng.standard_normal((5000, 16)).astype(np.float32)
    codes = np.packbits(vecs[:, :8] > 0, axis=-1)  # 8-bit codes: many ties
    ids = np.arange(5000) * 3 + 2
    cents = ivf.fit_vector_centroids(vecs[:2000], 20)
    index = HammingIndex(8, ivf_min_rows=None)
    index.add("x", ids[:4000], codes[:4000])
    index.set_partition("x", cents, ids[:4000][::-1], ivf.assign_vectors(vecs[:4000], cents)[::-1])  # any order
    space = index.spaces["x"]
    assert space.is_ivf and space.nlist == 20 and space.vectors is not None
    with pytest.raises(ValueError, match="list of every new row"):
        index.add("x", ids[4000:4001], codes[4000:4001])
    for s in range(4000, 5000, 250):  # tail rows with their lists, folded in as it grows
        index.add("x", ids[s : s + 250], codes[s : s + 250], ivf.assign_vectors(vecs[s : s + 250], cents))
    index.remove("x", ids[::7])
    alive = np.ones(5000, bool)
    alive[::7] = False
    for qi in (0, 9, 4999):
        got = index.search("x", codes[qi], 60, nprobe=20, query_vec=vecs[qi])
        assert (got[0].tolist(), got[1].tolist()) == brute(codes[alive], ids[alive], codes[qi], 60)
        # without the query vector the partition cannot be probed: every row is scanned
        got = index.search("x", codes[qi], 60)
        assert (got[0].tolist(), got[1].tolist()) == brute(codes[alive], ids[alive], codes[qi], 60)
    with pytest.raises(ValueError, match="every live id"):
        index.set_partition("x", cents, ids[:10], np.zeros(10, np.int32))


def test_stats_command_says_how_a_namespace_is_searched(ivf_store):
    import json

    from click.testing import CliRunner

    from hashmem.cli.main import cli

    path, _ = ivf_store
    out = CliRunner().invoke(cli, ["--store", str(path), "stats"], catch_exceptions=False).output
    assert "ivf        default:" in out and "lists fitted on the vectors of 1024 passages" in out
    d = json.loads(CliRunner().invoke(cli, ["--store", str(path), "stats", "--json"], catch_exceptions=False).output)
    assert d["ivf"]["default"]["lists_from"] == "vectors"


def test_damaged_ivf_lists_or_centroids_are_a_one_line_error_and_change_nothing(ivf_store):
    import hashlib

    from click.testing import CliRunner

    from hashmem.cli.main import cli
    from hashmem.memory import Memory, StoreCorruptError

    path, _ = ivf_store
    with Memory(path, create=False) as mem:
        with mem.storage.transaction() as c:
            c.execute("UPDATE ivf_lists SET list = 99999 WHERE id = (SELECT min(id) FROM ivf_lists)")
        mem.storage.checkpoint()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(StoreCorruptError, match="IVF lists of namespace 'default' are damaged"):
        Memory(path, create=False)
    r = CliRunner().invoke(cli, ["--store", str(path), "stats"])
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1 and "damaged" in r.output
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    from hashmem.memory.backends.local.storage import Storage

    storage = Storage(path, create=False)  # mend the list, then cut the stored centroids short
    with storage.transaction() as c:
        c.execute("UPDATE ivf_lists SET list = 0 WHERE list = 99999")
        storage.set_meta(c, "ivf.default", bytes(storage.get_meta("ivf.default"))[:-100])
    storage.checkpoint()
    storage.close()
    with pytest.raises(StoreCorruptError, match="IVF partition of namespace 'default' is damaged"):
        Memory(path, create=False)

"""Popcount top-k kernels against a plain-Python reference, tie-aware, for every backend."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hashmem.memory.kernels import topk as kernels

BACKENDS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(not kernels.numba_available(),
                                                                    reason="numba not installed"))]


def reference_topk(codes: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int, alive=None):
    """Plain Python: popcount of XOR byte by byte, sorted by (distance, id)."""
    pairs = []
    for row, (code, i) in enumerate(zip(codes.tolist(), ids.tolist(), strict=True)):
        if alive is not None and not alive[row]:
            continue
        d = sum(bin(a ^ b).count("1") for a, b in zip(code, query.tolist(), strict=True))
        pairs.append((d, i))
    pairs.sort()
    return [i for _, i in pairs[:k]], [d for d, _ in pairs[:k]]


def make(n, nbytes, seed, dup=True):
    rng = np.random.default_rng(seed)
    # few distinct bit patterns per byte → many equal distances (ties everywhere)
    codes = rng.choice(np.array([0, 1, 3, 255], dtype=np.uint8), size=(n, nbytes))
    if dup and n > 10:
        codes[n // 3 : n // 3 + n // 10] = codes[0]
    ids = rng.permutation(np.arange(0, 5 * n, 5, dtype=np.int64))  # unsorted, gaps
    return codes, ids


def cols_of(codes):
    return np.ascontiguousarray(kernels.to_words(codes).T)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("nbytes", [1, 5, 8, 12, 32, 48])  # 8 bits … 384 bits, not multiples of 64
@pytest.mark.parametrize("k", [1, 7, 64])
@pytest.mark.parametrize("n_queries", [1, 3])
def test_topk_matches_python_reference(backend, nbytes, k, n_queries):
    codes, ids = make(600, nbytes, seed=nbytes * 31 + k)
    queries = codes[[0, 5, 77][:n_queries]]
    got_ids, got_d = kernels.hamming_topk(kernels.to_words(queries), cols_of(codes), ids, k, bits=8 * nbytes,
                                          backend=backend)
    for q in range(n_queries):
        ref_ids, ref_d = reference_topk(codes, ids, queries[q], k)
        assert got_ids[q].tolist() == ref_ids
        assert got_d[q].tolist() == ref_d


@pytest.mark.parametrize("backend", BACKENDS)
def test_mask_range_and_padding(backend):
    codes, ids = make(3000, 32, seed=3)
    rng = np.random.default_rng(0)
    alive = rng.random(len(codes)) < 0.3
    q = codes[10:11]
    got_ids, got_d = kernels.hamming_topk(kernels.to_words(q), cols_of(codes), ids, 50, bits=256, mask=alive,
                                          lo=100, hi=2500, backend=backend)
    sub = np.zeros_like(alive)
    sub[100:2500] = alive[100:2500]
    ref_ids, ref_d = reference_topk(codes, ids, q[0], 50, alive=sub)
    assert got_ids[0].tolist() == ref_ids and got_d[0].tolist() == ref_d
    # fewer rows than k: the tail is padding
    few = np.zeros_like(alive)
    few[[4, 9]] = True
    got_ids, got_d = kernels.hamming_topk(kernels.to_words(q), cols_of(codes), ids, 5, bits=256, mask=few,
                                          backend=backend)
    assert got_ids[0, 2:].tolist() == [-1, -1, -1]
    assert (got_d[0, 2:] == kernels.PAD_DISTANCE).all()
    assert sorted(got_ids[0, :2].tolist()) == sorted(ids[[4, 9]].tolist())


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_identical_codes_ties_by_id(backend):
    codes = np.full((5000, 16), 7, dtype=np.uint8)
    ids = np.random.default_rng(1).permutation(5000).astype(np.int64) + 100
    got_ids, got_d = kernels.hamming_topk(kernels.to_words(codes[:2]), cols_of(codes), ids, 400, bits=128,
                                          backend=backend)
    assert got_ids[0].tolist() == list(range(100, 500)) and (got_d == 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_segments_equal_reference(backend):
    codes, ids = make(4000, 32, seed=9)
    q = kernels.to_words(codes[[1, 2]])
    starts = np.array([0, 1000, 3500, 200])
    ends = np.array([300, 2000, 4000, 250])
    ptr = np.array([0, 3, 4])
    got_ids, got_d = kernels.hamming_topk_segments(q, cols_of(codes), ids, 30, bits=256, starts=starts, ends=ends,
                                                   seg_ptr=ptr, backend=backend)
    for qi, segs in enumerate([[0, 1, 2], [3]]):
        sel = np.zeros(len(codes), dtype=bool)
        for s in segs:
            sel[starts[s] : ends[s]] = True
        ref_ids, ref_d = reference_topk(codes, ids, codes[qi + 1], 30, alive=sel)
        assert got_ids[qi].tolist() == ref_ids and got_d[qi].tolist() == ref_d


@pytest.mark.parametrize("backend", BACKENDS)
def test_nearest_centroids(backend):
    codes, _ = make(2000, 24, seed=4)
    cents = kernels.to_words(codes[[5, 6, 7, 5]])  # a duplicate centroid: ties go to the lower index
    got = kernels.nearest_centroids(cols_of(codes), cents, backend=backend)
    d = np.stack([kernels.distances_numpy(cols_of(codes), c) for c in cents])
    assert got.tolist() == np.argmin(d, axis=0).tolist()
    assert 3 not in set(got.tolist())


def test_bad_input_raises():
    codes, ids = make(10, 8, seed=0)
    with pytest.raises(ValueError, match="k must be positive"):
        kernels.hamming_topk(kernels.to_words(codes[:1]), cols_of(codes), ids, 0, bits=64)
    with pytest.raises(ValueError, match="queries must be uint64"):
        kernels.hamming_topk(codes[:1], cols_of(codes), ids, 3, bits=64)
    with pytest.raises(ValueError, match="not supported"):
        kernels.resolve_backend("gpu")


def test_word_round_trip():
    codes, _ = make(5, 12, seed=2)
    assert (kernels.from_words(kernels.to_words(codes), 12) == codes).all()


@pytest.mark.skipif(not kernels.numba_available(), reason="numba not installed")
@pytest.mark.parametrize("n_queries", [1, 5])
def test_multithreaded_paths_equal_numpy(n_queries, monkeypatch):
    """Large scans split rows (one query) or queries (a batch) across threads; same answer as numpy."""
    monkeypatch.setattr(kernels, "SERIAL_ROWS", 4096)  # make 150k rows "large"
    codes, ids = make(150_000, 8, seed=11)
    cols = cols_of(codes)
    q = kernels.to_words(codes[:n_queries])
    alive = np.random.default_rng(3).random(len(codes)) < 0.7
    for mask in (None, alive):
        a = kernels.hamming_topk(q, cols, ids, 100, bits=64, mask=mask, backend="numpy")
        b = kernels.hamming_topk(q, cols, ids, 100, bits=64, mask=mask, backend="numba")
        assert (a[0] == b[0]).all() and (a[1] == b[1]).all()
    starts, ends = np.array([0, 70_000] * n_queries), np.array([60_000, 150_000] * n_queries)
    ptr = np.arange(0, 2 * n_queries + 1, 2)
    a = kernels.hamming_topk_segments(q, cols, ids, 50, bits=64, starts=starts, ends=ends, seg_ptr=ptr, backend="numpy")
    b = kernels.hamming_topk_segments(q, cols, ids, 50, bits=64, starts=starts, ends=ends, seg_ptr=ptr, backend="numba")
    assert (a[0] == b[0]).all() and (a[1] == b[1]).all()


@pytest.mark.skipif(not kernels.numba_available(), reason="numba not installed")
@pytest.mark.parametrize("nbytes", [8, 16, 24, 32, 48, 64])  # the fused 1/2/4/6-word paths and the generic one
@pytest.mark.parametrize("unsorted", [False, True])
def test_batch_scan_paths_equal_numpy_with_ties_masks_and_odd_batches(nbytes, unsorted):
    """The compiled batch scan (queries scored in pairs at 256 bits, one by one otherwise) gives
    numpy's answer, ties included: codes from a 4-value alphabet make many equal distances."""
    rng = np.random.default_rng(nbytes)
    codes = rng.choice(np.array([0, 1, 3, 255], np.uint8), size=(20_000, nbytes))
    ids = np.arange(len(codes), dtype=np.int64)
    if unsorted:
        ids = rng.permutation(len(codes)).astype(np.int64)
    cols = cols_of(codes)
    q = kernels.to_words(codes[rng.choice(len(codes), 7, replace=False)])  # 7: pairs and a leftover
    alive = rng.random(len(codes)) < 0.8
    for mask in (None, alive):
        a = kernels.hamming_topk(q, cols, ids, 300, bits=8 * nbytes, mask=mask, backend="numpy")
        b = kernels.hamming_topk(q, cols, ids, 300, bits=8 * nbytes, mask=mask, backend="numba", ids_sorted=not unsorted)
        assert (a[0] == b[0]).all() and (a[1] == b[1]).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_int8_scores_match_the_float_product(backend):
    from hashmem.memory.backends.local import ivf

    rng = np.random.default_rng(9)
    cents = rng.standard_normal((300, 384)).astype(np.float32)
    cents /= np.linalg.norm(cents, axis=1, keepdims=True)
    q = rng.standard_normal(384).astype(np.float32)
    rows, scales = ivf.quantize_centroids(cents)
    got = kernels.int8_scores(rows, scales, q, backend=backend)
    assert got.dtype == np.float32 and got.shape == (300,)
    np.testing.assert_allclose(got, (rows.astype(np.float32) @ q) * scales, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got, cents @ q, atol=0.05)  # rounding to int8 moves a score by < 1 %
    exact = ivf.probe_vectors(cents, q, 30)
    fast = ivf.probe_vectors((rows, scales), q, 30, backend=backend)
    assert len(set(exact.tolist()) & set(fast.tolist())) >= 28


@pytest.mark.skipif(not kernels.numba_available(), reason="numba not installed")
def test_int8_scores_on_the_thread_pool_equal_the_serial_kernel():
    from hashmem.memory.backends.local import ivf

    rng = np.random.default_rng(10)
    rows, scales = ivf.quantize_centroids(rng.standard_normal((9000, 64)).astype(np.float32))
    q = rng.standard_normal(64).astype(np.float32)
    kern = kernels._numba_kernels()
    a, b = np.empty(9000, np.float32), np.empty(9000, np.float32)
    kern["int8_scores"](rows, scales, q, a)
    kern["int8_scores_parallel"](rows, scales, q, b)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(kernels.int8_scores(rows, scales, q), a, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not kernels.numba_available(), reason="numba not installed")
def test_parallel_kernels_from_several_threads_survive_the_workqueue_layer():
    """numba's workqueue threading layer aborts the process when two threads launch parallel
    kernels at once; the kernels take turns there (OpenMP and TBB run them concurrently)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import threading, numpy as np
        from hashmem.memory.kernels import topk as kernels
        rng = np.random.default_rng(0)
        cols = rng.integers(0, 2**63, size=(4, 300_000), dtype=np.uint64)
        ids = np.arange(300_000, dtype=np.int64)
        q = np.ascontiguousarray(cols[:, :2].T)
        want = kernels.hamming_topk(q[:1], cols, ids, 10, bits=256)
        bad = []
        def work():
            for _ in range(20):
                got = kernels.hamming_topk(q[:1], cols, ids, 10, bits=256)   # split across threads
                kernels.hamming_topk(q, cols, ids, 10, bits=256)             # a batch
                bad.append(not (got[0] == want[0]).all())
        ts = [threading.Thread(target=work) for _ in range(4)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        import numba
        print(numba.threading_layer(), any(bad))
    """)
    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                       cwd=str(Path(__file__).resolve().parents[1]))
    assert r.returncode == 0, r.stderr[-500:]
    assert r.stdout.split() == ["workqueue", "False"]


def test_a_slow_first_kernel_call_is_announced_once(monkeypatch):
    said = []
    monkeypatch.setattr(kernels, "SLOW_FIRST_CALL", 0.05)
    monkeypatch.setattr(kernels, "on_slow_compile", lambda: said.append("compiling"))
    monkeypatch.setattr(kernels, "_announced", kernels.threading.Event())
    quick = kernels._noticed(lambda x: x + 1)
    assert quick(1) == 2 and said == []  # a first call under the threshold says nothing
    slow = kernels._noticed(lambda x: (time.sleep(0.4), x)[1])
    assert slow(3) == 3 and said == ["compiling"]
    assert slow(4) == 4 and said == ["compiling"]  # only the first call is timed
    other = kernels._noticed(lambda x: (time.sleep(0.4), x)[1])
    assert other(5) == 5 and said == ["compiling"]  # once per process, however many kernels compile


@pytest.mark.slow
def test_the_first_search_on_a_machine_says_it_compiles_the_kernels(tmp_path):
    """A cold numba cache (a new machine): the CLI's first search says it compiles, and leaves the machine code
    cached for the next process (whose kernels load in well under the notice's 1.5 s on a quiet machine)."""
    from hashmem.memory import Memory

    if not kernels.numba_available():
        pytest.skip("numba is not installed")
    store = tmp_path / "s.db"
    with Memory(store) as m:
        m.add(["The cat sat on the mat.", "A dog barked at night."])
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "HF_HUB_OFFLINE": "1"}
    terminal, stderr = pty.openpty()  # the notice, like the progress bars, is for a terminal
    try:
        run = subprocess.run([sys.executable, "-c", "from hashmem.cli.main import main; main()", "--store",
                              str(store), "search", "cat", "-k", "1"], stdout=subprocess.PIPE, stderr=stderr,
                             text=True, env=env, timeout=600)
        os.close(stderr)
        said = b""
        while True:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            said += chunk
    finally:
        os.close(terminal)
    assert run.returncode == 0, said[-2000:]
    assert b"compiling the search kernels" in said and "cat" in run.stdout
    assert list((tmp_path / "numba").rglob("*topk_segments_serial*.nbi"))  # cached for the next process


def test_quiet_sets_no_compile_notice(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from hashmem.cli import group
    from hashmem.cli.main import cli

    monkeypatch.setattr(group, "stderr_is_terminal", lambda: True)
    for flags, announced in [(["-q"], False), ([], True)]:
        monkeypatch.setattr(kernels, "on_slow_compile", None)
        r = CliRunner().invoke(cli, ["--store", str(tmp_path / "s.db"), *flags, "init"], catch_exceptions=False)
        assert r.exit_code == 0 and (kernels.on_slow_compile is not None) == announced
        (tmp_path / "s.db").unlink()

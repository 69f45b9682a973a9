"""The numba-compiled Hamming kernels behind ``kernels`` (imported only when numba is installed).

Module-level functions compiled with ``cache=True``: the machine code is cached
next to this file, so only the first process on a machine pays the compile time.
See ``kernels`` for the layout, the selection scheme and the public functions.
"""

from __future__ import annotations

import functools

import numba as nb
import numpy as np
from numba import prange, types
from numba.extending import intrinsic

_BLOCK = 512  # rows per block: 4 KiB per word column, the block stays in L1 across a query group


@intrinsic
def popcount64(typingctx, x):
    """LLVM's ctpop on a uint64 (vpopcntq / popcnt where the CPU has them)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


jit = functools.partial(nb.njit, nogil=True, cache=True, error_model="numpy")

@jit
def block_distances(cols, q, b0, m, tmp):
    # distances of rows [b0, b0 + m) to q, into tmp[:m]
    block_hits(cols, q, b0, m, tmp, -1)

@jit
def compact(buf_d, buf_i, nbuf, hist, state, k):
    # state = [D, count(d < D), tie_max_id]; keep d < D, and ties at D with the smallest ids
    D = state[0]
    j = 0
    for e in range(nbuf):
        if buf_d[e] < D or (buf_d[e] == D and buf_i[e] <= state[2]):
            buf_d[j] = buf_d[e]
            buf_i[j] = buf_i[e]
            j += 1
    nbuf = j
    ties = 0
    for e in range(nbuf):
        if buf_d[e] == D:
            ties += 1
    need = k - state[1]
    if ties > need and 2 * nbuf > len(buf_d):
        # too many ties at D to fit: keep only the `need` smallest ids among them
        tie_ids = np.empty(ties, np.int64)
        t = 0
        for e in range(nbuf):
            if buf_d[e] == D:
                tie_ids[t] = buf_i[e]
                t += 1
        tie_ids.sort()
        limit = tie_ids[need - 1]
        j = 0
        for e in range(nbuf):
            if buf_d[e] < D or buf_i[e] <= limit:
                buf_d[j] = buf_d[e]
                buf_i[j] = buf_i[e]
                j += 1
        nbuf = j
        hist[D] = need
        state[2] = limit
    return nbuf

@jit
def accept(d, row_id, buf_d, buf_i, nbuf, hist, state, k):
    # precondition: d <= state[0] (and, when d == D, row_id <= tie_max_id)
    if nbuf == len(buf_d):
        nbuf = compact(buf_d, buf_i, nbuf, hist, state, k)
        if not (d < state[0] or (d == state[0] and row_id <= state[2])):
            return nbuf
    buf_d[nbuf] = d
    buf_i[nbuf] = row_id
    nbuf += 1
    hist[d] += 1
    if d < state[0]:
        state[1] += 1
        while state[1] >= k:
            state[0] -= 1
            state[1] -= hist[state[0]]
            state[2] = 9223372036854775807
    return nbuf

@jit
def _select(tmp, c0, c1, b0, ids, mask, has_mask, sorted_ids, k, buf_d, buf_i, nbuf, hist, state):
    for i in range(c0, c1):
        d = tmp[i]
        if d <= state[0]:
            if d == state[0]:
                if sorted_ids and state[1] + hist[d] >= k:
                    continue
                if ids[b0 + i] > state[2]:
                    continue
            if has_mask and not mask[b0 + i]:
                continue
            nbuf = accept(d, ids[b0 + i], buf_d, buf_i, nbuf, hist, state, k)
    return nbuf

@jit
def block_hits(cols, q, b0, m, tmp, bound):
    # Distances of rows [b0, b0 + m) to q into tmp[:m], and how many are at or below bound.
    # Codes of 1, 2, 4 or 6 words (64-384 bits) are scored in one pass over the rows, each loop
    # written out so it vectorizes (tmp written once, the count taken on the way); other lengths
    # go word by word.
    hits = 0
    nw = cols.shape[0]
    if nw == 4:
        c0 = cols[0, b0 : b0 + m]
        c1 = cols[1, b0 : b0 + m]
        c2 = cols[2, b0 : b0 + m]
        c3 = cols[3, b0 : b0 + m]
        q0, q1, q2, q3 = q[0], q[1], q[2], q[3]
        for i in range(m):
            d = (popcount64(c0[i] ^ q0) + popcount64(c1[i] ^ q1)
                 + popcount64(c2[i] ^ q2) + popcount64(c3[i] ^ q3))
            tmp[i] = d
            hits += d <= bound
        return hits
    if nw == 6:
        c0 = cols[0, b0 : b0 + m]
        c1 = cols[1, b0 : b0 + m]
        c2 = cols[2, b0 : b0 + m]
        c3 = cols[3, b0 : b0 + m]
        c4 = cols[4, b0 : b0 + m]
        c5 = cols[5, b0 : b0 + m]
        q0, q1, q2, q3, q4, q5 = q[0], q[1], q[2], q[3], q[4], q[5]
        for i in range(m):
            d = (popcount64(c0[i] ^ q0) + popcount64(c1[i] ^ q1) + popcount64(c2[i] ^ q2)
                 + popcount64(c3[i] ^ q3) + popcount64(c4[i] ^ q4) + popcount64(c5[i] ^ q5))
            tmp[i] = d
            hits += d <= bound
        return hits
    if nw == 2:
        c0 = cols[0, b0 : b0 + m]
        c1 = cols[1, b0 : b0 + m]
        q0, q1 = q[0], q[1]
        for i in range(m):
            d = popcount64(c0[i] ^ q0) + popcount64(c1[i] ^ q1)
            tmp[i] = d
            hits += d <= bound
        return hits
    if nw == 1:
        c0 = cols[0, b0 : b0 + m]
        q0 = q[0]
        for i in range(m):
            d = popcount64(c0[i] ^ q0)
            tmp[i] = d
            hits += d <= bound
        return hits
    # other lengths: word by word, two words per pass over tmp
    for i in range(m):
        tmp[i] = 0
    w = 0
    while w + 1 < nw:
        c0 = cols[w, b0 : b0 + m]
        c1 = cols[w + 1, b0 : b0 + m]
        q0, q1 = q[w], q[w + 1]
        for i in range(m):
            tmp[i] += popcount64(c0[i] ^ q0) + popcount64(c1[i] ^ q1)
        w += 2
    if w < nw:
        c0 = cols[w, b0 : b0 + m]
        q0 = q[w]
        for i in range(m):
            tmp[i] += popcount64(c0[i] ^ q0)
    for i in range(m):
        hits += tmp[i] <= bound
    return hits

@jit
def _bound(sorted_ids, k, hist, state):
    # the largest distance that can still enter: D, or D - 1 when ties at D already lose on id
    bound = state[0]
    if sorted_ids and state[1] + hist[bound] >= k:
        bound -= 1
    return bound

@jit
def select_block(tmp, m, b0, bound, ids, mask, has_mask, sorted_ids, k, buf_d, buf_i, nbuf, hist, state):
    # offer the block's rows at or below bound, 64 at a time (a vectorized pre-check skips the rest)
    for c0 in range(0, m, 64):
        c1 = min(c0 + 64, m)
        hits = 0
        for i in range(c0, c1):
            hits += tmp[i] <= bound
        if hits == 0:
            continue
        nbuf = _select(tmp, c0, c1, b0, ids, mask, has_mask, sorted_ids, k, buf_d, buf_i, nbuf, hist, state)
    return nbuf

@jit
def scan(cols, ids, mask, has_mask, sorted_ids, q, lo, hi, k, tmp, buf_d, buf_i, nbuf, hist, state):
    # sorted_ids: ids increase with the row, so once k rows are at or below D a later row at D
    # loses its tie and only d < D can enter
    for b0 in range(lo, hi, _BLOCK):
        m = min(_BLOCK, hi - b0)
        bound = _bound(sorted_ids, k, hist, state)
        # once D settles most blocks hold no row at or below it: they cost one vectorized pass
        if block_hits(cols, q, b0, m, tmp, bound) == 0:
            continue
        nbuf = select_block(tmp, m, b0, bound, ids, mask, has_mask, sorted_ids, k, buf_d, buf_i, nbuf, hist, state)
    return nbuf

@jit
def block_hits_pair(cols, qa, qb, b0, m, ta, tb, bound_a, bound_b):
    # block_hits for two queries of 256 bits at once: each code word is loaded once for both
    ha = 0
    hb = 0
    c0 = cols[0, b0 : b0 + m]
    c1 = cols[1, b0 : b0 + m]
    c2 = cols[2, b0 : b0 + m]
    c3 = cols[3, b0 : b0 + m]
    a0, a1, a2, a3 = qa[0], qa[1], qa[2], qa[3]
    e0, e1, e2, e3 = qb[0], qb[1], qb[2], qb[3]
    for i in range(m):
        x0, x1, x2, x3 = c0[i], c1[i], c2[i], c3[i]
        da = popcount64(x0 ^ a0) + popcount64(x1 ^ a1) + popcount64(x2 ^ a2) + popcount64(x3 ^ a3)
        db = popcount64(x0 ^ e0) + popcount64(x1 ^ e1) + popcount64(x2 ^ e2) + popcount64(x3 ^ e3)
        ta[i] = da
        tb[i] = db
        ha += da <= bound_a
        hb += db <= bound_b
    return ha, hb

@jit
def finish(buf_d, buf_i, nbuf, k, out_i, out_d):
    # sort the buffer by (distance, id) and write the first k
    order = np.argsort(buf_i[:nbuf], kind="mergesort")
    d_sorted = buf_d[:nbuf][order]
    order2 = np.argsort(d_sorted, kind="mergesort")
    n_out = min(k, nbuf)
    for j in range(n_out):
        e = order[order2[j]]
        out_i[j] = buf_i[e]
        out_d[j] = buf_d[e]

@jit
def _segment_task(cols, ids, mask, has_mask, sorted_ids, queries, k, bits, starts, ends, seg_ptr, n_parts, task,
                  part_i, part_d):
    """One (query, part) task: this part's share of the query's segments, top-k into part_i/part_d."""
    cap = max(2 * k, k + 2 * _BLOCK)
    q = task // n_parts
    p = task % n_parts
    total = 0
    for s in range(seg_ptr[q], seg_ptr[q + 1]):
        total += ends[s] - starts[s]
    # this part's rows: [p * total // n_parts, (p + 1) * total // n_parts) of the concatenation
    r0 = p * total // n_parts
    r1 = (p + 1) * total // n_parts
    tmp = np.empty(_BLOCK, np.int32)
    buf_d = np.empty(cap, np.int32)
    buf_i = np.empty(cap, np.int64)
    hist = np.zeros(bits + 2, np.int64)
    state = np.array([bits, 0, 9223372036854775807], np.int64)
    nbuf = 0
    seen = 0
    for s in range(seg_ptr[q], seg_ptr[q + 1]):
        a = starts[s]
        b = ends[s]
        lo = max(a, a + r0 - seen)
        hi = min(b, a + r1 - seen)
        seen += b - a
        if lo < hi:
            nbuf = scan(cols, ids, mask, has_mask, sorted_ids, queries[q], lo, hi, k, tmp,
                        buf_d, buf_i, nbuf, hist, state)
    finish(buf_d, buf_i, nbuf, k, part_i[q, p], part_d[q, p])


@jit(parallel=True)
def topk_segments(cols, ids, mask, has_mask, sorted_ids, queries, k, bits, starts, ends, seg_ptr, n_parts):
    """Each (query, part) task scans its share of the query's segments; parts merge after."""
    nq = queries.shape[0]
    part_i = np.full((nq, n_parts, k), -1, np.int64)
    part_d = np.full((nq, n_parts, k), 2147483647, np.int32)
    for task in prange(nq * n_parts):
        _segment_task(cols, ids, mask, has_mask, sorted_ids, queries, k, bits, starts, ends, seg_ptr, n_parts, task,
                      part_i, part_d)
    return part_i, part_d


@jit
def topk_segments_serial(cols, ids, mask, has_mask, sorted_ids, queries, k, bits, starts, ends, seg_ptr):
    """``topk_segments`` in the calling thread, one part per query: no thread-pool round trip for
    small scans (an IVF probe, a small namespace), which on a busy machine costs more than the scan."""
    nq = queries.shape[0]
    part_i = np.full((nq, 1, k), -1, np.int64)
    part_d = np.full((nq, 1, k), 2147483647, np.int32)
    for task in range(nq):
        _segment_task(cols, ids, mask, has_mask, sorted_ids, queries, k, bits, starts, ends, seg_ptr, 1, task,
                      part_i, part_d)
    return part_i, part_d


@jit(parallel=True)
def topk_blocked(cols, ids, mask, has_mask, sorted_ids, queries, k, bits, lo, hi, n_groups):
    """Brute force for a batch: each worker takes a group of queries and walks all rows once,
    block by block, scoring the block against every query of its group (the block stays in cache)."""
    nq = queries.shape[0]
    cap = max(2 * k, k + 2 * _BLOCK)
    out_i = np.full((nq, k), -1, np.int64)
    out_d = np.full((nq, k), 2147483647, np.int32)
    for g in prange(n_groups):
        q0 = g * nq // n_groups
        q1 = (g + 1) * nq // n_groups
        nqg = q1 - q0
        tmp = np.empty(_BLOCK, np.int32)
        buf_d = np.empty((nqg, cap), np.int32)
        buf_i = np.empty((nqg, cap), np.int64)
        hist = np.zeros((nqg, bits + 2), np.int64)
        state = np.empty((nqg, 3), np.int64)
        nbuf = np.zeros(nqg, np.int64)
        for j in range(nqg):
            state[j, 0] = bits
            state[j, 1] = 0
            state[j, 2] = 9223372036854775807
        tmp_b = np.empty(_BLOCK, np.int32)
        paired = cols.shape[0] == 4  # 256-bit codes: two queries per pass over the block
        for b0 in range(lo, hi, _BLOCK):
            b1 = min(b0 + _BLOCK, hi)
            m = b1 - b0
            j = 0
            while paired and j + 1 < nqg:
                ba = _bound(sorted_ids, k, hist[j], state[j])
                bb = _bound(sorted_ids, k, hist[j + 1], state[j + 1])
                ha, hb = block_hits_pair(cols, queries[q0 + j], queries[q0 + j + 1], b0, m, tmp, tmp_b, ba, bb)
                if ha:
                    nbuf[j] = select_block(tmp, m, b0, ba, ids, mask, has_mask, sorted_ids, k, buf_d[j],
                                           buf_i[j], nbuf[j], hist[j], state[j])
                if hb:
                    nbuf[j + 1] = select_block(tmp_b, m, b0, bb, ids, mask, has_mask, sorted_ids, k,
                                               buf_d[j + 1], buf_i[j + 1], nbuf[j + 1], hist[j + 1], state[j + 1])
                j += 2
            for jj in range(j, nqg):
                nbuf[jj] = scan(cols, ids, mask, has_mask, sorted_ids, queries[q0 + jj], b0, b1, k, tmp,
                                buf_d[jj], buf_i[jj], nbuf[jj], hist[jj], state[jj])
        for j in range(nqg):
            finish(buf_d[j], buf_i[j], nbuf[j], k, out_i[q0 + j], out_d[q0 + j])
    return out_i, out_d

@jit(parallel=True)
def nearest_centroid(cols, centroid_rows, lo, hi, out):
    """out[r] = index of the centroid (row-major uint64 [c, w]) nearest to row lo + r; ties → lowest."""
    n = hi - lo
    c = centroid_rows.shape[0]
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    for blk in prange(n_blocks):
        b0 = lo + blk * _BLOCK
        m = min(_BLOCK, hi - b0)
        tmp = np.empty(_BLOCK, np.int32)
        best = np.full(_BLOCK, 2147483647, np.int32)
        arg = np.zeros(_BLOCK, np.int32)
        for j in range(c):
            block_distances(cols, centroid_rows[j], b0, m, tmp)
            for i in range(m):
                if tmp[i] < best[i]:
                    best[i] = tmp[i]
                    arg[i] = j
        for i in range(m):
            out[b0 - lo + i] = arg[i]



@nb.njit(nogil=True, cache=True, fastmath=True)
def int8_scores(rows, scales, q, out):
    """out[j] = scales[j] * (rows[j] . q): int8 rows [n, dim] (per-row scale) against a float32 query."""
    for j in range(rows.shape[0]):
        s = np.float32(0.0)
        row = rows[j]
        for d in range(row.shape[0]):
            s += np.float32(row[d]) * q[d]
        out[j] = s * scales[j]


@nb.njit(nogil=True, cache=True, fastmath=True, parallel=True)
def int8_scores_parallel(rows, scales, q, out):
    """``int8_scores`` on the thread pool, in blocks of 1,024 rows."""
    n = rows.shape[0]
    n_blocks = (n + 1023) // 1024
    for b in prange(n_blocks):
        for j in range(b * 1024, min(n, (b + 1) * 1024)):
            s = np.float32(0.0)
            row = rows[j]
            for d in range(row.shape[0]):
                s += np.float32(row[d]) * q[d]
            out[j] = s * scales[j]


@jit
def merge_parts(pi, pd, k):
    """[nq, parts, k] per-part top-k, each sorted by (distance, id) and padded with (-1, PAD) → [nq, k]."""
    nq, parts = pi.shape[0], pi.shape[1]
    out_i = np.full((nq, k), -1, np.int64)
    out_d = np.full((nq, k), 2147483647, np.int32)
    heads = np.zeros(parts, np.int64)
    for q in range(nq):
        heads[:] = 0
        for j in range(k):
            best = -1
            for p in range(parts):
                h = heads[p]
                if h >= k or pi[q, p, h] < 0:
                    continue
                if best < 0:
                    best = p
                    continue
                bh = heads[best]
                if pd[q, p, h] < pd[q, best, bh] or (pd[q, p, h] == pd[q, best, bh] and pi[q, p, h] < pi[q, best, bh]):
                    best = p
            if best < 0:
                break
            out_i[q, j] = pi[q, best, heads[best]]
            out_d[q, j] = pd[q, best, heads[best]]
            heads[best] += 1
    return out_i, out_d

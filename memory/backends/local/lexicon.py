"""The lexicon's tables: load the whole lexicon, look up some terms, save new terms and frequencies.

Meta rows: ``lexicon_docs`` (passages the lexicon has counted), ``lexicon_terms`` (formats 2
and 3: its terms, to refuse writing blocks over another writer's new terms).

- format 3 (``FrontCodedBlocks``): ``lexicon(block INTEGER PRIMARY KEY, terms BLOB, df BLOB,
  tail BLOB)`` in blocks of ``LEXICON_BLOCK`` consecutive term ids (block ``b`` holds ids
  ``b * LEXICON_BLOCK`` …); ``terms`` is zstd of the block's terms front-coded
  (``lexicon_codec.front_encode``): level 19 once the block is full; while it grows, its
  older terms at level 9 and its newest (at most ``LEXICON_TAIL``) in ``tail`` at level 3, so
  an add compresses only the tail (``FrontCodedBlocks.grow_block``). ``df`` is zstd (level
  3) of their document frequencies (``lexicon_codec.pack_df``). A block is rewritten by a
  delete then an insert, so its old pages are reused at once.
- format 2 (``LexiconBlocks``): the same table without ``tail``, blocks of
  ``LEXICON_BLOCK_2`` terms: zstd of the terms joined by ``\\n`` (level 19 once full, else 3),
  and zstd of the frequencies as uint32 little-endian.
- format 1 (``TermsTable``): ``terms(id INTEGER PRIMARY KEY, term TEXT UNIQUE, df INTEGER)``.

One copy of each term: no index on the term (the in-memory ``hints.Lexicon`` maps term → id).

What it does not do: count terms or assign ids (``hints.Lexicon.observe``), or code bytes
(``lexicon_codec``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import numpy as np

from ...errors import StoreCorruptError, StoreError
from ...hints import Lexicon
from .lexicon_codec import front_decode, front_pack, front_parts, pack_df, unpack_df
from .sqlfile import StoreFile, chunks

LEXICON_BLOCK = 65536  # term ids per lexicon block (format 3)
LEXICON_BLOCK_2 = 8192  # term ids per lexicon block of a format 2 store
LEXICON_TAIL = 8192  # format 3: a growing block's newest terms, compressed apart until there are more


class TermsTable:
    """Format 1: one row per term."""

    def __init__(self, file: StoreFile) -> None:
        self.file = file

    def load(self) -> Lexicon:
        """The whole lexicon.

        Raises:
            StoreCorruptError: a gap in the term ids, or a block that does not decode.
        """
        lex = Lexicon(n_docs=int(self.file.get_meta("lexicon_docs") or 0))
        rows = self.file.conn.execute("SELECT id, term, df FROM terms ORDER BY id").fetchall()
        for expected, (i, term, df) in enumerate(rows):
            if i != expected:
                raise StoreCorruptError(f"{self.file.path}: the lexicon has a gap at term id {expected}")
            lex.terms.append(term)
            lex.ids[term] = i
            lex.df.append(df)
        return lex

    def terms(self, ids: Sequence[int]) -> dict[int, str]:
        """id → term for the given lexicon ids (without loading the whole lexicon)."""
        out: dict[int, str] = {}
        for chunk in chunks(sorted(set(ids)), 900):
            q = ",".join("?" * len(chunk))
            out.update(self.file.conn.execute(f"SELECT id, term FROM terms WHERE id IN ({q})", chunk).fetchall())
        return out

    def save(self, conn: sqlite3.Connection, lex: Lexicon, new_ids: Sequence[int], touched: set[int]) -> None:
        """Persist new terms and changed document frequencies inside the caller's transaction."""
        new = set(new_ids)
        conn.executemany(
            "INSERT INTO terms(id, term, df) VALUES (?, ?, ?)", ((i, lex.terms[i], lex.df[i]) for i in new_ids)
        )
        conn.executemany(
            "UPDATE terms SET df = ? WHERE id = ?", ((lex.df[i], i) for i in touched if i not in new)
        )
        self.file.set_meta(conn, "lexicon_docs", str(lex.n_docs))

    def stored_bytes(self) -> int:
        """Bytes of the terms and their frequencies (8 B) and ids (1 B), without SQLite's overhead."""
        return self.file.conn.execute(
            "SELECT coalesce(sum(length(CAST(term AS BLOB))) + 9 * count(*),0) FROM terms").fetchone()[0]


class LexiconBlocks:
    """Format 2: zstd blocks of ``LEXICON_BLOCK_2`` terms; full blocks are decoded once and kept."""

    tail_sql = "NULL"  # format 2 blocks have no tail column

    def __init__(self, file: StoreFile) -> None:
        self.file = file
        self._term_blocks: dict[int, list[str]] = {}  # full lexicon blocks (immutable), decompressed
        self._partial_block: tuple = (None, -1, [])  # (lexicon_terms count, block, terms) of the last block

    def block_size(self) -> int:
        """Term ids per block."""
        return LEXICON_BLOCK_2

    def load(self) -> Lexicon:
        """The whole lexicon (``TermsTable.load``)."""
        lex = Lexicon(n_docs=int(self.file.get_meta("lexicon_docs") or 0))
        size = self.block_size()
        for expected, (b, terms_blob, df_blob, tail_blob) in enumerate(
            self.file.conn.execute(f"SELECT block, terms, df, {self.tail_sql} FROM lexicon ORDER BY block")
        ):
            terms, df = self._unpack_block(b, terms_blob, df_blob, tail_blob)
            if b != expected or (len(lex.terms) % size and terms):
                raise StoreCorruptError(f"{self.file.path}: the lexicon has a gap at block {expected}")
            lex.terms += terms
            lex.df += df.tolist()
        lex.ids.update((t, i) for i, t in enumerate(lex.terms))
        if len(lex.ids) != len(lex.terms):
            raise StoreCorruptError(f"{self.file.path}: the lexicon holds a term twice")
        return lex

    def _unpack_block(self, block: int, terms_blob: bytes, df_blob: bytes,
                      tail_blob: bytes | None) -> tuple[list[str], np.ndarray]:
        import zstandard

        try:
            terms, df = self.decode(terms_blob, df_blob, tail_blob)
        except (zstandard.ZstdError, UnicodeDecodeError, ValueError) as e:
            raise StoreCorruptError(f"{self.file.path}: lexicon block {block} is unreadable ({e})") from e
        if len(terms) != len(df) or len(terms) > self.block_size():
            raise StoreCorruptError(f"{self.file.path}: lexicon block {block} holds {len(terms)} terms "
                                    f"and {len(df)} frequencies")
        return terms, df

    def decode(self, terms_blob: bytes, df_blob: bytes, tail_blob: bytes | None) -> tuple[list[str], np.ndarray]:
        """(terms, frequencies) of a block's stored blobs."""
        import zstandard

        terms = zstandard.decompress(terms_blob).decode("utf-8").split("\n")
        return terms, np.frombuffer(zstandard.decompress(df_blob), dtype="<u4")

    def terms(self, ids: Sequence[int]) -> dict[int, str]:
        """id → term for the given ids: only their blocks are read (full ones once per handle)."""
        out: dict[int, str] = {}
        size = self.block_size()
        wanted = sorted(set(ids))
        blocks = sorted({i // size for i in wanted})
        count = self.file.get_meta("lexicon_terms")  # terms only grow: the same count, the same last block
        partial = self._partial_block if self._partial_block[0] == count and count is not None else None
        missing = [b for b in blocks if b not in self._term_blocks and not (partial and partial[1] == b)]
        for chunk in chunks(missing, 900):
            q = ",".join("?" * len(chunk))
            for b, terms_blob, df_blob, tail_blob in self.file.conn.execute(
                f"SELECT block, terms, df, {self.tail_sql} FROM lexicon WHERE block IN ({q})", chunk
            ):
                terms, _ = self._unpack_block(b, terms_blob, df_blob, tail_blob)
                if len(terms) == size:  # a full block never changes again
                    self._term_blocks[b] = terms
                else:
                    self._partial_block = (count, b, terms)
                    out.update((b * size + j, t) for j, t in enumerate(terms))
        if partial is not None:
            out.update((i, partial[2][i % size]) for i in wanted
                       if i // size == partial[1] and i % size < len(partial[2]))
        for i in wanted:
            full = self._term_blocks.get(i // size)
            if full is not None:
                out[i] = full[i % size]
        return {i: out[i] for i in wanted if i in out}

    def save(self, conn: sqlite3.Connection, lex: Lexicon, new_ids: Sequence[int], touched: set[int]) -> None:
        """Rewrite the blocks with new terms or changed frequencies inside the caller's transaction.

        Raises:
            StoreError: another process added terms since this lexicon was loaded.
        """
        new = set(new_ids)
        # blocks are rewritten whole: refuse to write over terms another writer added since we loaded
        stored = conn.execute("SELECT value FROM meta WHERE key = 'lexicon_terms'").fetchone()
        if stored is not None and int(stored[0]) != len(lex.terms) - len(new):
            raise StoreError(f"{self.file.path}: another process added to the lexicon since this one read it; "
                             "add again (the lexicon is reloaded)")
        size = self.block_size()
        for b in sorted({i // size for i in new | touched}):
            self.write_block(conn, b, lex, new)
        self.file.set_meta(conn, "lexicon_docs", str(lex.n_docs))
        self.file.set_meta(conn, "lexicon_terms", str(len(lex.terms)))

    def write_block(self, conn: sqlite3.Connection, b: int, lex: Lexicon, new: set[int]) -> None:
        """Store block ``b`` of ``lex``, whose ids ``new`` are not stored yet."""
        import zstandard

        size = self.block_size()
        lo, hi = b * size, min((b + 1) * size, len(lex.terms))
        df = zstandard.compress(np.asarray(lex.df[lo:hi], dtype="<u4").tobytes(), 3)
        if any(lo <= i < hi for i in new):  # a full block is compressed hard, once
            terms = zstandard.compress("\n".join(lex.terms[lo:hi]).encode("utf-8"), 19 if hi - lo == size else 3)
            conn.execute("DELETE FROM lexicon WHERE block = ?", (b,))
            conn.execute("INSERT INTO lexicon(block, terms, df) VALUES (?, ?, ?)", (b, terms, df))
        else:
            conn.execute("UPDATE lexicon SET df = ? WHERE block = ?", (df, b))

    def stored_bytes(self) -> int:
        """Bytes of the blocks' ``terms`` and ``df`` blobs."""
        return self.file.conn.execute("SELECT coalesce(sum(length(terms) + length(df)),0) FROM lexicon").fetchone()[0]


class FrontCodedBlocks(LexiconBlocks):
    """Format 3: fewer, larger blocks (zstd sees more context), front-coded, with a growing tail."""

    tail_sql = "tail"

    def __init__(self, file: StoreFile) -> None:
        super().__init__(file)
        self.front_cache: tuple | None = None  # ((block, start), terms, shared, rest) last coded

    def block_size(self) -> int:
        return LEXICON_BLOCK

    def decode(self, terms_blob: bytes, df_blob: bytes, tail_blob: bytes | None) -> tuple[list[str], np.ndarray]:
        import zstandard

        terms = front_decode(zstandard.decompress(terms_blob))
        if tail_blob:
            terms += front_decode(zstandard.decompress(tail_blob))
        return terms, unpack_df(zstandard.decompress(df_blob))

    def write_block(self, conn: sqlite3.Connection, b: int, lex: Lexicon, new: set[int]) -> None:
        import zstandard

        size = self.block_size()
        lo, hi = b * size, min((b + 1) * size, len(lex.terms))
        df = zstandard.compress(pack_df(lex.df[lo:hi]), 3)  # most frequencies take one byte
        terms, tail = self.grow_block(conn, b, lex.terms[lo:hi], len(lex.terms) - len(new) - lo)
        # delete first: its pages are free for the new row (a replace fills the new row's
        # pages before it frees the old ones, and leaves a block's worth of free pages)
        conn.execute("DELETE FROM lexicon WHERE block = ?", (b,))
        conn.execute("INSERT INTO lexicon(block, terms, df, tail) VALUES (?, ?, ?, ?)", (b, terms, df, tail))

    def grow_block(self, conn: sqlite3.Connection, block: int, terms: list[str],
                   known: int) -> tuple[bytes, bytes | None]:
        """(terms, tail) blobs of a block whose first ``known`` terms were stored before.

        A full block is front-coded and compressed hard (zstd 19), once. A growing block keeps
        its older terms in ``terms`` (zstd 9) and its newest (at most ``LEXICON_TAIL``) in
        ``tail`` (zstd 3): an add codes and compresses only the tail, and the whole block again
        once the tail outgrows ``LEXICON_TAIL``.
        """
        import zstandard

        row = conn.execute("SELECT terms, tail FROM lexicon WHERE block = ?", (block,)).fetchone() \
            if known > 0 else None
        if row is not None and known >= len(terms):  # no new terms here: only the frequencies change
            return row[0], row[1]
        if len(terms) == self.block_size():
            return zstandard.compress(self._front_coded(block, 0, terms, 0), 19), None
        if row is not None:
            in_tail = int.from_bytes(zstandard.decompress(row[1])[:4], "little") if row[1] else 0
            sealed = known - in_tail
            if len(terms) - sealed <= LEXICON_TAIL:
                tail = self._front_coded(block, sealed, terms[sealed:], in_tail)
                return row[0], zstandard.compress(tail, 3)
        return zstandard.compress(self._front_coded(block, 0, terms, max(known, 0)), 9), None

    def _front_coded(self, block: int, start: int, terms: list[str], known: int) -> bytes:
        """``front_encode(terms)`` (terms from id ``block * size + start`` on), of which the first
        ``known`` were coded before: the last part this handle coded is kept, so only new terms are."""
        cached = self.front_cache
        if cached is not None and cached[0] == (block, start) and 0 < known == len(cached[1]) \
                and cached[1] == terms[:known]:
            more = front_parts(terms[known:], cached[1][-1].encode("utf-8"))
            shared, rest = cached[2] + more[0], cached[3] + more[1]
        else:
            shared, rest = front_parts(terms)
        self.front_cache = ((block, start), terms, shared, rest)
        return front_pack(shared, rest)

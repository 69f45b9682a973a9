"""The ``text`` fidelity tier: every passage kept losslessly, compressed one by one.

A ``text``-tier store keeps, besides the code, the int8 vector and the hints, each passage's
exact UTF-8 bytes, compressed with zstd (level ``LEVEL``) and a dictionary trained on the
store's own passages. Each passage is its own zstd frame, read back alone (~µs).

Body layout (one BLOB per passage in ``texts(id, body)``):

- byte 0 is the codec tag:
  - ``0``: raw UTF-8 follows (used when compressing does not pay);
  - ``1``: a zstd frame without a dictionary follows;
  - ``1 + g`` (2 … 254): a zstd frame compressed with dictionary generation
    ``g`` (1 … 253) follows;
  - ``255`` (``llmtier.LLM_TAG``): a passage arithmetic-coded under a language model (the
    ``llm`` tier); left as it is here (never sampled for training nor recompressed).
- Frames are *magicless* (``FORMAT_ZSTD1_MAGICLESS``) and carry no content
  size, checksum or dictionary id: ~10 bytes per passage saved against a
  default frame; the tag says which dictionary to use, and a frame that does
  not reach its last block is reported as damaged.

Dictionaries live in the store's meta table: ``text_dict.<g>`` (the zstd dictionary, itself
compressed as one zstd frame: mostly raw text, it costs about half), ``text_dict`` (the current
``g``) and ``text_dict_trained_on`` (the passage count at training). Generation 0: none yet.

When to (re)train: first when the store holds ``FIRST_TRAIN`` passages, then each time it
has grown ``RETRAIN_GROWTH``× since the last try. Dictionaries of a few sizes
(``DICT_SHARES`` of the stored text) are trained (on threads, as bodies are compressed:
``tiers.parallel``); the one giving the smallest total — a sample compressed with it,
extrapolated to the whole store, plus the dictionary's own stored bytes — is kept only if
it pays: it must beat the current total by ``MIN_GAIN``. Then every body is recompressed
and the old dictionary dropped. The write pipeline asks after an add's last batch, and after
its other batches only while the store has no dictionary (``ingest.upkeep``): one retraining
per add. A large add trains it during its last batches (``start_trial``, ``tiers.provisional``).

Several processes (concurrency contract). A generation's dictionary never changes once
written, so every process may cache it by generation. Adopting one runs in two steps: every
body present is recompressed *outside* the write lock; then one short transaction checks that
the current generation is still the one it started from (otherwise another process adopted
first: this try is dropped, its work thrown away), writes the dictionary, the recompressed
bodies (of rows not deleted meanwhile), recompresses the few rows added since, moves
``text_dict`` and drops the old dictionary. A writer compresses its passages before taking
the write lock (``encode`` reads the generation again if its dictionary is dropped before it
loads it) and, inside it, calls ``current_bodies`` to recompress those made with a dictionary
that is no longer current; so no committed body ever names a dropped one. A reader that read
a body just before a re-training committed may find its dictionary gone: ``decode`` raises
``DictionaryGoneError`` and the reader reads the body again (``Memory.get``).

What it does not do: decide which stores keep text (``config.fidelity``) or
rank anything; it only turns passages into bytes and back.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import Future

import numpy as np

from ..errors import StoreCorruptError
from . import parallel, trial
from .bodystore import BodyStore

RAW, PLAIN = 0, 1
MAX_GENERATION = 253  # dictionary generations fit the tag byte (1 + g; 255 is llmtier's); retraining stops there
LLM_TAG = 255  # a body of the llm tier (memory.llmtier), left alone here
LEVEL = 19
FIRST_TRAIN = 64
RETRAIN_GROWTH = 2
MIN_GAIN = 0.01
MIN_DICT_BYTES = 4096
MAX_DICT_BYTES = 112 * 1024
DICT_SHARES = (1 / 50, 1 / 25, 1 / 12, 1 / 6)  # dictionary sizes tried, as shares of the stored raw text
TRAIN_SAMPLE_BYTES = 4 << 20  # at most this much text is sampled for training
EVAL_SAMPLE = 2048  # passages compressed to judge whether a new dictionary pays

_FRAME_MAGIC = b"\x28\xb5\x2f\xfd"  # a stored dictionary starting with this is a compressed one
_KEY_CURRENT, _KEY_TRAINED_ON = "text_dict", "text_dict_trained_on"


def _dict_key(gen: int) -> str:
    return f"text_dict.{gen}"


class DictionaryGoneError(StoreCorruptError):
    """A body names a dictionary the store no longer holds.

    Between processes this is a race, not damage: another process re-trained
    and recompressed the body after it was read; read the body again.
    """


class TextTier:
    """Compresses and decompresses the passages of one store file.

    Get the instance of a store with ``for_storage(storage)``; dictionaries are
    read from the store on first use and cached by generation (they never change
    once written).
    """

    def __init__(self, storage: BodyStore) -> None:
        import zstandard

        self._z = zstandard
        self.storage = storage
        self._params: dict[int, object] = {}  # zstd level → its parameters (``_compressor``)
        self._dicts: dict[int, object] = {}
        self._lock = threading.Lock()

    # -- dictionaries ------------------------------------------------------------------

    def current_generation(self) -> int:
        """Generation of the dictionary new passages are compressed with (0: none)."""
        raw = self.storage.get_meta(_KEY_CURRENT)
        return int(raw) if raw is not None else 0

    def _dict(self, gen: int):
        with self._lock:
            d = self._dicts.get(gen)
            if d is None:
                raw = self.storage.get_meta(_dict_key(gen))
                if raw is None:
                    raise DictionaryGoneError(
                        f"{self.storage.path}: a passage needs text dictionary {gen}, which the store lacks"
                    )
                d = self._z.ZstdCompressionDict(self._unpack_dict(bytes(raw)))
                self._dicts[gen] = d
            return d

    def dictionary_bytes(self) -> int:
        """Stored size of the current dictionary (0 when none)."""
        raw = self.storage.get_meta(_dict_key(gen)) if (gen := self.current_generation()) else None
        return len(raw) if raw is not None else 0

    def _pack_dict(self, d) -> bytes:
        return self._z.ZstdCompressor(level=LEVEL).compress(d.as_bytes())

    def _unpack_dict(self, raw: bytes) -> bytes:
        if not raw.startswith(_FRAME_MAGIC):  # stores written before dictionaries were compressed
            return raw
        try:
            return self._z.ZstdDecompressor().decompress(raw)
        except self._z.ZstdError as e:
            raise StoreCorruptError(f"{self.storage.path}: a text dictionary cannot be decompressed ({e})") from e

    # -- codec ---------------------------------------------------------------------------

    def _compressor(self, gen: int, dict_data=None, level: int = LEVEL):
        params = self._params.get(level) or self._params.setdefault(level, self._z.ZstdCompressionParameters.from_level(
            level, format=self._z.FORMAT_ZSTD1_MAGICLESS, write_content_size=0, write_dict_id=0, write_checksum=0))
        if gen:
            return self._z.ZstdCompressor(dict_data=dict_data or self._dict(gen), compression_params=params)
        return self._z.ZstdCompressor(compression_params=params)

    def encode(self, texts: Sequence[str], *, generation: int | None = None, _dict_data=None,
               _threads: int | None = None, level: int = LEVEL) -> list[bytes]:
        """One body per passage, in order (layout: module docstring): zstd with a dictionary, or raw when smaller.

        Args:
            texts: the passages (any str; encoded as UTF-8).
            generation: dictionary to use (default: the current one, read again if it is dropped meanwhile).
            _threads: compressing threads at most (default ``parallel.WORKERS``).
            level: zstd level (``tiers.provisional``'s: bodies a retraining recompresses later).
        """
        gen = self.current_generation() if generation is None else generation
        try:
            dict_data = _dict_data or (self._dict(gen) if gen else None)
        except DictionaryGoneError:  # another process adopted a newer dictionary since gen was read
            if generation is not None or self.current_generation() == gen:  # (else a damaged store)
                raise
            return self.encode(texts, _threads=_threads, level=level)
        head, raw_head = bytes([PLAIN + gen]), bytes([RAW])
        raws = [t.encode("utf-8") for t in texts]
        frames = parallel.compress_all(lambda: self._compressor(gen, dict_data, level), raws, threads=_threads)
        return [head + f if len(f) < len(r) else raw_head + r for f, r in zip(frames, raws, strict=True)]

    def current_bodies(self, texts: Sequence[str], bodies: Sequence[bytes]) -> list[bytes]:
        """Bodies valid now: those compressed with a dictionary that is no longer current, made again.

        Call it inside the write transaction that inserts the bodies (it reads the current
        generation there), after ``encode`` ran outside it: another process may have adopted a
        dictionary in between and dropped the one they were made with. Raw and ``llm`` bodies
        are kept as they are.
        """
        gen = self.current_generation()
        stale = [j for j, b in enumerate(bodies) if b[0] not in (RAW, LLM_TAG) and b[0] - PLAIN != gen]
        out = list(bodies)
        for j, body in zip(stale, self.encode([texts[j] for j in stale], generation=gen), strict=True):
            out[j] = body
        return out

    def decode(self, body: bytes) -> str:
        """The exact passage stored in one body.

        Raises:
            DictionaryGoneError: the body names a dictionary the store no longer holds
                (read the body again: another process re-trained since it was read).
            StoreCorruptError: an unknown tag or a damaged frame.
        """
        body = bytes(body)
        if not body:
            raise StoreCorruptError(f"{self.storage.path}: an empty text body")
        tag = body[0]
        if tag == RAW:
            try:
                return body[1:].decode("utf-8")
            except UnicodeDecodeError as e:
                raise StoreCorruptError(f"{self.storage.path}: a raw text body is not UTF-8 ({e})") from e
        gen = tag - PLAIN
        fmt = self._z.FORMAT_ZSTD1_MAGICLESS
        dec = self._z.ZstdDecompressor(dict_data=self._dict(gen), format=fmt) if gen else \
            self._z.ZstdDecompressor(format=fmt)
        try:
            stream = dec.decompressobj()
            data = stream.decompress(body[1:])
            if not stream.eof:
                raise ValueError("the frame ends before its last block")
            return data.decode("utf-8")
        except (self._z.ZstdError, UnicodeDecodeError, ValueError) as e:
            raise StoreCorruptError(f"{self.storage.path}: a text body cannot be decompressed ({e})") from e

    # -- retraining --------------------------------------------------------------------

    def retrain_due(self, n: int) -> bool:
        """Whether a store of n passages should try a new dictionary."""
        trained_on = int(self.storage.get_meta(_KEY_TRAINED_ON) or 0)
        return n >= (FIRST_TRAIN if trained_on == 0 else trained_on * RETRAIN_GROWTH)

    def maybe_retrain(self, *, force: bool = False, early: Future[trial.Trial | None] | None = None) -> bool:
        """Train a dictionary on the stored passages; adopt it if it pays.

        Args:
            force: try now even if the store has not grown enough since the last try.
            early: a ``start_trial`` made before the store reached its size (``tiers.provisional``): its
                candidates are judged instead of new ones, if the dictionary is still the one it sampled under.

        Returns:
            True when a new dictionary was adopted and every passage recompressed.
        """
        n = self.storage.count()
        old_gen = self.current_generation()
        if n < 2 or not (force or self.retrain_due(n)) or old_gen >= MAX_GENERATION:
            return False
        tried = early.result() if early is not None else None
        if tried is None or tried.old_gen != old_gen:
            try:
                tried = trial.train(self, *self._sample(n, old_gen), level=LEVEL)
            except DictionaryGoneError:  # another process adopted a dictionary while this one read: its job is done
                return False
        if not tried.probe:
            return False
        # the probe's bodies as stored: what encode(probe, generation=old_gen) would make again
        old_total = tried.probe_stored * n / len(tried.probe) + (self.dictionary_bytes() if old_gen else 0)
        i, new_total, packed = trial.best(self, tried, n)
        if i is None or new_total > old_total * (1 - MIN_GAIN):
            self._record_try(n, old_gen)
            return False
        trained, bodies = tried.candidates[i]
        made = dict(zip(tried.probe, bodies, strict=True))
        return self._adopt(trained, old_gen, n, made=made, packed=packed)

    def start_trial(self, n: int) -> Future[trial.Trial | None]:
        """A retraining's sample read now, its candidates trained on a thread (``tiers.trial``), for
        ``maybe_retrain(early=...)`` once the store holds about ``n`` passages."""
        try:
            sampled = self._sample(n, self.current_generation())
        except DictionaryGoneError:  # another process adopted a dictionary while this one read
            sampled = None
        return parallel.background(lambda: None if sampled is None else trial.train(self, *sampled, level=LEVEL))

    def _sample(self, n: int, old_gen: int) -> tuple[int, list[bytes], list[str], int, list[int]]:
        """(old_gen, training samples, probe, the probe's stored bytes, dictionary sizes to try) for a store of n.

        The samples: every stored passage, or an evenly spread ``TRAIN_SAMPLE_BYTES`` of them.
        """
        # bodies are ~2.5x smaller than their text: stride so the sample stays near TRAIN_SAMPLE_BYTES
        stride = max(1, int(np.ceil(self.storage.byte_sums()["text"] * 2.5 / TRAIN_SAMPLE_BYTES)))
        texts, stored, i = [], [], 0
        for _, bodies in self.storage.iter_texts():
            for b in bodies:
                if b[:1] != bytes([LLM_TAG]):
                    if i % stride == 0:
                        texts.append(self.decode(b))
                        stored.append(len(b))
                    i += 1
        samples = [t.encode("utf-8") for t in texts]
        raw_total = sum(map(len, samples)) * n / max(len(samples), 1)
        step = max(1, len(texts) // EVAL_SAMPLE)
        sizes = sorted({int(np.clip(raw_total * f, MIN_DICT_BYTES, MAX_DICT_BYTES)) for f in DICT_SHARES})
        return old_gen, samples, texts[::step][:EVAL_SAMPLE], sum(stored[::step][:EVAL_SAMPLE]), sizes

    def _record_try(self, n: int, old_gen: int) -> None:
        with self.storage.transaction() as c:
            if self.current_generation() == old_gen:  # else another process's try (or adoption) stands
                self.storage.set_meta(c, _KEY_TRAINED_ON, str(n))

    def _recompress(self, d, gen: int, *, after: int = -1, made: dict[str, bytes] | None = None
                    ) -> tuple[list[int], list[bytes], int]:
        """(ids, bodies, last id read) of every non-``llm`` body with id > after, compressed with d.

        ``made``: passage → its body under d and generation gen, already compressed (the probe that
        judged d): used as it is, the same bytes ``encode`` would make again.
        """
        made = made or {}
        out_ids: list[int] = []
        out_bodies: list[bytes] = []
        last = after
        for ids, bodies in self.storage.iter_texts(after=after):
            keep = [j for j, b in enumerate(bodies) if b[:1] != bytes([LLM_TAG])]
            out_ids += [ids[j] for j in keep]
            texts = [self.decode(bodies[j]) for j in keep]
            todo = [t for t in texts if t not in made]
            fresh = iter(self.encode(todo, generation=gen, _dict_data=d))
            out_bodies += [made[t] if t in made else next(fresh) for t in texts]
            last = ids[-1]  # batches come in id order, never empty
        return out_ids, out_bodies, last

    def _adopt(self, trained, old_gen: int, n: int, *, made: dict[str, bytes] | None = None,
               packed: bytes | None = None) -> bool:
        """Recompress every body under a new dictionary (outside the lock), then switch in one transaction.

        Returns:
            False when another process adopted a dictionary first (nothing is written).
        """
        gen = old_gen + 1
        while gen < MAX_GENERATION and self.storage.get_meta(_dict_key(gen)) is not None:
            gen += 1  # left by a re-training that stopped half-way in a store without transactions (Milvus):
            # bodies may name it, so it is never overwritten
        d = self._z.ZstdCompressionDict(trained.as_bytes())
        packed = packed or self._pack_dict(trained)  # (maybe_retrain packed it to judge it)
        made = made if gen == old_gen + 1 else None  # the probe's bodies carry generation old_gen + 1
        try:
            ids, bodies, last = self._recompress(d, gen, made=made)
        except DictionaryGoneError:  # another process adopted meanwhile
            return False
        with self.storage.transaction() as c:
            if self.current_generation() != old_gen or self.storage.get_meta(_dict_key(gen)) is not None:
                return False  # another process adopted first: its dictionary stands, nothing written
            self.storage.set_meta(c, _dict_key(gen), packed)
            for s in range(0, len(ids), 4096):  # rows deleted meanwhile are not updated (ids are never reused)
                self.storage.update_texts(c, ids[s : s + 4096], bodies[s : s + 4096])
            # rows added since the recompression, under the old dictionary: few, done under the lock
            late_ids, late_bodies, _ = self._recompress(d, gen, after=last)
            self.storage.update_texts(c, late_ids, late_bodies)
            self.storage.set_meta(c, _KEY_CURRENT, str(gen))
            self.storage.set_meta(c, _KEY_TRAINED_ON, str(n))
            if old_gen:
                self.storage.delete_meta(c, _dict_key(old_gen))
        with self._lock:
            self._dicts[gen] = d
            self._dicts.pop(old_gen, None)
        return True


_tiers: weakref.WeakKeyDictionary[BodyStore, TextTier] = weakref.WeakKeyDictionary()
_tiers_lock = threading.Lock()


def for_storage(storage: BodyStore) -> TextTier:
    """The TextTier of an open store (one per body store object)."""
    with _tiers_lock:
        tier = _tiers.get(storage)
        if tier is None:
            tier = TextTier(storage)
            _tiers[storage] = tier
        return tier


def maybe_retrain(storage: BodyStore) -> bool:
    """Hook for ``Memory``: retrain the text dictionary when the store has grown enough that it pays."""
    return for_storage(storage).maybe_retrain()

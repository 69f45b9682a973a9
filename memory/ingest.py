"""The write pipeline: texts → embeddings → int8 vectors → codes → hints → tier bodies → one insert per batch.

``add_passages`` consumes a stream lazily, one transaction per batch of ``mem.batch_size``;
``add_batch`` embeds outside the write lock, then inside it catches up with other
processes' commits (lexicon, quantizer, hasher) and inserts; ``upkeep`` runs after each
committed batch (refit, IVF lists, text dictionary). A killed process keeps exactly the
batches committed before it died.

``Adding`` holds ``Memory``'s public ``add``, ``remember``, ``add_documents`` and ``add_passages``,
which check a whole add up front and hand it to the pipeline. With ``dedup="skip"`` or
``"replace"`` the repeats of stored passages (``dedup``) are found inside the write
transaction and left out of the insert, or rewrite the record they repeat in that same
transaction (its id stays; the lexicon counts the old terms out and the new ones in).

What it does not do: search, or SQL.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from . import compact as compacting
from . import dedup as dedupe
from . import gcpause, hints, quantize, records, termindex
from . import refit as refitting
from .backends.base import AfterCommitUpkeep, TermIndex
from .bodies import hint_preview, texts_for_tier
from .chunk import DEFAULT_PASSAGE_TOKENS, chunk_text
from .errors import AddIncompleteError, ConfigError, InputError, StoreError, UpkeepWarning
from .progress import progress_bar
from .results import Match, Remembered
from .tiers import parallel, provisional
from .tiers import text as tiertext
from .validate import (
    check_embeddings,
    check_metadata,
    check_namespace,
    check_text,
    normalize_metadata,
)


def add_passages(
    mem,
    passages: Iterable[tuple[str, dict]],
    *,
    namespace: str = "default",
    total: int | None = None,
    embeddings: np.ndarray | None = None,
    progress: bool | None = None,
    dedup: str = "keep",
    threshold: float = dedupe.DEFAULT_THRESHOLD,
    matches: list[dedupe.Match] | None = None,
) -> list[int]:
    """Store a stream of (text, metadata) pairs, one transaction per batch.

    The stream is consumed lazily, so a huge input never sits in memory. A
    killed process keeps exactly the batches committed before it died.
    Texts are checked as they come; the caller validates up front when it
    needs all-or-nothing. With ``dedup="skip"`` a passage repeating a stored one
    of the namespace (or an earlier one of this add) is not stored, with ``"replace"`` it
    rewrites that record (the newest wins): its position gets the matched id, and a
    ``dedup.Match`` is appended to ``matches`` when given.
    """
    check_namespace(namespace)
    dedupe.check_policy(dedup)
    show = (total or 0) >= 256 if progress is None else progress
    bar = progress_bar(total, show)
    ids: list[int] = []
    offset, refits = 0, refitting.Refits(mem, background=dedup == "keep")  # codes find repeats: refit in place
    bodies = provisional.Bodies(mem, total)  # a text store's bodies its last retraining recompresses: made fast
    try:
        for batch in _batched(passages, mem.batch_size):
            texts = [t for t, _ in batch]
            for i, t in enumerate(texts):
                check_text(t, f"passage {offset + i}")
            metas = [m for _, m in batch]
            for i, m in enumerate(metas):
                check_metadata(m, f"metadata of passage {offset + i}")
            emb = embeddings[offset : offset + len(batch)] if embeddings is not None else None
            try:
                found: list[dedupe.Match] = []
                bodies.start(offset)
                with gcpause.paused():  # the batch's tokens are not walked by the collector (gcpause)
                    ids += add_batch(mem, texts, metas, namespace, emb, policy=dedup, threshold=threshold,
                                     found=found, level=bodies.level(offset, len(batch)))
                if matches is not None:
                    matches += [dedupe.Match(offset + m.position, m.id, m.score, m.exact) for m in found]
            except StoreError as e:
                if not ids and mem.backend.transactional:  # nothing of this add stored: the error as it is
                    raise
                failed = list(mem.backend.last_attempt)
                raise AddIncompleteError(
                    f"{str(e).splitlines()[0]}; {len(ids)} passage(s) of this add were stored "
                    f"({_id_span(ids)}), the next {len(batch)} were not"
                    + (f" ({_id_span(failed)}, absent)" if failed else ""),
                    stored_ids=ids, failed_ids=failed, failed=len(batch)) from e
            offset += len(batch)
            if bar is not None:
                bar.update(len(batch))
            upkeep(mem, namespace, progress=show, last=total is not None and offset >= total, refits=refits, bodies=bodies)
        if ids and (total is None or offset < total):  # a stream of unknown length: its end is known now
            upkeep(mem, namespace, progress=show, last=True, refits=refits, bodies=bodies)
    finally:
        if bar is not None:
            bar.close()
    return ids


def upkeep(mem, namespace: str, *, progress: bool, last: bool = True, refits: refitting.Refits | None = None,
           bodies: provisional.Bodies | None = None) -> None:
    """After a committed batch: refit the hasher, build IVF lists, retrain the text dictionary, keep the byte budget.

    Each is due by the store's size, so one that fails (another process held the write
    lock too long, say) is tried again on a later add: its failure is an ``UpkeepWarning``,
    never an error of the add, whose passages are committed and acknowledged.

    The text dictionary is tried after an add's ``last`` batch, and after the others only
    while the store has none: a retraining recompresses every body, so one per add, on all
    its passages, instead of one each time the add doubles the store (the refit, fitted on a
    thread as the add goes on, ``refit.Refits``, and the IVF lists keep their schedule by batch).
    """
    try:
        (refits or refitting.Refits(mem, background=False)).step(progress=progress, last=last)
        if isinstance(mem.backend, AfterCommitUpkeep):  # the local index's IVF lists of large namespaces
            with mem._lock.write():
                mem.backend.upkeep(namespace, dim=mem.config.dim, quantizer=mem.quantizer, progress=progress)
        if mem.config.fidelity in ("text", "llm"):  # retrain the zstd dictionary when it pays
            tier = mem._text_tier()
            if last or not tier.current_generation():
                tier.maybe_retrain(early=bodies.early if last and bodies is not None else None)
            if last and bodies is not None:  # no provisional body outlives the add (tiers.provisional)
                bodies.settle()
            if last:  # a saved byte budget: demote the oldest bodies when the store outgrew it
                compacting.after_add(mem)
    except StoreError as e:
        warnings.warn(f"{str(e).splitlines()[0]}; the passages are stored, and this upkeep is tried "
                      "again on a later add", UpkeepWarning, stacklevel=3)


def add_batch(mem, texts, metas, namespace, emb, *, policy: str = "keep", threshold: float = dedupe.DEFAULT_THRESHOLD,
              found: list[dedupe.Match] | None = None, level: int = tiertext.LEVEL) -> list[int]:
    """Embed outside the write lock; quantize, hash, count terms and insert inside it.

    Inside the lock this handle first catches up with other processes' commits, so the
    lexicon (term ids, document counts), the quantizer and the hashing parameters it
    writes with are the file's current ones: two writers never assign one term id twice
    and counts never drift. Under the ``skip`` and ``replace`` policies, repeats (``dedup``)
    are found there too, against what is committed: left out of the insert, or rewriting
    the record they repeat in the same transaction (``dedup.plan``); their positions get the
    matched ids and ``found`` the ``dedup.Match`` of each (positions within the batch). A ``text``
    store's bodies are compressed on other threads (``tiers.parallel``) while this one tokenizes, at
    ``level`` (``tiers.provisional``: a batch whose bodies the add's retraining recompresses).
    """
    if emb is None:
        emb = mem._embed(texts)
    else:
        mem._verify_model()
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    fitted = None
    if mem.quantizer is None:
        mem._refresh()
    if mem.quantizer is None:  # calibrate outside the lock (it embeds); another writer may win
        calib = mem._embed(mem.embedder.calibration_texts())
        fitted = quantize.fit(np.concatenate([calib, emb]))
    made = parallel.background(texts_for_tier, mem, texts, None, level) if mem.config.fidelity == "text" else None
    toks = [hints.tokenize(t) for t in texts]
    term_sets = [hints.terms_of(t) for t in toks]
    try:
        # before the write lock (llm coding is slow), against the hints this handle would write now
        preview = hint_preview(mem, toks, term_sets) if mem.config.fidelity == "llm" else None
        bodies, fallbacks = made.result() if made is not None else texts_for_tier(mem, texts, preview)
        with mem._lock.write():  # the commit and this handle's index change as one for its other threads
            with mem.backend.transaction() as c:
                mem._refresh()
                quantizer = mem.quantizer or fitted
                if mem.quantizer is None:
                    mem.backend.put_setting(c, "quantizer", quantizer.to_bytes())
                qvecs = quantizer.encode(emb)
                deq = quantizer.decode(qvecs)
                codes = mem.hasher.encode(deq)
                keep, take, rewrite = None, None, []
                if policy != "keep":  # repeats found against what is committed (dedup)
                    keep, matched = dedupe.classify(mem.backend, mem.hasher, mem.quantizer, namespace, texts, deq,
                                                    codes, threshold)
                    keep, take, targets = dedupe.plan(matched, policy)
                    rewrite, take = list(targets), take + list(targets.values())  # new records, then rewrites
                    if take != list(range(len(texts))):
                        qvecs, deq, codes, metas, texts, toks, term_sets = (
                            x[take] if isinstance(x, np.ndarray) else [x[i] for i in take]
                            for x in (qvecs, deq, codes, metas, texts, toks, term_sets))
                        bodies, fallbacks, preview = (None if x is None else [x[i] for i in take]
                                                      for x in (bodies, fallbacks, preview))
                n = len(deq) - len(rewrite)  # rows [:n] are inserted, [n:] rewrite the ids of ``rewrite``
                # None unless the namespace has IVF lists (local index only)
                lists = (mem.backend.ivf_lists(namespace, deq, dim=mem.config.dim, quantizer=quantizer)
                         if isinstance(mem.backend, AfterCommitUpkeep) and len(deq) else None)
                lexicon = mem.lexicon
                old_terms = records.stored_terms(mem, rewrite) if rewrite else []  # before the lexicon moves
                new_ids = lexicon.observe(term_sets[:n])
                touched = {lexicon.ids[t] for t in set().union(*term_sets[:n])}
                if rewrite:
                    fresh, moved = lexicon.revise(old_terms, term_sets[n:])
                    new_ids, touched = new_ids + fresh, touched | moved
                hint_blobs = [hints.encode(t, lexicon, budget=mem.config.hint_bytes) for t in toks]
                if preview is not None:  # another writer's commit changed a passage's hints: keep its text body
                    final = [hints.decode(b, lexicon) for b in hint_blobs]
                    bodies = [b if f == p else fb for b, fb, f, p in zip(bodies, fallbacks, final, preview, strict=True)]
                if bodies is not None:  # made before the lock: another process may have re-trained the dictionary
                    bodies = mem._text_tier().current_bodies(texts, bodies)
                mem.backend.save_lexicon(c, lexicon, new_ids, touched)
                ids = [] if not n else mem.backend.insert(
                    c, namespace=namespace, metadata=metas[:n], codes=codes[:n], qvecs=qvecs[:n],
                    hints=hint_blobs[:n], gen=mem.hasher.generation, texts=None if bodies is None else bodies[:n])
                if rewrite:
                    mem.backend.rewrite(c, rewrite, metadata=metas[n:], codes=codes[n:], qvecs=qvecs[n:],
                                        hints=hint_blobs[n:], gen=mem.hasher.generation,
                                        texts=None if bodies is None else bodies[n:])
                if lists is not None and len(deq):
                    mem.backend.store_ivf_lists(c, ids + rewrite, lists)
                if isinstance(mem.backend, TermIndex) and mem.backend.has_term_index() and (ids or rewrite):
                    mem.backend.store_terms(c, ids + rewrite, termindex.encode_all(toks, lexicon, mem.backend.term_format()))
            mem.state.set_quantizer(quantizer)
            if isinstance(mem.backend, AfterCommitUpkeep):
                if ids:
                    mem.backend.index_add(namespace, ids, codes[:n], None if lists is None else lists[:n])
                if rewrite:
                    mem.backend.index_rewrite(namespace, rewrite, codes[n:])
    except BaseException:
        mem.state.drop_lexicon()  # undo the in-memory counts: reload on the next add
        raise
    return ids if policy == "keep" else dedupe.resolve(len(matched), keep, ids, matched, found)


def _id_span(ids: Sequence[int]) -> str:
    return "none" if not ids else f"id {ids[0]}" if len(ids) == 1 else f"ids {ids[0]}…{ids[-1]}"


def _checked(texts, metadata, method: str) -> tuple[list[str], list[dict]]:
    """The texts as a list and one metadata dict per text, every one checked (InputError before any write)."""
    if isinstance(texts, str):
        raise InputError(f"{method}() takes a list of texts; wrap a single text in a list")
    texts = list(texts)
    metas = normalize_metadata(metadata, len(texts))
    for i, t in enumerate(texts):
        check_text(t, f"text {i}")
    return texts, metas


def _batched(items: Iterable, n: int) -> Iterator[list]:
    batch = []
    for x in items:
        batch.append(x)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


class Adding:
    """``Memory``'s adding methods (a mixin: ``self`` is the ``Memory``); the pipeline is this module's functions."""

    def add(
        self,
        texts: Sequence[str],
        *,
        metadata: Sequence[dict] | dict | None = None,
        namespace: str = "default",
        embeddings: np.ndarray | None = None,
        progress: bool | None = None,
        dedup: dedupe.Policy = "keep",
    ) -> list[int]:
        """Store passages; returns their ids in order.

        Args:
            texts: the passages (non-empty strings, no NUL characters).
            metadata: one dict for all, or one dict per text (JSON-serializable).
            namespace: the partition to store them in.
            embeddings: optional float32 [len(texts), dim] embeddings *made with the
                store's model* (skips embedding; they are normalized here).
            progress: show a progress bar on stderr (default: for large inputs).
            dedup: ``keep`` (default) stores every passage; ``skip`` stores none that repeats a
                passage of the namespace or an earlier one of this add (``dedup`` module), and
                gives its position the matched id; ``replace`` also gives it that id, rewriting
                the record with the newer text and metadata (the id stays, so citations stay
                valid). ``remember`` also says which were repeats.

        Raises:
            InputError: empty or invalid texts or metadata; nothing is written.
            ConfigError: an unknown ``dedup`` policy.
        """
        texts, metas = _checked(texts, metadata, "add")
        if embeddings is not None:
            embeddings = check_embeddings(embeddings, len(texts), self.config.dim)
        dedupe.check_policy(dedup)
        return self.add_passages(zip(texts, metas, strict=True), namespace=namespace, total=len(texts),
                                 embeddings=embeddings, progress=progress, dedup=dedup)

    def remember(
        self,
        texts: Sequence[str],
        *,
        metadata: Sequence[dict] | dict | None = None,
        namespace: str = "default",
        dedup: dedupe.Policy = "skip",
        threshold: float = dedupe.DEFAULT_THRESHOLD,
    ) -> Remembered:
        """Store passages unless they repeat one already kept; says which did.

        Like ``add`` with ``dedup="skip"`` by default (``"replace"``: the repeated record takes
        the new text and metadata), returning a ``Remembered``: one id per passage (new, or
        the one it repeats) and a ``Match`` per repeat (the stored id, the int8 cosine,
        whether the normalized texts were equal).

        Args:
            threshold: int8 cosine at or above which a passage repeats another (default
                ``dedup.DEFAULT_THRESHOLD``, chosen by measurement).

        Raises:
            InputError: empty or invalid texts or metadata; nothing is written.
            ConfigError: an unknown ``dedup`` policy, or a threshold outside (0, 1].
        """
        texts, metas = _checked(texts, metadata, "remember")
        dedupe.check_policy(dedup)
        if not 0.0 < threshold <= 1.0:
            raise ConfigError(f"threshold must be in (0, 1] (an int8 cosine), got {threshold}")
        found: list[Match] = []
        ids = self.add_passages(zip(texts, metas, strict=True), namespace=namespace, total=len(texts),
                                dedup=dedup, threshold=threshold, matches=found)
        return Remembered(ids, found)

    def add_documents(
        self,
        documents: Sequence[str],
        *,
        metadata: Sequence[dict] | dict | None = None,
        namespace: str = "default",
        passage_tokens: int = DEFAULT_PASSAGE_TOKENS,
        progress: bool | None = None,
        dedup: dedupe.Policy = "keep",
    ) -> list[int]:
        """Chunk documents into passages of about ``passage_tokens`` tokens and store them.

        Each passage's metadata is its document's metadata plus ``doc`` (the
        document's position in ``documents``, unless metadata already has a
        ``source``), ``start`` and ``end`` (character offsets in the document).

        Returns:
            Ids of all passages, in document order (with ``skip`` or ``replace``, a repeat's is the matched id).
        """
        if isinstance(documents, str):
            raise InputError("add_documents() takes a list of documents; wrap a single one in a list")
        documents = list(documents)
        metas = normalize_metadata(metadata, len(documents))
        rows = []
        for d, (doc, meta) in enumerate(zip(documents, metas, strict=True)):
            check_text(doc, f"document {d}")
            for p in chunk_text(doc, tokens=passage_tokens):
                extra = {"start": p.start, "end": p.end}
                if "source" not in meta:
                    extra["doc"] = d
                rows.append((p.text, {**meta, **extra}))
        return self.add_passages(rows, namespace=namespace, total=len(rows), progress=progress, dedup=dedup)

    def add_passages(
        self,
        passages: Iterable[tuple[str, dict]],
        *,
        namespace: str = "default",
        total: int | None = None,
        embeddings: np.ndarray | None = None,
        progress: bool | None = None,
        dedup: dedupe.Policy = "keep",
        threshold: float = dedupe.DEFAULT_THRESHOLD,
        matches: list[Match] | None = None,
    ) -> list[int]:
        """Store a stream of (text, metadata) pairs lazily, one transaction per batch; returns the ids.

        Texts are checked as they come (see ``ingest.add_passages``): a caller that needs
        all-or-nothing validates up front, as ``add`` does. ``dedup`` as in ``add``; a
        ``matches`` list gets a ``Match`` per repeat as the stream goes (``remember`` returns them).
        """
        return add_passages(self, passages, namespace=namespace, total=total, embeddings=embeddings,
                            progress=progress, dedup=dedup, threshold=threshold, matches=matches)


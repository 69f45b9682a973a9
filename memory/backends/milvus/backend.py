"""The Milvus backend: a hashmem store in a Milvus server or cluster (``milvus://host:port/collection``).

``MilvusBackend`` is the backend interface (``backends/base.py``) over three collections
named from the URI's collection ``C``: ``C``, one row per passage, in one of ``uri.PARTITIONS``
partitions picked by the namespace's hash, so a search reads only its namespace's partition
(``records``); ``C__settings``, named values (config, hasher, calibration, dictionaries, API
keys, …) chunked and versioned so a reader sees the old value or the new one, never a mix
(``settings``); ``C__lexicon``, one row per term (``lexicon``). Their fields and indexes are
in ``schema``, the URI in ``uri``, the client with its timeouts and one-line errors in
``connection``, record ids in ``ids``, the text and llm tiers' view of the store in ``bodies``.
A second process (or machine) opening the same URI reads the same settings and lexicon, so
it gets the same memory.

**Consistency, per call** (Milvus's levels: Strong, Session, Bounded, Eventually):

- every write, and every read of this client, uses **Session**: a client reads its own
  writes (an add is searchable by the process that made it as soon as ``add`` returns),
  at the cost of a bounded read (~20 ms here), not a strong one (300–400 ms per read
  measured on a 2-core machine); other clients' writes become visible within Milvus's
  bounded staleness (a few seconds at most);
- **Strong** only where a stale read would be wrong for good: opening the store (its
  config and hasher) and the settings a refit re-reads before it writes.

Searches filter on the current hashing ``gen``: a refit (``update``) writes
rows under a new generation before publishing the new hasher, so a search sees only
codes of the hasher it encodes the query with, never a mix (during a refit, rows
already re-encoded are briefly invisible to searches with the old hasher).

**Failure:** every pymilvus or gRPC error becomes a ``BackendUnavailableError``
(a ``StoreError``) with a one-line message; ids are assigned before the insert, so
``Memory.add`` can report exactly which ids were not acknowledged
(``AddIncompleteError``). An insert Milvus acknowledged is in its write-ahead log
and survives a server restart.

What it does not do: IVF partitions of the local index, bodies split over several rows (a passage whose body
exceeds ``text_bytes`` must be split by the caller), or transactions across several
calls (Milvus has none: an add is one insert call per batch; a re-training that fails
half-way leaves each body readable, as each names its dictionary, which is never deleted
or overwritten on Milvus).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import time
from collections.abc import Sequence

import numpy as np

from ...config import StoreConfig
from ...errors import ConfigError, StoreCorruptError, StoreError
from ...hints import Lexicon
from ..base import RECORD, Backend, Rows
from .bodies import Bodies
from .connection import DEFAULT_TIMEOUT, STRONG, TIMEOUT_ENV, connect, errors, require_pymilvus
from .ids import IdAllocator
from .lexicon import LexiconRows
from .records import FIELDS, Records, decode_row, encode_rows, fields_of
from .schema import code_bytes, create_collections, layout_of, load_collections
from .settings import Settings
from .uri import parse_uri


class _Txn:
    """What ``transaction()`` yields: Milvus has no transactions; writes apply as they are made."""


class MilvusBackend(Backend):
    """A store in a Milvus server or cluster (see the module docstring for schema and consistency).

    Args:
        uri: ``milvus://[user[:password]@]host[:port]/collection[?options]`` (``parse_uri``).
        create: create the collections when ``initialize`` is called on a missing store.
        readonly: writes raise StoreError.

    Raises:
        ConfigError: a malformed URI; pymilvus not installed.
        BackendUnavailableError: the server cannot be reached.
        StoreError: no store in that collection (and not ``create``).
    """

    transactional = False  # no transactions: writes apply as they are made
    where_dialect = "milvus"  # filters.Where: a backslash in a key is refused

    def __init__(self, uri: str, *, create: bool, readonly: bool = False) -> None:
        self.opts = parse_uri(uri)
        self.location = self.path = self.opts["location"]
        self.readonly = readonly
        self.name = self.opts["collection"]
        self.settings_name = f"{self.name}__settings"
        self.lexicon_name = f"{self.name}__lexicon"
        self._closed = False
        self._ids = IdAllocator()
        self.text_bytes: int | None = None  # bound of one body; None: a store without text bodies
        self._dim = 0  # from the config, once it is read or written
        self._bodies = Bodies(self)
        self.last_attempt: list[int] = []  # ids of the insert in progress (reported if it fails)
        self.timeout = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
        self._errors = functools.partial(errors, opts=self.opts)  # pymilvus / gRPC errors → BackendUnavailableError
        require_pymilvus()
        self.client = connect(self.opts, self.timeout)
        self.settings = Settings(self.client, self.settings_name, self.opts)
        self.records = Records(self.client, self.name, self.opts)
        self.lexicon = LexiconRows(self.client, self.lexicon_name, self.opts)
        with self._errors("open"):
            exists = load_collections(self.client, records=self.name, settings=self.settings_name,
                                      lexicon=self.lexicon_name)
        self.is_new = not exists
        if self.is_new and not create:
            self.close()
            raise StoreError(f"no store at {self.location}; create one with `hashmem init` or Memory(uri)")

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.client.close()

    def discard_failed_creation(self, created: bool = False) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self):
        if self.readonly:
            raise StoreError(f"cannot write {self.location}: opened read-only")
        yield _Txn()

    # -- creation and settings (API keys are settings rows) ------------------------------

    def initialize(self, config: StoreConfig, settings=None) -> bool:
        text_bytes = self.opts["text_bytes"] if config.fidelity in ("text", "llm") else None
        c = self.client
        with self._errors("create a store in"):
            if c.has_collection(self.settings_name) and self.settings.get("config", STRONG) is not None:
                self.is_new = False
                return False
            create_collections(c, config, self.opts, records=self.name, settings=self.settings_name,
                               lexicon=self.lexicon_name, text_bytes=text_bytes)
            self.settings.seed(config, layout_of(self.opts, text_bytes), settings)
        self.is_new = False
        self.text_bytes, self._dim = text_bytes, config.dim
        return True

    def load_config(self) -> StoreConfig:
        config, text_bytes = self.settings.config()
        if text_bytes is not None:
            self.text_bytes = text_bytes
        self._dim = config.dim
        return config

    def check(self, *, bits: int, dim: int, generation: int | None) -> None:
        with self._errors("read"):
            fields = {f["name"]: f for f in self.client.describe_collection(self.name)["fields"]}
        code = fields.get("code")
        have = (code or {}).get("params", {}).get("dim")
        if code is None or int(have) != bits:
            raise StoreCorruptError(f"{self.location}: the code field holds {have} bits, the config says {bits}")

    def setting(self, key: str, level: str = STRONG) -> bytes | str | None:
        return self.settings.get(key, level)

    def put_setting(self, txn, key: str, value: bytes | str) -> None:
        self.settings.put(key, value)

    def changes(self, since):
        """One Session-level query of the settings headers: each value is written with a fresh version tag.

        No ``records`` tag: another client's adds and deletes need nothing here (there is no
        index in RAM), so ``stale`` is always true and this runs before every search."""
        if self._closed:
            return {}
        tags = self.settings.versions(["hasher", "quantizer", "lexicon_docs"])
        if "lexicon_docs" in tags:
            tags["lexicon"] = tags.pop("lexicon_docs")
        return {k: v for k, v in tags.items() if since.get(k) != v}

    def put_key(self, name: str, digest: str, grants: dict[str, str]) -> None:
        self.settings.put_key(name, digest, grants)

    def keys(self, *, digest: str | None = None):
        return self.settings.keys(digest=digest)

    def revoke_key(self, name: str) -> bool:
        return self.settings.revoke_key(name)

    # -- lexicon ------------------------------------------------------------------------

    def load_lexicon(self) -> Lexicon:
        return self.lexicon.load(n_docs=int(self.settings.get("lexicon_docs") or 0))

    def terms(self, ids: Sequence[int]) -> dict[int, str]:
        return self.lexicon.terms(ids)

    def save_lexicon(self, txn, lex: Lexicon, new_ids, touched) -> None:
        """Upsert new and touched terms; refuse when another writer took one of the new ids meanwhile.

        ``Memory`` reloads the lexicon before each add when another writer changed it
        (``changes``), so this only catches two adds racing in the same instant."""
        taken = self.terms(list(new_ids)) if new_ids else {}
        if clash := [i for i, t in taken.items() if t != lex.terms[i]]:
            raise StoreError(f"cannot write {self.location}: another process added to the lexicon since this one "
                             f"read it (term id {clash[0]}); nothing from this batch was stored, add it again")
        self.lexicon.write(lex, sorted(set(new_ids) | set(touched)))
        self.settings.put("lexicon_docs", str(lex.n_docs))

    # -- records ------------------------------------------------------------------------

    def insert(self, txn, *, namespace, metadata, codes, qvecs, hints, gen, texts=None) -> list[int]:
        if (texts is not None) != bool(self.text_bytes):
            raise ConfigError(f"{self.location}: text bodies are kept exactly when the store has text fidelity")
        if texts is not None:
            self.check_bodies(texts)
        ids = self._ids.take(len(hints))
        self.last_attempt = list(ids)  # what Memory reports if this insert fails
        now = time.time()
        self.settings.note_namespace(namespace)
        rows = encode_rows(ids, namespace=namespace, metadata=metadata, codes=codes, qvecs=qvecs, hints=hints,
                           gen=gen, created=now, texts=texts)
        self.records.insert(namespace, rows, ids)
        self.last_attempt = []
        return ids

    def rows(self, ids, fields=RECORD) -> Rows:
        fields = tuple(fields)
        if fields == ("text",):
            found = ({int(r["id"]): base64.b64decode(r["body"]) for r in self.records.rows(ids, ["id", "body"])}
                     if self.text_bytes else {int(r["id"]): None for r in self.records.rows(ids, ["id"])})
            return Rows.of(ids, found, fields)
        if "text" in fields:
            raise ValueError("rows: ask for text alone")
        if fields == ("qvec",):  # stage 3's read when the search did not return them
            found = {int(r["id"]): base64.b64decode(r["qvec"]) for r in self.records.rows(ids, ["id", "qvec"])}
            present = [int(i) for i in ids if int(i) in found]
            return Rows(np.array(present, np.int64), {"qvec": [found[i] for i in present]})
        return Rows.of(ids, {int(r["id"]): decode_row(r) for r in self.records.rows(ids, FIELDS)}, fields)

    # -- text/llm-tier bodies ------------------------------------------------------------

    def body_store(self):
        return self._bodies

    def check_bodies(self, bodies) -> None:
        """A body longer than the store's bound is refused whole (never truncated), before any write."""
        self._bodies.check(bodies)

    def delete(self, txn, ids) -> list[tuple[int, str]]:
        gone = [(int(r["id"]), r["namespace"]) for r in self.records.rows(ids, ["id", "namespace"])]
        if gone:
            with self._errors("delete from"):
                self.client.delete(self.name, ids=[i for i, _ in gone])
            self.settings.after_delete(self.name)
        return gone

    def rewrite(self, txn, ids, *, metadata, codes, qvecs, hints, gen, texts=None) -> None:
        """Records rewritten in place (``dedup="replace"``): each row read whole and upserted with the new
        metadata, code, vector, hints (and body); namespace, id and creation time stay. Not atomic:
        Milvus has no transactions (each upsert call applies as it is made)."""
        if (texts is not None) != bool(self.text_bytes):
            raise ConfigError(f"{self.location}: text bodies are kept exactly when the store has text fidelity")
        if texts is not None:
            self.check_bodies(texts)
        at = {int(i): j for j, i in enumerate(ids)}

        def change(r: dict) -> None:
            j = at[int(r["id"])]
            r.update(metadata=metadata[j], code=codes[j].tobytes(), gen=int(gen),
                     qvec=base64.b64encode(qvecs[j].tobytes()).decode(), hints=base64.b64encode(hints[j]).decode())
            if texts is not None:
                r["body"] = base64.b64encode(bytes(texts[j])).decode()

        self.records.rewrite(list(at), fields_of(self.text_bytes), change)

    def update(self, txn, ids, *, codes, gen) -> None:
        """A refit's codes: rows are read whole and upserted with the new code and generation."""
        new = {int(i): codes[j].tobytes() for j, i in enumerate(ids)}
        self.records.rewrite(list(new), fields_of(self.text_bytes),
                             lambda r: r.update(code=new[int(r["id"])], gen=int(gen)))

    def scan(self, field, *, after=-1, upto=None):
        if field not in ("qvec", "code"):
            raise ValueError(f"scan field {field!r} is not supported; use qvec or code")
        expr = f"id > {int(after)}" + (f" and id <= {int(upto)}" if upto is not None else "")
        for page in self.records.pages(expr, ["id", field]):
            page.sort(key=lambda r: r["id"])
            ids = np.array([r["id"] for r in page], dtype=np.int64)
            if field == "qvec":
                values = np.frombuffer(b"".join(base64.b64decode(r["qvec"]) for r in page), np.int8)
            else:
                values = np.frombuffer(b"".join(code_bytes(r["code"]) for r in page), np.uint8)
            yield ids, values.reshape(len(page), -1)

    def last_id(self) -> int:
        """Not the last id but a bound above every id assigned so far (ids are time-based)."""
        return self._ids.bound()

    def select(self, namespace, where=None) -> np.ndarray:
        """Ids of a namespace (or all) whose metadata equals every key/value of a checked ``where``.

        The server filters by ``where.to_milvus()``, a JSON expression that narrows; the exact
        types (``true`` is not ``1``, ``None`` only an explicit null) are checked here on what
        comes back, by ``where.matches``.
        """
        clauses = ["id > 0" if namespace is None else f"namespace == {json.dumps(namespace)}"]
        if where is not None:
            clauses.append(where.to_milvus())
        fields = ["id"] if where is None else ["id", "metadata"]
        out = []
        for page in self.records.pages(" and ".join(c for c in clauses if c), fields, namespace=namespace):
            out += [int(r["id"]) for r in page if where is None or where.matches(r["metadata"] or {})]
        return np.array(sorted(out), dtype=np.int64)

    def count(self, namespace: str | None = None) -> int:
        return self.records.count(namespace)

    def body_counts(self) -> dict[str, int]:
        """llm-tier bodies (tag 255: base64 "/…"; a zstd tag ≥ 252, dictionary generation ≥ 251, would
        count too, a store no re-training schedule reaches) and the others, which are text-tier bodies."""
        if not self.text_bytes:
            return {"llm": 0, "text": 0}
        llm = self.records.count(where='body like "/%"')
        return {"llm": llm, "text": self.count() - llm}

    def namespaces(self) -> dict[str, int]:
        counts = {ns: self.count(ns) for ns in self.settings.namespace_names()}
        return dict(sorted((k, v) for k, v in counts.items() if v))

    def byte_sums(self) -> dict[str, int]:
        """Counts from the engine; hint and metadata bytes measured on up to 8,192 rows and scaled."""
        n = self.count()
        cfg = self.load_config()
        hints, meta, text = self.records.sampled_bytes(n, body=bool(self.text_bytes))
        if self.text_bytes:  # the text tier's dictionary counts as text, as in a local store
            from ...tiers.text import for_storage

            text += for_storage(self._bodies).dictionary_bytes()
        return {"records": n, "code": n * cfg.bits // 8, "qvec": n * cfg.dim, "hints": int(hints),
                "metadata": int(meta), "text": int(text), "lexicon": 0}

    # -- stage 1 -----------------------------------------------------------------------

    def candidates(self, namespace, qcode, n, *, generation, allowed_ids=None, query_proj=None, query_vec=None):
        """One HAMMING search that also returns each hit's code and int8 vector (nothing is cached)."""
        return self.records.search(namespace, qcode, n, generation=generation, allowed_ids=allowed_ids,
                                   nprobe=self.opts["nprobe"])

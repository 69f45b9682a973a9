"""The settings collection of a Milvus store (``C__settings``): named values, chunked and versioned.

Values: the store config, hasher parameters, int8 calibration, the layout, the lexicon's
document count, the namespace names, the text tier's zstd dictionaries and the llm tier's
coder meta (model hash, parameters). Each value has one header row, ``key`` → JSON
``{"ver", "bytes", "inline" | "n"}`` (bytes are kept base64). A value longer than one
VARCHAR (``CHUNK`` characters) is split into rows ``key@ver#i`` under a fresh version tag,
written before the header that names it: a reader sees the old value or the new one, never
a mix. ``seen`` keeps the version this handle last read or wrote of each key (what ``sync``
compares with ``versions``).

API keys (``hashmem keys``, the servers' tenants) are values ``apikey:<digest>``; a server
looks a caller's key up with Bounded consistency, so a revocation made by another process
takes effect within Milvus's staleness bound (seconds), not at once as locally.

``seed`` writes a new store's first values (its config last: its presence means "created");
``config`` reads the config back with the body bound of the ``layout`` value.

What it does not do: create the collection (``schema``), decide what the other values mean
(``Memory``, the tiers, ``keys``) or make several values change together (no transactions).
"""

from __future__ import annotations

import base64
import functools
import json
import time
import uuid
from collections.abc import Sequence

from ...config import StoreConfig
from ...errors import ConfigError, StoreCorruptError
from .connection import READ, STRONG, errors
from .schema import DUMMY

CHUNK = 48_000  # base64 characters per settings row (VARCHAR max 65,535)
_KEY_LOOKUP = "Bounded"  # API key lookups per request (see Settings.keys)
_KEY_PREFIX = "apikey:"


class Settings:
    """The named values of one store, read and written through one client.

    Args:
        client: a ``connection.connect`` client.
        name: the settings collection (``C__settings``).
        opts: ``uri.parse_uri``'s settings (the location to name in errors, the database).
    """

    def __init__(self, client, name: str, opts: dict) -> None:
        self.client, self.name, self.opts = client, name, opts
        self.location = opts["location"]
        self._errors = functools.partial(errors, opts=opts)
        self.seen: dict[str, str] = {}  # settings header → version this handle loaded
        self.known_ns: set[str] = set()  # namespaces this handle knows are listed

    def get(self, key: str, level: str = READ) -> bytes | str | None:
        """A settings value (bytes or str as written), or None; chunked values are joined."""
        with self._errors("read"):
            rows = self.client.query(self.name, filter=f"key == {json.dumps(key)}",
                                     output_fields=["value"], consistency_level=level)
            if not rows:
                return None
            head = json.loads(rows[0]["value"])
            self.seen[key] = head["ver"]
            if "inline" in head:
                value = head["inline"]
            else:
                keys = [f"{key}@{head['ver']}#{i}" for i in range(head["n"])]
                got = {}
                for s in range(0, len(keys), 256):
                    part = keys[s : s + 256]
                    expr = f"key in {json.dumps(part)}"
                    got.update((r["key"], r["value"]) for r in self.client.query(
                        self.name, filter=expr, output_fields=["key", "value"], consistency_level=level))
                if len(got) != len(keys):
                    raise StoreCorruptError(f"{self.location}: setting {key!r} is missing chunks")
                value = "".join(got[k] for k in keys)
        return base64.b64decode(value) if head["bytes"] else value

    def put(self, key: str, value: bytes | str) -> None:
        """Write a value under a new version: its chunks, then its header; then drop the old chunks."""
        is_bytes = isinstance(value, bytes | bytearray | memoryview)
        text = base64.b64encode(bytes(value)).decode() if is_bytes else value
        ver = uuid.uuid4().hex
        head = {"ver": ver, "bytes": is_bytes}
        rows = []
        if len(text) <= CHUNK:
            head["inline"] = text
        else:
            parts = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)]
            head["n"] = len(parts)
            rows = [{"key": f"{key}@{ver}#{i}", "value": p, DUMMY: [0.0, 0.0]} for i, p in enumerate(parts)]
        with self._errors("write"):
            for s in range(0, len(rows), 16):
                self.client.upsert(self.name, rows[s : s + 16])
            self.client.upsert(self.name, [{"key": key, "value": json.dumps(head), DUMMY: [0.0, 0.0]}])
            old = self.seen.get(key)
            if old is not None and old != ver:  # the previous value's chunks (if any)
                self.client.delete(self.name, filter=f'key like "{key}@{old}#%"')
        self.seen[key] = ver

    def delete(self, key: str) -> None:
        """Remove a settings value (its header, then its chunks)."""
        with self._errors("write"):
            rows = self.client.query(self.name, filter=f"key == {json.dumps(key)}",
                                     output_fields=["value"], consistency_level=READ)
            self.client.delete(self.name, filter=f"key == {json.dumps(key)}")
            for r in rows:
                ver = json.loads(r["value"])["ver"]
                self.client.delete(self.name, filter=f'key like "{key}@{ver}#%"')
        self.seen.pop(key, None)

    def seed(self, config: StoreConfig, layout: dict, extra: dict[str, bytes | str] | None = None) -> None:
        """A new store's first values (the ``layout``, ``extra``), then its config: its presence means "created"."""
        for key, value in {"lexicon_docs": "0", "layout": json.dumps(layout), "namespaces": "[]",
                           **(extra or {})}.items():
            self.put(key, value)
        self.put("config", config.to_json())  # last: its presence means "created"

    def config(self) -> tuple[StoreConfig, int | None]:
        """The store config (a Strong read), and the bound of one body in a text or llm-fidelity store (else None).

        Raises:
            StoreCorruptError: no config (not a hashmem store), an unreadable one, or a text store without a body field.
        """
        raw = self.get("config", STRONG)
        if raw is None:
            raise StoreCorruptError(f"{self.location} is not a hashmem store (no config in {self.name})")
        try:
            config = StoreConfig.from_json(raw.decode() if isinstance(raw, bytes) else raw)
        except (ValueError, TypeError) as e:
            raise StoreCorruptError(f"{self.location} has an unreadable config ({e})") from e
        if config.fidelity not in ("text", "llm"):
            return config, None
        layout = json.loads(self.get("layout", STRONG) or "{}")
        if not layout.get("text_bytes"):
            raise StoreCorruptError(f"{self.location}: a {config.fidelity}-fidelity store without a body field")
        return config, int(layout["text_bytes"])

    def versions(self, keys: Sequence[str]) -> dict[str, str]:
        """The current version tag of settings headers (one query)."""
        with self._errors("read"):
            rows = self.client.query(self.name, filter=f"key in {json.dumps(list(keys))}",
                                     output_fields=["key", "value"], consistency_level=READ)
        return {r["key"]: json.loads(r["value"])["ver"] for r in rows}

    # -- API keys: one row per key, ``apikey:<digest>`` -> JSON ----------------------------

    def key_rows(self, level: str = STRONG) -> list[tuple[str, str, dict, float, float | None]]:
        """(name, digest, grants, created, revoked) of every key, oldest first."""
        with self._errors("read"):
            rows = self.client.query(self.name, filter=f'key like "{_KEY_PREFIX}%"',
                                     output_fields=["key", "value"], consistency_level=level)
        out = []
        for r in rows:
            if "@" in r["key"]:  # a chunk of a long value, read through its header
                continue
            head = json.loads(r["value"])
            d = json.loads(head["inline"] if "inline" in head else self.get(r["key"], level))
            out.append((d["name"], r["key"][len(_KEY_PREFIX):], d["grants"], d["created"], d["revoked"]))
        return sorted(out, key=lambda k: (k[3], k[0]))

    def put_key(self, name: str, digest: str, grants: dict[str, str]) -> None:
        """Store a new key. Raises ConfigError when a key with this name exists."""
        if any(k[0] == name for k in self.key_rows()):
            raise ConfigError(f"a key named {name!r} exists; revoke it or choose another name")
        value = {"name": name, "grants": grants, "created": time.time(), "revoked": None}
        self.put(_KEY_PREFIX + digest, json.dumps(value, sort_keys=True))

    def keys(self, *, digest: str | None = None):
        """Every key (``key_rows``), or the one with this digest (a Bounded read)."""
        if digest is None:
            return self.key_rows()
        # a server looks its callers' keys up per request: Bounded (tens of ms, not a strong read's
        # 300-400 ms), so a revocation by another process takes effect within Milvus's staleness bound
        raw = self.get(_KEY_PREFIX + digest, _KEY_LOOKUP)
        if raw is None:
            return []
        d = json.loads(raw)
        return [(d["name"], digest, d["grants"], d["created"], d["revoked"])]

    def revoke_key(self, name: str) -> bool:
        """Mark a valid key revoked; False when no valid key has this name."""
        for n, digest, grants, created, revoked in self.key_rows():
            if n == name and revoked is None:
                value = {"name": n, "grants": grants, "created": created, "revoked": time.time()}
                self.put(_KEY_PREFIX + digest, json.dumps(value, sort_keys=True))
                return True
        return False

    # -- namespace names -------------------------------------------------------------------

    def note_namespace(self, namespace: str) -> None:
        """List ``namespace`` in the ``namespaces`` value (read once per handle, written when new)."""
        if namespace in self.known_ns:
            return
        known = self.namespace_names()
        if namespace not in known:
            self.put("namespaces", json.dumps(sorted({*known, namespace})))
        self.known_ns = {*known, namespace}

    def namespace_names(self) -> list[str]:
        """Every namespace written to (the ``namespaces`` value)."""
        raw = self.get("namespaces")
        return json.loads(raw) if raw else []

    # -- read-your-writes -------------------------------------------------------------------

    def after_delete(self, records: str) -> None:
        """Keep read-your-writes after a delete from the ``records`` collection.

        A 2.3 server answers a delete with timestamp 0, so pymilvus's Session level would not
        wait for it. A write to the settings collection gets a server timestamp later than
        the delete's; making it this client's last-write time of the records collection makes
        every later Session read include the delete."""
        from pymilvus.client import ts_utils

        self.put("last_delete", str(time.time()))
        with self._errors("write"):
            endpoint = self.client._get_connection().server_address
        db = self.opts["db"]
        ts = ts_utils.get_collection_ts(self.name, endpoint, db)
        if ts:
            ts_utils.update_collection_ts(records, ts, endpoint, db)

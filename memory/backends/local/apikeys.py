"""The servers' API keys in the store file: table ``api_keys``.

``api_keys(name TEXT PRIMARY KEY, digest TEXT UNIQUE (SHA-256 hex of the token), grants TEXT
(JSON object {namespace: "read"|"write"}, sorted keys), created REAL (Unix time), revoked REAL
NULL)``; created with the first key, so stores without keys are unchanged. Each write is its
own transaction.

What it does not do: make tokens, hash them or decide access (``memory.keys``).
"""

from __future__ import annotations

import json
import time

from ...errors import ConfigError
from .sqlfile import StoreFile


class ApiKeyTable:
    """The ``api_keys`` table of one open file."""

    def __init__(self, file: StoreFile) -> None:
        self.file = file

    def put(self, name: str, digest: str, grants: dict[str, str]) -> None:
        """Store a new key (its token's digest and grants) in one transaction.

        Raises:
            ConfigError: a key with this name exists.
        """
        with self.file.transaction() as c:
            c.execute("CREATE TABLE IF NOT EXISTS api_keys (name TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, "
                      "grants TEXT NOT NULL, created REAL NOT NULL, revoked REAL)")
            if c.execute("SELECT 1 FROM api_keys WHERE name = ?", (name,)).fetchone():
                raise ConfigError(f"a key named {name!r} exists; revoke it or choose another name")
            c.execute("INSERT INTO api_keys (name, digest, grants, created) VALUES (?, ?, ?, ?)",
                      (name, digest, json.dumps(grants, sort_keys=True), time.time()))

    def rows(self, *, digest: str | None = None) -> list[tuple[str, str, dict, float, float | None]]:
        """(name, digest, grants, created, revoked) of every key, or of the key with this digest."""
        conn = self.file.conn
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='api_keys'").fetchone():
            return []
        sql = "SELECT name, digest, grants, created, revoked FROM api_keys"
        rows = conn.execute(sql + (" WHERE digest = ?" if digest else " ORDER BY created, name"),
                            (digest,) if digest else ()).fetchall()
        return [(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]

    def revoke(self, name: str) -> bool:
        """Mark a key revoked; False when no valid key has this name."""
        if not self.rows():
            return False
        with self.file.transaction() as c:
            cur = c.execute("UPDATE api_keys SET revoked = ? WHERE name = ? AND revoked IS NULL", (time.time(), name))
        return cur.rowcount > 0

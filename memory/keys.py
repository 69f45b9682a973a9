"""API keys: random tokens that grant namespaces, kept only as SHA-256 digests.

A key has a name (unique, for people), a token (``hm_`` + 32 random bytes in
URL-safe base64, shown once when the key is made and never stored) and grants:
``{namespace: "read" | "write"}``, where ``write`` includes reading. The store
keeps the token's SHA-256 digest, so a copy of the store file does not give
the tokens away.

The functions at the end make, list, find and revoke keys in a backend that keeps
them (``backends.base.ApiKeys``: both backends do).

What it does not do: store keys (the backend: one small table) or check a request
against a key's grants (``hashmem.server.tenancy``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

from .errors import ConfigError, RecordNotFoundError

TOKEN_PREFIX = "hm_"
ACCESS = ("read", "write")
_NAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")


@dataclass(frozen=True)
class ApiKey:
    """One API key as the store keeps it (never the token itself).

    Attributes:
        name: unique name of the key.
        grants: namespace → ``read`` or ``write`` (``write`` includes reading).
        created: Unix time the key was made.
        revoked: Unix time it was revoked, or None while it is valid.
        digest: SHA-256 hex digest of the token.
    """

    name: str
    grants: dict[str, str] = field(default_factory=dict)
    created: float = 0.0
    revoked: float | None = None
    digest: str = ""

    @property
    def active(self) -> bool:
        return self.revoked is None


def new_token() -> str:
    """A fresh random token (``hm_`` + 43 URL-safe characters: 256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """SHA-256 hex digest of a token (what the store keeps)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name) -> str:
    """Validate a key name.

    Raises:
        ConfigError: not 1-64 characters of letters, digits and ``_ . : @ -``.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"a key name is 1-64 letters, digits or _ . : @ -, got {name!r}")
    return name


def check_grants(grants) -> dict[str, str]:
    """Validate grants ``{namespace: "read" | "write"}`` (at least one).

    Raises:
        ConfigError: no grants, an empty namespace or an unknown access level.
    """
    if not isinstance(grants, dict) or not grants:
        raise ConfigError("a key needs at least one namespace grant, e.g. {'user:ana': 'write'}")
    out = {}
    for ns, access in grants.items():
        if not isinstance(ns, str) or not ns.strip():
            raise ConfigError(f"a granted namespace must be a non-empty string, got {ns!r}")
        if access not in ACCESS:
            raise ConfigError(f"access to {ns!r} must be 'read' or 'write', got {access!r}")
        out[ns] = access
    return out


def _keeper(mem):
    from .backends.base import ApiKeys

    if not isinstance(mem.backend, ApiKeys):
        raise ConfigError(f"{mem.path} keeps no API keys (its backend has no key table)")
    return mem.backend


def add(mem, name: str, grants: dict[str, str]) -> str:
    """Make a key in ``mem``'s backend; returns its token (see ``Memory.add_key``)."""
    token = new_token()
    _keeper(mem).put_key(check_name(name), digest(token), check_grants(grants))
    return token


def listed(mem) -> list[ApiKey]:
    """Every key of ``mem``'s backend (valid and revoked), oldest first."""
    return [ApiKey(n, g, c, r, d) for n, d, g, c, r in _keeper(mem).keys()]


def find(mem, token: str) -> ApiKey | None:
    """The key whose token this is (revoked or not), or None."""
    rows = _keeper(mem).keys(digest=digest(token)) if isinstance(token, str) and token else []
    if not rows:
        return None
    name, dig, grants, created, revoked = rows[0]
    return ApiKey(name, grants, created, revoked, dig)


def revoke(mem, name: str) -> None:
    """Revoke a key by name. Raises RecordNotFoundError when no valid key has it."""
    if not _keeper(mem).revoke_key(name):
        raise RecordNotFoundError(f"no valid key named {name!r} in {mem.path}")


class KeyMethods:
    """``Memory``'s API-key methods (a mixin: ``self`` is the ``Memory``)."""

    def add_key(self, name: str, grants: dict[str, str]) -> str:
        """Make an API key granting namespaces; returns its token (shown once, stored only hashed).

        Args:
            name: unique name of the key.
            grants: namespace → ``read`` or ``write`` (``write`` includes reading).

        Raises:
            ConfigError: a bad name or grants, or a key with this name exists.
        """
        return add(self, name, grants)

    def keys(self) -> list[ApiKey]:
        """Every API key (valid and revoked), oldest first, as ``memory.keys.ApiKey``."""
        return listed(self)

    def key_for(self, token: str) -> ApiKey | None:
        """The ``ApiKey`` whose token this is (revoked or not), or None."""
        return find(self, token)

    def revoke_key(self, name: str) -> None:
        """Revoke an API key by name (it stays listed, marked revoked).

        Raises:
            RecordNotFoundError: no valid key has this name.
        """
        revoke(self, name)

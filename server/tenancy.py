"""Tenancy: which API key may read or write which namespace — checked here and nowhere else.

A request carries ``Authorization: Bearer <token>``. While the store holds no
valid key the server is open (and ``app.serve`` binds loopback only): every
request is the ``OPEN`` principal, which may touch every namespace. Once a key
exists every request needs a valid one; it becomes a ``Principal`` whose
grants come from the store on each request, so a revocation applies at once.

What it does not do: make or store keys (``hashmem.memory.keys``,
``Memory.add_key``) or know about routes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .errors import ApiError

Access = Literal["read", "write"]


@dataclass(frozen=True)
class Principal:
    """Who is asking: a key's name and grants, or the open (no keys) principal.

    Attributes:
        name: the key's name; None for the open principal.
        grants: namespace → ``read`` or ``write``; None means every namespace, read and write.
    """

    name: str | None
    grants: Mapping[str, str] | None = field(default=None)

    @property
    def unrestricted(self) -> bool:
        return self.grants is None

    def can(self, namespace: str, access: Access) -> bool:
        """True when this principal may ``read`` or ``write`` the namespace."""
        if self.grants is None:
            return True
        have = self.grants.get(namespace)
        return have == "write" or (have == "read" and access == "read")

    def require(self, namespace: str, access: Access) -> None:
        """Raise 403 ``forbidden`` unless this principal may access the namespace."""
        if not self.can(namespace, access):
            raise ApiError(403, "forbidden", f"this key may not {access} namespace {namespace!r}")

    def visible(self, namespaces) -> list[str]:
        """The namespaces among ``namespaces`` this principal may read."""
        return [ns for ns in namespaces if self.can(ns, "read")]


OPEN = Principal(name=None, grants=None)


def principal_for(memory, authorization: str | None) -> Principal:
    """The principal of a request from its ``Authorization`` header.

    Args:
        memory: the open store (its API keys).
        authorization: the header's value, or None.

    Raises:
        ApiError: 401 ``missing_key`` (keys exist, none given), ``invalid_key``
            (unknown token or not a Bearer token) or ``revoked_key``.
    """
    if not authorization:
        if any(k.active for k in memory.keys()):
            raise ApiError(401, "missing_key", "this server needs an API key: send 'Authorization: Bearer <token>'")
        return OPEN
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "invalid_key", "the Authorization header must be 'Bearer <token>'")
    key = memory.key_for(token.strip())
    if key is None:
        raise ApiError(401, "invalid_key", "unknown API key")
    if not key.active:
        raise ApiError(401, "revoked_key", f"API key {key.name!r} was revoked")
    return Principal(name=key.name, grants=dict(key.grants))

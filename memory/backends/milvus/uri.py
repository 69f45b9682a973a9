"""A Milvus store's URI: ``milvus://[user[:password]@]host[:port]/collection[?options]`` and its options.

``parse_uri`` checks a URI and splits it into client settings (address, credentials, TLS,
database, collection, index, ``nlist``/``nprobe``, ``text_bytes``); ``redact`` hides a
password in a URI shown to people; ``partition_of`` names the partition a namespace's rows
live in (one of ``PARTITIONS``, by a stable hash of its name).

What it does not do: connect (``connection``), create anything (``schema``) or read the
token's environment variable anywhere but in ``parse_uri``.
"""

from __future__ import annotations

import os
import re
import urllib.parse
import zlib

from ...errors import ConfigError

DEFAULT_PORT = 19530
TOKEN_ENV = "HASHMEM_MILVUS_TOKEN"  # user:password or an API token, for a cluster with authentication
INDEX_TYPES = ("BIN_FLAT", "BIN_IVF_FLAT")
PARTITIONS = 16  # namespace buckets (a partition key's default count)
TEXT_BYTES = 4_096  # default bound of one text/llm-tier body, in bytes (``?text_bytes=N`` in the URI)
MAX_TEXT_BYTES = 49_149  # the largest bound whose base64 fits one VARCHAR (65,535 characters)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,180}$")


def partition_of(namespace: str, n: int = PARTITIONS) -> str:
    """The partition a namespace's rows live in: a stable hash of its name."""
    return f"ns{zlib.crc32(namespace.encode('utf-8')) % n:03d}"


def parse_uri(uri: str) -> dict:
    """Split ``milvus://[user[:password]@]host[:port]/collection[?options]`` into client settings.

    Options: ``secure=true`` (TLS; ``milvus+tls://`` is the same), ``server_pem=PATH``
    and ``server_name=NAME`` (a private CA), ``db=NAME``, ``index=BIN_FLAT|BIN_IVF_FLAT``,
    ``nlist=N`` (``BIN_IVF_FLAT`` lists), ``nprobe=N``, ``text_bytes=N`` (the largest
    text/llm-tier body of a store created with this URI, default ``TEXT_BYTES``). A token (``user:password`` or an
    API key) may also come from ``$HASHMEM_MILVUS_TOKEN``, which keeps it out of the URI
    and out of process listings. Secrets never appear in ``location``.

    Raises:
        ConfigError: a malformed URI, naming what is wrong.
    """
    parts = urllib.parse.urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in ("milvus", "milvus+tls"):
        raise ConfigError(f"a Milvus store URI starts with milvus://, got {redact(uri)!r}")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as e:
        raise ConfigError(f"bad port in {redact(uri)!r}: {e}") from e
    host = parts.hostname
    if not host:
        raise ConfigError(f"no host in {redact(uri)!r}; expected milvus://HOST:PORT/COLLECTION")
    collection = parts.path.strip("/")
    if not _NAME.match(collection):
        raise ConfigError(
            f"bad collection name {collection!r} in {redact(uri)!r}: expected milvus://HOST:PORT/COLLECTION "
            "with a name of letters, digits and underscores (not starting with a digit)"
        )
    opts = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    known = {"secure", "server_pem", "server_name", "db", "index", "nlist", "nprobe", "text_bytes"}
    if unknown := sorted(set(opts) - known):
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} in the Milvus URI; known: {', '.join(sorted(known))}")
    secure = scheme == "milvus+tls" or opts.get("secure", "").lower() in ("1", "true", "yes")
    index = opts.get("index", "BIN_FLAT").upper()
    if index not in INDEX_TYPES:
        raise ConfigError(f"index={index} is not supported; use {' or '.join(INDEX_TYPES)}")
    ints = {}
    for k, default in (("nlist", 1024), ("nprobe", 16), ("text_bytes", TEXT_BYTES)):
        try:
            ints[k] = int(opts.get(k, default))
        except ValueError as e:
            raise ConfigError(f"{k} in the Milvus URI must be an integer, got {opts[k]!r}") from e
        if ints[k] <= 0:
            raise ConfigError(f"{k} in the Milvus URI must be positive, got {ints[k]}")
    if ints["text_bytes"] > MAX_TEXT_BYTES:
        raise ConfigError(f"text_bytes in the Milvus URI is at most {MAX_TEXT_BYTES} (one VARCHAR of base64), "
                          f"got {ints['text_bytes']}")
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    token = os.environ.get(TOKEN_ENV, "")
    netloc = f"{host}:{port}"
    where = f"milvus{'+tls' if scheme == 'milvus+tls' else ''}://{user + ':***@' if user else ''}{netloc}/{collection}"
    return {
        "address": f"{'https' if secure else 'http'}://{netloc}",
        "user": user,
        "password": password,
        "token": token,
        "db": opts.get("db", ""),
        "secure": secure,
        "server_pem": opts.get("server_pem"),
        "server_name": opts.get("server_name"),
        "collection": collection,
        "index": index,
        "nlist": ints["nlist"],
        "nprobe": ints["nprobe"],
        "text_bytes": ints["text_bytes"],
        "location": where,
    }


def redact(uri: str) -> str:
    """A URI with its password replaced by ``***``."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", uri)

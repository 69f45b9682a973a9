"""Where a store file's bytes go: stored bytes of each record part, and every page of the file by part.

``byte_sums`` adds up the stored values (what a passage costs before SQLite's overhead);
``file_parts`` attributes every byte of the file and its WAL to a part through SQLite's
``dbstat`` table, so the parts add up to ``file_bytes``.

What it does not do: change anything, or know a format beyond the lexicon's own count
(``lexicon``: ``stored_bytes``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .sqlfile import StoreFile

# b-tree (table or index) → part of ``file_parts``; others are their own part
_PARTS = {"records_namespace": "namespace_index", "namespaces": "namespace_index", "terms": "lexicon",
          "sqlite_autoindex_terms_1": "lexicon", "lexicon": "lexicon", "meta_sets": "metadata_sets", "meta": "settings",
          "sqlite_autoindex_meta_1": "settings", "texts": "text", "sqlite_schema": "sqlite", "sqlite_master": "sqlite",
          "sqlite_sequence": "sqlite", "batches": "batch_times"}


def byte_sums(file: StoreFile, lexicon) -> dict[str, int]:
    """Total stored bytes of each record part (``records``: the record count).

    Args:
        file: the open store file.
        lexicon: its lexicon tables (``lexicon``), for their ``stored_bytes``.
    """
    conn = file.conn
    r = conn.execute(
        "SELECT count(*), coalesce(sum(length(code)),0), coalesce(sum(length(qvec)),0), "
        "coalesce(sum(length(hints)),0), coalesce(sum(length(CAST(metadata AS BLOB))),0) FROM records"
    ).fetchone()
    sets = conn.execute(  # interned metadata counts once
        "SELECT coalesce(sum(length(CAST(json AS BLOB))),0) FROM meta_sets").fetchone()[0] if file.has("meta_sets") else 0
    texts = conn.execute("SELECT coalesce(sum(length(body)),0) FROM texts").fetchone()[0] \
        if file.has("texts") else 0
    # the text tier's zstd dictionaries (meta rows text_dict.<generation>) count as text bytes
    texts += conn.execute(
        "SELECT coalesce(sum(length(value)),0) FROM meta WHERE key LIKE 'text\\_dict.%' ESCAPE '\\'"
    ).fetchone()[0]
    terms = lexicon.stored_bytes()
    return {"records": r[0], "code": r[1], "qvec": r[2], "hints": r[3], "metadata": r[4] + sets, "text": texts, "lexicon": terms}


def file_bytes(path: Path) -> int:
    """Size of the database file plus its WAL, as on disk now."""
    total = 0
    for suffix in ("", "-wal"):
        p = Path(str(path) + suffix)
        if p.exists():
            total += p.stat().st_size
    return total


def file_parts(file: StoreFile) -> dict[str, int]:
    """Bytes of the file and its WAL by part; they add up to ``file_bytes()``.

    Pages are attributed to b-trees through SQLite's ``dbstat`` table: the
    records' pages split into their ``code``, ``qvec``, ``hints`` and
    ``metadata`` bytes (their own; interned sets are ``metadata_sets``) and ``records_other`` (id, namespace,
    row headers, free space in pages; format 1 and 2 also time and generation); ``batch_times``
    (format 3: the ``batches`` table); ``namespace_index``; ``lexicon``; ``settings`` (the meta
    table: config, hasher, quantizer, text-tier dictionaries, format 3 namespace ids); ``text``;
    ``ivf_lists``; ``term_index`` (a text/llm store's, ``termindex``); ``sqlite`` (schema; formats 1 and 2 also the id sequence);
    ``free_pages``; ``wal`` (whatever the file and WAL hold beyond the
    database's pages). Without ``dbstat`` everything is ``unattributed``.
    """
    conn = file.conn
    total = file_bytes(file.path)
    try:
        btrees = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    except sqlite3.OperationalError:
        return {"unattributed": total}
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    parts: dict[str, int] = {}
    for name, size in btrees:
        if name == "records":
            content = dict(zip(("code", "qvec", "hints", "metadata"), conn.execute(
                "SELECT coalesce(sum(length(code)),0), coalesce(sum(length(qvec)),0), coalesce(sum(length(hints)),0), "
                "coalesce(sum(length(CAST(metadata AS BLOB))),0) FROM records").fetchone(), strict=True))
            parts.update(content)
            parts["records_other"] = size - sum(content.values())
        else:
            part = _PARTS.get(name, name)
            parts[part] = parts.get(part, 0) + size
    parts["free_pages"] = free * page_size
    parts["wal"] = total - pages * page_size
    return parts

"""The collections of a Milvus store: their fields, indexes and partitions, created by ``create_collections``.

Collections (names from the URI's collection ``C``):

- ``C``: one row per passage. ``id`` INT64 primary key (assigned by the client, see
  ``ids.IdAllocator``); ``code`` ``BINARY_VECTOR`` of ``bits`` searched by ``HAMMING``
  (index ``BIN_FLAT`` by default, ``BIN_IVF_FLAT`` with ``?index=BIN_IVF_FLAT&nlist=N``);
  ``namespace`` VARCHAR, whose hash picks one of ``PARTITIONS`` partitions (what a
  Milvus *partition key* does; it is done here because server 2.3.5's ``upsert``
  puts partition-key rows in the wrong partition, measured), so a search reads only its
  namespace's partition and the namespace filter costs next to nothing; ``gen`` INT64, the hashing generation of the code; ``qvec`` the int8
  vector and ``hints`` the hint bytes, both base64 in VARCHAR (Milvus 2.3 allows one
  vector field per collection, has no ``INT8_VECTOR`` (≥ 2.6) and no bytes scalar;
  the layout is recorded in the settings as ``qvec_layout`` so a store made on a
  server with ``INT8_VECTOR`` can use it without a format guess); ``metadata`` JSON;
  ``created`` DOUBLE; and, only in a store created with ``text`` or ``llm`` fidelity,
  ``body``: the passage's text-tier (zstd) or llm-tier body, base64 in a VARCHAR declared
  at ``text_bytes`` (``?text_bytes=N`` of the creating URI, default ``TEXT_BYTES``, at
  most ``MAX_TEXT_BYTES``; recorded in the ``layout`` setting). A longer body is refused
  whole (``InputError``, before anything is written), never truncated.
- ``C__settings``: named values (``settings``): a VARCHAR ``key`` and a VARCHAR ``value``.
- ``C__lexicon``: one row per lexicon term (id, term, document frequency).

Milvus 2.3 requires a vector field in every collection: the settings and the lexicon have
a 2-d one (``DUMMY``), never searched.

What it does not do: read or write rows (``backend``, ``settings``), migrate an existing
collection (a missing one is created, an existing one is used as it is) or drop anything.
"""

from __future__ import annotations

from ...config import StoreConfig
from .connection import READ
from .uri import PARTITIONS

DUMMY = "v"  # Milvus 2.3 requires a vector field in every collection; settings and lexicon get a 2-d one
QVEC_LAYOUT = "base64-varchar"  # how qvec is kept; "int8-vector" where the server has INT8_VECTOR (≥ 2.6)


def create_collections(client, config: StoreConfig, opts: dict, *, records: str, settings: str, lexicon: str,
                       text_bytes: int | None) -> None:
    """Create whichever of the three collections (and the records' partitions) is missing, then load all three
    (each created unloaded, so that it is loaded once, with its partitions, next to the others).

    Args:
        client: a ``connection.connect`` client (call inside ``connection.errors``: pymilvus raises).
        config: the store's config (``bits``, ``dim``, ``hint_bytes`` size the fields).
        opts: ``uri.parse_uri``'s settings (``index``, ``nlist``).
        records, settings, lexicon: the three collections' names.
        text_bytes: the bound of one body, or None for a store without a ``body`` field.
    """
    from pymilvus import DataType

    c = client
    for name, key_type in ((settings, DataType.VARCHAR), (lexicon, DataType.INT64)):
        if not c.has_collection(name):
            schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
            if key_type == DataType.VARCHAR:
                schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=512)
                schema.add_field("value", DataType.VARCHAR, max_length=65535)
            else:
                schema.add_field("id", DataType.INT64, is_primary=True)
                schema.add_field("term", DataType.VARCHAR, max_length=512)
                schema.add_field("df", DataType.INT64)
            schema.add_field(DUMMY, DataType.FLOAT_VECTOR, dim=2)
            idx = c.prepare_index_params()
            idx.add_index(field_name=DUMMY, index_type="FLAT", metric_type="L2")
            c.create_collection(name, schema=schema, consistency_level=READ)  # index_params would load it now
            c.create_index(name, idx, sync=False)  # an empty collection: its index is built at once
    if not c.has_collection(records):
        schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("code", DataType.BINARY_VECTOR, dim=config.bits)
        schema.add_field("namespace", DataType.VARCHAR, max_length=1024)
        schema.add_field("gen", DataType.INT64)
        # declared at their real bound: Milvus sizes segments from the declared lengths
        schema.add_field("qvec", DataType.VARCHAR, max_length=b64_len(config.dim))
        schema.add_field("hints", DataType.VARCHAR, max_length=b64_len(config.hint_bytes + 2))
        if text_bytes:  # only stores with text fidelity have (and pay for) a body field
            schema.add_field("body", DataType.VARCHAR, max_length=b64_len(text_bytes))
        schema.add_field("metadata", DataType.JSON)
        schema.add_field("created", DataType.DOUBLE)
        idx = c.prepare_index_params()
        params = {"nlist": opts["nlist"]} if opts["index"] == "BIN_IVF_FLAT" else {}
        idx.add_index(field_name="code", index_type=opts["index"], metric_type="HAMMING", params=params)
        c.create_collection(records, schema=schema, consistency_level=READ)
        c.create_index(records, idx, sync=False)
        have = set(c.list_partitions(records))
        for i in range(PARTITIONS):
            if f"ns{i:03d}" not in have:
                c.create_partition(records, f"ns{i:03d}")
    _load(c, (records, settings, lexicon))


def _load(client, names) -> None:
    """Load collections together: every load asked for, then each waited for (the server loads them at once;
    one after another, a new store's three loads took ~1.3 s each)."""
    for name in names:
        client.load_collection(name, _async=True)
    for name in names:
        client.load_collection(name)


def load_collections(client, *, records: str, settings: str, lexicon: str) -> bool:
    """Load the three collections of a store that exists (its records and settings collections do); False if not."""
    if not (client.has_collection(records) and client.has_collection(settings)):
        return False
    _load(client, (records, settings, lexicon))
    return True


def layout_of(opts: dict, text_bytes: int | None) -> dict:
    """The ``layout`` setting of a store created with ``opts``: what a reader needs beyond the config."""
    return {"qvec_layout": QVEC_LAYOUT, "index": opts["index"], "nlist": opts["nlist"],
            "partitions": PARTITIONS, "text_bytes": text_bytes}


def b64_len(n_bytes: int) -> int:
    """Characters of the base64 text of ``n_bytes`` bytes (padding included)."""
    return 4 * max(1, -(-n_bytes // 3))


def code_bytes(v) -> bytes:
    """A BINARY_VECTOR value as pymilvus returns it (bytes, or a list holding bytes)."""
    if isinstance(v, list | tuple):
        v = v[0] if len(v) == 1 and isinstance(v[0], bytes | bytearray) else bytes(v)
    return bytes(v)

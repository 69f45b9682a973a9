"""The stores ``benchmarks/peers.py`` compares, behind one small interface.

Each store keeps, in its own folder, the passages' vectors (or codes) and their texts, and
is given integer ids 0 … n-1 (its position in the corpus). ``build`` ingests precomputed
embeddings; ``open`` opens what ``build`` left (in this process or a fresh one); ``modes``
are its ways to search, each ``(query vector [dim], query text, k) -> positions``;
``fetch`` returns the texts of some positions. A store whose libraries do not import is
reported by ``missing()`` and skipped.

- hashmem (``hints``, ``text``, ``llm``): ``Memory.add(texts, embeddings=...)``, searched
  ``binary+int8`` and ``hybrid`` (the store's default lexical weight); no metadata (the
  store's ids, 1 … n, are the positions + 1).
- Chroma: ``PersistentClient``, a cosine HNSW collection (defaults), documents kept.
- LanceDB: a table (id, text, vector) with a BTREE index on id, searched flat (exact; no ANN
  index, LanceDB builds none unless asked).
- Qdrant local mode (``QdrantClient(path=...)``, no server): cosine, the text as payload.
- sqlite-vec: a ``vec0`` table, ``float[dim]`` (cosine) or ``bit[dim]`` (sign bits,
  Hamming), the text an auxiliary column; through apsw (the standard library's sqlite3 of
  this Python cannot load extensions).
- usearch: an HNSW index (cosine, f32, defaults) saved to a file, texts in SQLite.
- faiss: ``IndexFlatIP`` (exact float32) or ``IndexBinaryFlat`` (sign bits), saved to a
  file, texts in SQLite.
"""

from __future__ import annotations

import importlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np

Search = Callable[[np.ndarray, str, int], list[int]]


class Store:
    name = ""
    needs: tuple[str, ...] = ()

    def missing(self) -> str | None:
        """Why this store cannot run here (a library that does not import), else None."""
        for mod in self.needs:
            try:
                importlib.import_module(mod)
            except Exception as e:  # noqa: BLE001 - any reason is reported, none is fatal
                return f"{mod} does not import ({type(e).__name__}: {e})"
        return None

    def version(self) -> str:
        mod = importlib.import_module(self.needs[0]) if self.needs else None
        return str(getattr(mod, "__version__", "?"))

    def warm(self) -> None:
        """Load what is not measured (hashmem's embedder) before the clock starts."""

    def build(self, folder: Path, texts: list[str], emb: np.ndarray) -> None:
        raise NotImplementedError

    def open(self, folder: Path) -> None:
        raise NotImplementedError

    def modes(self) -> dict[str, Search]:
        raise NotImplementedError

    def fetch(self, positions: list[int]) -> list[str | None]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _texts_db(folder: Path, texts: list[str] | None = None) -> sqlite3.Connection:
    """The SQLite file that keeps the texts beside a vector index (usearch, faiss)."""
    db = sqlite3.connect(folder / "texts.db", check_same_thread=False)
    if texts is not None:
        db.execute("CREATE TABLE texts (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
        db.executemany("INSERT INTO texts VALUES (?, ?)", enumerate(texts))
        db.commit()
    return db


def _fetch_sql(db, table: str, key: str, positions: list[int]) -> list[str]:
    marks = ",".join("?" * len(positions))
    rows = dict(db.execute(f"SELECT {key}, text FROM {table} WHERE {key} IN ({marks})", positions).fetchall())
    return [rows[p] for p in positions]


class Hashmem(Store):
    needs = ("hashmem",)

    def __init__(self, fidelity: str) -> None:
        self.fidelity = fidelity
        self.name = f"hashmem {fidelity}"
        self.mem = None

    def version(self) -> str:
        import subprocess

        root = Path(__file__).resolve().parents[1]
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        return out.stdout.strip() or "?"

    def build(self, folder, texts, emb) -> None:
        from hashmem.memory import Memory

        with Memory(folder / "store.db", fidelity=self.fidelity) as mem:
            ids = mem.add(texts, embeddings=emb, progress=False)
        if ids != list(range(1, len(texts) + 1)):
            raise RuntimeError("hashmem gave ids other than 1 … n")

    def warm(self) -> None:
        from hashmem.memory.embedding.embedder import Embedder

        Embedder().encode(["warm up"])

    def open(self, folder) -> None:
        from hashmem.memory import Memory

        self.mem = Memory(folder / "store.db", create=False, readonly=True)

    def modes(self):
        def run(mode: str) -> Search:
            def search(q, text, k):
                hits = self.mem.search_embeddings(q[None], k, mode=mode,
                                                  query_texts=[text] if mode == "hybrid" else None)[0]
                return [h.id - 1 for h in hits]

            return search

        return {"binary+int8": run("binary+int8"), "hybrid": run("hybrid")}

    def fetch(self, positions):
        return [self.mem.get(p + 1).text for p in positions]

    def close(self) -> None:
        if self.mem is not None:
            self.mem.close()
            self.mem = None


class Chroma(Store):
    name, needs = "Chroma", ("chromadb",)

    def build(self, folder, texts, emb) -> None:
        import chromadb

        client = chromadb.PersistentClient(path=str(folder))
        col = client.create_collection("bench", metadata={"hnsw:space": "cosine"})
        step = client.get_max_batch_size()
        for s in range(0, len(texts), step):
            col.add(ids=[str(i) for i in range(s, min(s + step, len(texts)))], embeddings=emb[s : s + step],
                    documents=texts[s : s + step])
        del col, client

    def open(self, folder) -> None:
        import chromadb

        self.client = chromadb.PersistentClient(path=str(folder))
        self.col = self.client.get_collection("bench")

    def modes(self):
        def search(q, text, k):
            r = self.col.query(query_embeddings=[q], n_results=k, include=["distances"])
            return [int(i) for i in r["ids"][0]]

        return {"hnsw float32": search}

    def fetch(self, positions):
        r = self.col.get(ids=[str(p) for p in positions], include=["documents"])
        by = dict(zip(r["ids"], r["documents"], strict=True))
        return [by[str(p)] for p in positions]

    def close(self) -> None:
        self.col = self.client = None


class LanceDB(Store):
    name, needs = "LanceDB", ("lancedb", "pyarrow")

    def build(self, folder, texts, emb) -> None:
        import lancedb
        import pyarrow as pa

        data = pa.table({
            "id": pa.array(range(len(texts)), pa.int64()),
            "text": pa.array(texts, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), emb.shape[1]),
        })
        table = lancedb.connect(str(folder)).create_table("bench", data=data)
        table.create_scalar_index("id")

    def open(self, folder) -> None:
        import lancedb

        self.table = lancedb.connect(str(folder)).open_table("bench")

    def modes(self):
        def search(q, text, k):
            rows = self.table.search(q).distance_type("cosine").limit(k).select(["id", "_distance"]).to_arrow()
            return rows["id"].to_pylist()

        return {"flat float32": search}

    def fetch(self, positions):
        rows = self.table.search().where(f"id IN ({','.join(map(str, positions))})").select(["id", "text"]) \
            .limit(len(positions)).to_arrow()
        by = dict(zip(rows["id"].to_pylist(), rows["text"].to_pylist(), strict=True))
        return [by[p] for p in positions]

    def close(self) -> None:
        self.table = None


class Qdrant(Store):
    name, needs = "Qdrant local", ("qdrant_client",)

    def version(self) -> str:
        import importlib.metadata

        return importlib.metadata.version("qdrant-client")

    def build(self, folder, texts, emb) -> None:
        from qdrant_client import QdrantClient, models

        client = QdrantClient(path=str(folder))
        client.create_collection("bench", vectors_config=models.VectorParams(size=emb.shape[1],
                                                                             distance=models.Distance.COSINE))
        client.upload_collection("bench", vectors=emb, payload=({"text": t} for t in texts),
                                 ids=range(len(texts)), batch_size=1024)
        client.close()

    def open(self, folder) -> None:
        from qdrant_client import QdrantClient

        self.client = QdrantClient(path=str(folder))

    def modes(self):
        def search(q, text, k):
            return [p.id for p in self.client.query_points("bench", query=q, limit=k, with_payload=False).points]

        return {"float32": search}

    def fetch(self, positions):
        by = {p.id: p.payload["text"] for p in self.client.retrieve("bench", ids=positions, with_payload=True)}
        return [by[p] for p in positions]

    def close(self) -> None:
        self.client.close()


class SqliteVec(Store):
    needs = ("sqlite_vec", "apsw")

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "float" or "bit"
        self.name = f"sqlite-vec {kind}"

    def _connect(self, folder: Path):
        import apsw
        import sqlite_vec

        db = apsw.Connection(str(folder / "vec.db"))
        db.enable_load_extension(True)
        db.load_extension(sqlite_vec.loadable_path())
        return db

    def build(self, folder, texts, emb) -> None:
        db = self._connect(folder)
        column = f"float[{emb.shape[1]}] distance_metric=cosine" if self.kind == "float" else f"bit[{emb.shape[1]}]"
        value = "?" if self.kind == "float" else "vec_quantize_binary(?)"
        with db:
            db.execute(f"CREATE VIRTUAL TABLE v USING vec0(embedding {column}, +text text)")
            db.executemany(f"INSERT INTO v(rowid, embedding, text) VALUES (?, {value}, ?)",
                           ((i, emb[i].tobytes(), t) for i, t in enumerate(texts)))
        db.close()

    def open(self, folder) -> None:
        self.db = self._connect(folder)

    def modes(self):
        value = "?" if self.kind == "float" else "vec_quantize_binary(?)"
        sql = f"SELECT rowid FROM v WHERE embedding MATCH {value} AND k = ? ORDER BY distance"

        def search(q, text, k):
            return [r[0] for r in self.db.execute(sql, (np.asarray(q, np.float32).tobytes(), k))]

        return {"float32" if self.kind == "float" else "bit (Hamming)": search}

    def fetch(self, positions):
        return _fetch_sql(self.db, "v", "rowid", positions)

    def close(self) -> None:
        self.db.close()


class Usearch(Store):
    name, needs = "usearch", ("usearch",)

    def build(self, folder, texts, emb) -> None:
        from usearch.index import Index

        index = Index(ndim=emb.shape[1], metric="cos", dtype="f32")
        index.add(np.arange(len(texts)), emb)
        index.save(str(folder / "index.usearch"))
        _texts_db(folder, texts).close()

    def open(self, folder) -> None:
        from usearch.index import Index

        self.index = Index.restore(str(folder / "index.usearch"))
        self.db = _texts_db(folder)

    def modes(self):
        def search(q, text, k):
            return [int(x) for x in self.index.search(q, k).keys]

        return {"hnsw float32": search}

    def fetch(self, positions):
        return _fetch_sql(self.db, "texts", "id", positions)

    def close(self) -> None:
        self.db.close()


class Faiss(Store):
    needs = ("faiss",)

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "flat" (IndexFlatIP) or "binary" (IndexBinaryFlat over sign bits)
        self.name = f"faiss {kind}"

    def build(self, folder, texts, emb) -> None:
        import faiss

        if self.kind == "flat":
            index = faiss.IndexFlatIP(emb.shape[1])
            index.add(np.ascontiguousarray(emb, np.float32))
            faiss.write_index(index, str(folder / "index.faiss"))
        else:
            index = faiss.IndexBinaryFlat(emb.shape[1])
            index.add(np.packbits(emb > 0, axis=1))
            faiss.write_index_binary(index, str(folder / "index.faiss"))
        _texts_db(folder, texts).close()

    def open(self, folder) -> None:
        import faiss

        path = str(folder / "index.faiss")
        self.index = faiss.read_index(path) if self.kind == "flat" else faiss.read_index_binary(path)
        self.db = _texts_db(folder)

    def modes(self):
        def search(q, text, k):
            x = q[None].astype(np.float32) if self.kind == "flat" else np.packbits(q[None] > 0, axis=1)
            return [int(i) for i in self.index.search(x, k)[1][0]]

        return {"exact float32" if self.kind == "flat" else "bit (Hamming)": search}

    def fetch(self, positions):
        return _fetch_sql(self.db, "texts", "id", positions)

    def close(self) -> None:
        self.db.close()


def stores() -> list[Store]:
    """Every store compared, hashmem first."""
    return [Hashmem("hints"), Hashmem("text"), Chroma(), LanceDB(), Qdrant(), SqliteVec("float"),
            SqliteVec("bit"), Usearch(), Faiss("flat"), Faiss("binary")]

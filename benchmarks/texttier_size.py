"""Text-tier bytes per passage against gzip -9 and zstd -19 per passage, by store size.

No embedding: passages go straight into a bare store through the same
``memory.texttier`` codec and retraining policy as ``Memory`` uses (the hook
runs after every 256-passage batch, as in ``Memory.add_passages``).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/texttier_size.py ../shared/data/canterbury 1000 0
"""

from __future__ import annotations

import gzip
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import zstandard

from hashmem.evaluation.recall import load_passages
from hashmem.memory.backends.local.storage import Storage
from hashmem.memory.config import StoreConfig
from hashmem.memory.tiers import text as texttier


def measure(dataset: str, n: int, seed: int = 0) -> dict:
    passages = load_passages(dataset)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(passages), size=min(n, len(passages)), replace=False) if n else np.arange(len(passages))
    texts = [passages[i] for i in pick]
    with tempfile.TemporaryDirectory() as tmp:
        storage = Storage(Path(tmp) / "t.db", create=True)
        storage.initialize(StoreConfig(fidelity="text"))
        tier = texttier.for_storage(storage)
        for s in range(0, len(texts), 256):
            batch = texts[s : s + 256]
            with storage.transaction() as c:
                storage.insert(c, namespace="default", metadata=[{}] * len(batch),
                               codes=np.zeros((len(batch), 32), np.uint8), qvecs=np.zeros((len(batch), 384), np.int8),
                               hints=[b"\x90"] * len(batch), gen=0, texts=tier.encode(batch))
            texttier.maybe_retrain(storage)
        dict_bytes = tier.dictionary_bytes()
        bodies = storage.byte_sums()["text"] - dict_bytes  # byte_sums counts the stored dictionary as text
        storage.close()
    raw = [t.encode("utf-8") for t in texts]
    zc = zstandard.ZstdCompressor(level=19)
    gz = float(np.mean([len(gzip.compress(b, 9)) for b in raw]))
    ours = (bodies + dict_bytes) / len(texts)
    return {"dataset": dataset, "passages": len(texts), "raw_bytes_per_passage": round(sum(map(len, raw)) / len(raw), 1),
            "bodies_per_passage": round(bodies / len(texts), 1), "dictionary_bytes": dict_bytes,
            "bytes_per_passage": round(ours, 1), "gzip9_bytes_per_passage": round(gz, 1),
            "zstd19_bytes_per_passage": round(float(np.mean([len(zc.compress(b)) for b in raw])), 1),
            "ratio_to_gzip9": round(ours / gz, 3)}


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0)))

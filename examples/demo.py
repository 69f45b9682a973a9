"""`make demo`: ingest the public-domain texts in examples/texts and search them.

The store keeps codes, int8 vectors and hints, not the text; each hit's
metadata points back into its source file (path and character offsets), which
is how the passage is shown here.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from hashmem import Memory
from hashmem.memory import sources

TEXTS = Path(__file__).parent / "texts"
QUERIES = [
    "rights that cannot be taken away",
    "why the king is called a tyrant",
    "honouring soldiers who died in battle",
    "both sides prayed to the same God",
]


def main() -> None:
    files = sorted(TEXTS.glob("*.txt"))
    with tempfile.TemporaryDirectory() as tmp, Memory(Path(tmp) / "demo.db") as mem:
        t = time.perf_counter()
        sources.check_all(files)
        ids = mem.add_passages(sources.passages(files, passage_tokens=96), progress=False)
        took = time.perf_counter() - t
        s = mem.stats()
        print(f"stored {len(ids)} passages from {len(files)} files in {took:.1f} s "
              f"({s.config['bits']}-bit {s.config['method']} codes, "
              f"{s.bytes_per_passage['code'] + s.bytes_per_passage['qvec'] + s.bytes_per_passage['hints']:.0f} "
              "bytes per passage of codes, vectors and hints)\n")
        for q in QUERIES:
            print(f"? {q}")
            for h in mem.search(q, k=2):
                src = Path(h.metadata["source"])
                text = src.read_text(encoding="utf-8")[h.metadata["start"] : h.metadata["end"]]
                snippet = " ".join(text.split())
                print(f"  [{h.id}] {h.score:.3f}  {src.name}")
                print(f"      hints: {' '.join(h.hints)}")
                print(f"      text : {snippet[:160]}{'…' if len(snippet) > 160 else ''}")
            print()


if __name__ == "__main__":
    sys.exit(main())

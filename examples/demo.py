"""`make demo`: ingest the public-domain texts in examples/texts, search them, recall a hit, ask a question.

The store keeps codes, int8 vectors and hints, not the text; each hit's
metadata points back into its source file (path and character offsets), which
is how the passage is shown here. Then the one thing only hashmem does: it gives
back what it stored — a local llama.cpp model rebuilds a hit from its code, vector
and hints (``recall``), and answers a question from recalled memories, citing
them (``ask``). Without llama-cpp-python the extractive decoder stands in.
With HASHMEM_STORE set (a path or a milvus://HOST:PORT/COLLECTION URI) the demo
uses that store, filling it on the first run only.
"""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap
import time
import warnings
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
QUESTION = "Which book did both sides read?"


def _wrap(text: str) -> str:
    return textwrap.fill(" ".join(text.split()), width=100, initial_indent="      ", subsequent_indent="      ")


def main() -> None:
    files = sorted(TEXTS.glob("*.txt"))
    store = os.environ.get("HASHMEM_STORE")  # a path or milvus:// URI to keep the store; else a temporary file
    with tempfile.TemporaryDirectory() as tmp, Memory(store or Path(tmp) / "demo.db") as mem:
        t = time.perf_counter()
        if len(mem):  # filled by an earlier run
            ids = mem.ids()
        else:
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

        from hashmem.decoders import open_decoder

        with warnings.catch_warnings(record=True):  # the fallback's notice is printed below, once
            warnings.simplefilter("always")
            decoder = open_decoder(mem)
        if decoder.notice:
            print(f"({decoder.notice})\n")
        hit = mem.search(QUERIES[-1], k=1)[0]
        r = decoder.reconstruct(hit.id)
        print(f"recall [{hit.id}]: rebuilt by the {r.decoder} decoder from its code, int8 vector and "
              f"{len(hit.hints)} hints (fidelity {r.fidelity:.3f}, {r.ms:.0f} ms):")
        print(_wrap(r.text))
        print()
        memories = mem.search(QUESTION, k=3)
        answer = decoder.ask(QUESTION, memories)
        print(f"ask: {QUESTION}")
        print(f"      from memories {', '.join(f'[{h.id}]' for h in memories)}:")
        print(_wrap(answer.text))
        cited = ", ".join(f"[{i}] {Path(mem.get(i).metadata['source']).name}" for i in answer.citations)
        print(f"      cites: {cited or 'nothing'} ({answer.decoder} decoder, {answer.ms:.0f} ms)")


if __name__ == "__main__":
    sys.exit(main())

"""Agent long-term memory: store observations over time, recall them by namespace.

Each user (or agent) gets its own namespace — a hard partition, so one user's
memories never surface in another's search. Metadata filters narrow recall to
a session or a kind of observation.

Run:  python examples/agent_memory.py
With HASHMEM_STORE set (a path or a milvus://HOST:PORT/COLLECTION URI) the
memories go there instead of a temporary local store (observed once: a store
that already has the users' namespaces is used as it is).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from hashmem import Memory

OBSERVATIONS = {
    "user:ana": [
        ("Ana said she is allergic to peanuts.", "preference"),
        ("Ana is planning a trip to Lisbon in May 2027.", "plan"),
        ("Ana prefers short answers without bullet points.", "preference"),
        ("Ana's cat is called Miso and is 4 years old.", "fact"),
    ],
    "user:ben": [
        ("Ben is learning Rust and struggles with lifetimes.", "fact"),
        ("Ben asked for vegetarian recipes with lentils.", "preference"),
        ("Ben's deadline for the thesis is 15 January.", "plan"),
    ],
}


def remember(mem: Memory, user: str, text: str, kind: str, session: int) -> int:
    [rid] = mem.add([text], namespace=user, metadata={"kind": kind, "session": session, "at": time.time()})
    return rid


def recall(mem: Memory, user: str, question: str, *, kind: str | None = None, k: int = 2):
    return mem.search(question, k=k, namespace=user, where={"kind": kind} if kind else None)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Memory(os.environ.get("HASHMEM_STORE") or Path(tmp) / "agent.db") as mem:
        for session, (user, items) in enumerate(OBSERVATIONS.items(), start=1):
            for text, kind in items if not mem.has_namespace(user) else ():
                remember(mem, user, text, kind, session)
        for user, question, kind in [
            ("user:ana", "what food should I avoid cooking for her?", None),
            ("user:ana", "how does she like replies formatted?", "preference"),
            ("user:ben", "when is his deadline?", "plan"),
            ("user:ben", "does he have a pet?", None),  # Ana's cat must not leak into Ben's memory
        ]:
            hits = recall(mem, user, question, kind=kind)
            print(f"{user} ? {question}")
            for h in hits:
                print(f"   [{h.id}] {h.score:.3f} {h.metadata['kind']:<10} hints: {' '.join(h.hints)}")
        print("\nnamespaces:", mem.namespaces())


if __name__ == "__main__":
    main()

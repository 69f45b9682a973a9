"""One rendering of results as JSON objects and terminal lines, shared by the CLI and the servers.

``hit_dict`` (a search hit), ``reconstruction_dict`` (a recalled passage) and
``answer_dict`` (an answer with the hits it drew on) are what ``hashmem ... --json``
prints and what the HTTP API answers, so the two never drift apart.

What it does not do: decide anything, or call the library.
"""

from __future__ import annotations


def hit_dict(h) -> dict:
    """A ``Hit`` as JSON: id, score (6 decimals), Hamming distance, hints, metadata, namespace."""
    return {"id": h.id, "score": round(h.score, 6), "hamming": h.hamming, "hints": h.hints,
            "metadata": h.metadata, "namespace": h.namespace}


def reconstruction_dict(r) -> dict:
    """A ``Reconstruction`` as JSON (fidelity to 4 decimals, ms to 1)."""
    return {"id": r.id, "text": r.text, "fidelity": round(r.fidelity, 4), "exact": r.exact,
            "candidates_tried": r.candidates_tried, "ms": round(r.ms, 1), "decoder": r.decoder,
            "hamming": r.hamming, "unsupported": list(r.unsupported)}


def answer_dict(answer, hits) -> dict:
    """An ``Answer`` and the hits it was drawn from, as JSON."""
    return {"answer": answer.text, "citations": answer.citations, "found": answer.found,
            "unsupported": list(answer.unsupported), "decoder": answer.decoder, "ms": round(answer.ms, 1),
            "hits": [hit_dict(h) for h in hits]}


def summary_dict(summary, hits) -> dict:
    """A ``Summary`` and the hits it was drawn from, as JSON."""
    return {"summary": summary.text, "sentences": [{"text": s.text, "citations": s.citations}
                                                   for s in summary.sentences],
            "citations": summary.citations, "found": summary.found, "method": summary.method,
            "dropped": summary.dropped, "unsupported": list(summary.unsupported), "decoder": summary.decoder,
            "ms": round(summary.ms, 1), "hits": [hit_dict(h) for h in hits]}


def format_reconstruction(r) -> str:
    """A reconstruction under a search hit on a terminal: the text, then how it was made."""
    how = "exact" if r.exact else f"fidelity {r.fidelity:.3f}, {r.decoder}, best of {r.candidates_tried}"
    return f"{r.text}\n          ({how}, {r.ms:.0f} ms)"

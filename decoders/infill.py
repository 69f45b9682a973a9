"""Infill drafts: a passage put back from its hints, the model choosing only the small words between them.

The hints come out verbatim and in order; between two of them the model may
put at most ``MAX_FILLERS`` of ``FILLERS`` (the, of, and, …: exactly the words
the hints never keep), so a draft cannot invent a number or a name. After each
word the model's next-token logits decide among a few options (the next hint
or a filler; punctuation was measured to lower fidelity, so none is offered):
an option is scored by the logit of its first token and sampled at a
temperature with a numpy generator seeded per draft, so the same prompt, hints
and seed give the same draft.

What it does not do: build the prompt (``llama``), choose among the drafts
(``base.score_candidates``), or load the model (``llamacpp``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hashmem.memory import hints as hintlib

from .chat import last_logits

# the small words an infill draft may put between two keywords: exactly those the hints never
# keep (memory.hints.STOPWORDS; measured better than a hand-picked list of 50: docs/recall.md)
FILLERS = tuple(sorted(w for w in hintlib.STOPWORDS if len(w) > 1 or w == "a"))
MAX_FILLERS = 3  # small words between two keywords, at most


def infill_drafts(llm, prompt: list[int], hints: Sequence[str], seeds: Sequence[int], *, temperature: float,
                  extra: Sequence[str] = ()) -> list[str]:
    """Constrained drafts: the hints in order, the model choosing the small words between them.

    Args:
        llm: a loaded ``llama_cpp.Llama``; its KV cache is overwritten.
        prompt: the prompt's tokens, evaluated once and shared by all drafts.
        hints: the record's hints, in passage order (at least one).
        seeds: one draft per seed.
        temperature: sampling temperature over the options' first-token logits.
        extra: words (terms decoded from the vector) that may be used once each, like fillers.

    Returns:
        One draft per seed, ending with a full stop.
    """
    tok = lambda text: llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)  # noqa: E731
    hint_toks = [tok(h if i == 0 else " " + h) for i, h in enumerate(hints)]
    fill_toks = [(" " + w, tok(" " + w)) for w in FILLERS]
    llm.eval(prompt)
    drafts = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        llm.n_tokens = len(prompt)  # drop the previous draft; the prompt stays cached
        pieces = [hints[0]]
        llm.eval(hint_toks[0])
        fills = 0
        spare = [(" " + w, tok(" " + w)) for w in extra]
        i = 1
        while i < len(hints):
            options = [(" " + hints[i], hint_toks[i])]
            if fills < MAX_FILLERS:
                options += fill_toks + spare
            logits = last_logits(llm)
            z = np.array([logits[t[0]] for _, t in options], dtype=np.float64) / max(temperature, 1e-3)
            p = np.exp(z - z.max())
            k = int(rng.choice(len(options), p=p / p.sum()))
            text, toks = options[k]
            i, fills = (i + 1, 0) if k == 0 else (i, fills + 1)
            if k > len(fill_toks):
                spare.pop(k - len(fill_toks) - 1)
            pieces.append(text)
            llm.eval(toks)
        drafts.append("".join(pieces).rstrip(",.") + ".")
    return drafts

"""The llm tier's coder and body format, with a small deterministic byte-level model (fast unit tests).

The real GGUF model runs the same paths in tests/test_llmcodec.py; the coder's arithmetic alone
in tests/test_arith.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from hashmem.memory import Memory, ModelMismatchError, StoreCorruptError, ingest
from hashmem.memory.tiers import arith, llmcode
from hashmem.memory.tiers import llm as llmtier
from hashmem.memory.tiers import text as texttier

LONG_LINE = "".join(np.random.default_rng(0).choice(list("abcdefghij klmnop"), 3000))  # zstd: ~0.6 B/char
AWKWARD = [
    "Ünïcode: naïve café, 日本語のテキスト, emoji 🧠🔥, and a combining e\u0301.",
    "whitespace   runs\t\ttabs  \n\n\n  empty lines above, trailing spaces   ",
    LONG_LINE,
    "def f(x):\n    return {'a': [1, 2, 3], 'b': x ** 2}  # code\n",
    "Numbers 3.14159 2718 1,000,000 -42 0x1F 1e-9 and dates 2024-02-29.",
    "a",
    " leading space and \r\n CRLF line ends\r\n",
]


class ByteModel:
    """Tokens are bytes (256) plus 4 unused ids; logits favour the byte after the previous one
    and the bytes of the prompt, and it knows one text (``known``) by heart."""

    n_vocab = 260
    max_tokens = 10_000

    def __init__(self, sha: str = "a" * 64, *, drift: bool = False, known: bytes = LONG_LINE.encode()) -> None:
        self.sha, self.drift, self.known = sha, drift, known
        self.prev, self.calls, self.seen = 0, 0, 0
        self.bias = np.zeros(self.n_vocab, np.float32)

    def fingerprint(self) -> dict:
        return {"model_sha256": self.sha, "model_file": "bytes.gguf", "runtime": "test", "threads": 1}

    def tokenize(self, data: bytes) -> list[int]:
        return list(data)

    def detokenize(self, tokens) -> bytes:
        return bytes(tokens)

    def start(self, prompt: str) -> None:
        self.prev, self.seen = len(prompt) % 256, 0
        self.bias = np.zeros(self.n_vocab, np.float32)
        self.bias[sorted(set(prompt.encode()))] = 1.0  # the prompt's bytes are likelier
        self.calls += 1

    def feed(self, token: int) -> None:
        self.prev = token
        on_track = self.seen >= 0 and self.seen < len(self.known) and self.known[self.seen] == token
        self.seen = self.seen + 1 if on_track else -1

    def logits(self) -> np.ndarray:
        z = np.full(self.n_vocab, -4.0, np.float32)
        z[(self.prev + 1) % 256] = 3.0
        if 0 <= self.seen < len(self.known):  # it knows one text by heart (until the text leaves it)
            z[self.known[self.seen]] = 12.0
        z[ord(" ")], z[ord("e")] = 2.0, 1.5
        z += self.bias
        z[256:] = -30.0  # far below anything: never in the top-K for a small K
        if self.drift and self.calls % 2 == 0:  # a model that computes other probabilities every other run
            z[:256] = np.roll(z[:256], 1)
        return z


@pytest.mark.parametrize("text", AWKWARD + [""])
def test_coder_round_trips_awkward_text_exactly(text, monkeypatch):
    # most bytes go through the escape: both paths run (TOP_K is bound as frequency_table's default, so
    # patching the constant would change nothing)
    escaped = []

    def counting(logits, **kw):
        top, cum = arith.frequency_table(logits, top_k=8, **kw)
        escaped.append(len(top))
        return top, cum

    monkeypatch.setattr(llmcode, "frequency_table", counting)  # the coder of one passage
    model = ByteModel()
    body = llmtier.encode_one(model, text, ["some", "hints"])
    assert body[0] == llmtier.LLM_TAG
    assert llmtier.decode_one(model, body, ["some", "hints"]) == text
    assert not text or (escaped and max(escaped) == 8)  # 8 tokens of their own, the rest escaped


def test_the_code_is_within_a_few_bytes_of_the_ideal_code_length():
    model = ByteModel()
    text = bytes(range(97, 123)).decode() * 8  # what ByteModel predicts best
    body = llmtier.encode_one(model, text, [])
    bits = 0.0
    model.start(llmtier.prompt_for([]))
    for t in text.encode():
        top, cum = arith.frequency_table(model.logits())
        i = int(np.flatnonzero(top == t)[0])
        bits -= np.log2((cum[i + 1] - cum[i]) / cum[-1])
        model.feed(t)
    header = 1 + 2 + 2  # tag, token count, check
    assert len(body) - header <= bits / 8 + 2
    assert len(body) < len(text) / 4


def test_decoding_under_other_hints_fails_its_check_instead_of_returning_garbage():
    model = ByteModel()
    text = "The Treaty of Westphalia was signed in 1648."
    body = llmtier.encode_one(model, text, ["Treaty", "1648"])
    with pytest.raises(ValueError, match="check|UTF-8"):
        llmtier.decode_one(model, body, ["Treaty", "1648", "War"])  # another prompt, other probabilities


def _store(tmp_path, model, name="llm.db"):
    return Memory(tmp_path / name, fidelity="llm", token_model=model)


def test_llm_store_round_trips_and_records_the_model(tmp_path):
    with _store(tmp_path, ByteModel()) as mem:
        ids = mem.add(AWKWARD)
        stats = mem._llm().last_stats
        meta = json.loads(mem.storage.get_meta(llmtier.META_KEY))
    assert meta["model_sha256"] == "a" * 64 and meta["params"] == llmtier.PARAMS
    assert stats.coded + sum(stats.fallback.values()) == len(AWKWARD)
    with Memory(tmp_path / "llm.db", token_model=ByteModel()) as mem:
        assert [mem.get(i).text for i in ids] == AWKWARD
        tags = {i: b[0] for i, b in mem.storage.fetch_texts(ids).items()}
    assert tags[ids[2]] == llmtier.LLM_TAG  # the long line, which ByteModel predicts, pays
    assert tags[ids[5]] != llmtier.LLM_TAG  # "a": an LLM body does not pay, the text body stays


def test_a_decode_mismatch_at_write_keeps_the_text_body(tmp_path):
    with _store(tmp_path, ByteModel(drift=True)) as mem:
        ids = []
        for text in (LONG_LINE, LONG_LINE[:2000]):  # one per add: each coded on an even run, checked on an odd
            ids += mem.add([text])
            stats = mem._llm().last_stats
            assert stats.fallback == {"mismatch": 1} and stats.coded == 0
        bodies = mem.storage.fetch_texts(ids)
        assert all(b[0] != llmtier.LLM_TAG for b in bodies.values())
        assert mem.get(ids[1]).text == LONG_LINE[:2000]


def test_a_tokenizer_that_does_not_give_the_bytes_back_keeps_the_text_body(tmp_path):
    class Lossy(ByteModel):
        def detokenize(self, tokens) -> bytes:
            return bytes(tokens).replace(b"  ", b" ")

    with _store(tmp_path, Lossy()) as mem:
        ids = mem.add(["two  spaces " * 20, "one space " * 20])
        assert mem._llm().last_stats.fallback.get("tokenizer") == 1
        assert mem.get(ids[0]).text == "two  spaces " * 20


def test_opening_with_another_model_is_a_clear_error_and_changes_nothing(tmp_path):
    with _store(tmp_path, ByteModel()) as mem:
        ids = mem.add([LONG_LINE])
    before = (tmp_path / "llm.db").read_bytes()
    with Memory(tmp_path / "llm.db", token_model=ByteModel(sha="b" * 64)) as mem:
        assert mem.search("x", 1)  # searching needs no model
        with pytest.raises(ModelMismatchError, match="sha256 aaaaaaaaaaaa.*bytes.gguf"):
            mem.get(ids[0])
        with pytest.raises(ModelMismatchError):
            mem.add(["more text " * 30])
    assert (tmp_path / "llm.db").read_bytes() == before


def test_a_damaged_llm_body_is_a_store_corrupt_error(tmp_path):
    with _store(tmp_path, ByteModel()) as mem:
        (i,) = mem.add([LONG_LINE])
        body = bytearray(mem.storage.fetch_texts([i])[i])
        body[-1] ^= 0x55
        with mem.storage.transaction() as c:
            mem.storage.update_texts(c, [i], [bytes(body)])
        with pytest.raises(StoreCorruptError, match="cannot be decoded here"):
            mem.get(i)


def test_without_a_model_an_llm_store_says_how_to_get_one(tmp_path, monkeypatch):
    with _store(tmp_path, ByteModel()) as mem:
        (i,) = mem.add([LONG_LINE])
    monkeypatch.setattr(llmtier, "_default_factory", None)
    from hashmem.memory import ModelLoadError

    with Memory(tmp_path / "llm.db") as mem, pytest.raises(ModelLoadError, match="token_model"):
        mem.get(i)


def test_text_dictionary_retraining_leaves_llm_bodies_alone(tmp_path):
    with _store(tmp_path, ByteModel()) as mem:
        texts = [f"passage {i} about the weather in town number {i * 7}, cloudy and mild." for i in range(70)]
        ids = mem.add(texts + [LONG_LINE])
        tier = texttier.for_storage(mem.storage)
        tier.maybe_retrain(force=True)
        assert [mem.get(i).text for i in ids] == texts + [LONG_LINE]
        assert mem.storage.fetch_texts([ids[-1]])[ids[-1]][0] == llmtier.LLM_TAG


def test_hints_changed_by_another_writer_before_commit_keep_the_text_body(tmp_path, monkeypatch):
    with _store(tmp_path, ByteModel()) as mem:
        monkeypatch.setattr(ingest, "hint_preview", lambda mem, toks, sets: [["stale", "hints"] for _ in toks])
        (i,) = mem.add([LONG_LINE])  # coded against hints that are not the ones stored
        assert mem.storage.fetch_texts([i])[i][0] != llmtier.LLM_TAG
        assert mem.get(i).text == LONG_LINE

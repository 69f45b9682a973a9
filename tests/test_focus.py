"""ask bounded by design (decoders/focus.py): the pieces of each memory nearest the question, under a token cap."""

from __future__ import annotations

import re

import pytest

from hashmem.decoders import focus, spans
from hashmem.memory import Memory

PLAY = (
    "SCENE II\tLawn before the Duke's palace.\n\n"
    "ORLANDO\tAn you mean to mock me after, you should not have\n\tmocked me before: but come your ways.\n\n"
    "ROSALIND\tNow Hercules be thy speed, young man!\n\n"
    "\t[They wrestle]\n\n"
    "DUKE FREDERICK\tHow dost thou, Charles?\n\n"
    "LE BEAU\tHe cannot speak, my lord."
)
CHAT = "(8 May, 2023) Caroline: I went to the support group yesterday. It was so powerful!"


def words(text: str) -> int:
    return len(text.split())


def test_units_keep_speakers_title_cased_and_the_date_as_head():
    head, pieces = focus.units(PLAY)
    assert head == ""
    said = [(u.speaker, u.text) for u in pieces]
    assert ("Orlando", "An you mean to mock me after, you should not have mocked me before:") in said
    assert ("Duke Frederick", "How dost thou, Charles?") in said
    assert ("Le Beau", "He cannot speak, my lord.") in said
    assert said[0][0] is None  # "SCENE II<tab>…" is a heading, not a speaker
    head, pieces = focus.units(CHAT)
    assert head == "(8 May, 2023)"
    assert [(u.speaker, u.text) for u in pieces] == [("Caroline", "I went to the support group yesterday."),
                                                     ("Caroline", "It was so powerful!")]


def test_a_long_sentence_is_cut_into_pieces_of_bounded_length():
    sentence = ", ".join(f"and the {i}th clause of a sentence that goes on" for i in range(30)) + "."
    _, pieces = focus.units(sentence)
    assert len(pieces) > 1 and all(len(u.text) <= focus.MAX_UNIT_CHARS for u in pieces)
    assert " ".join(u.text for u in pieces) == sentence
    _, pieces = focus.units("word " * 200)  # no comma at all: cut at spaces
    assert all(len(u.text) <= focus.MAX_UNIT_CHARS for u in pieces) and sum(words(u.text) for u in pieces) == 200


def test_render_names_speakers_and_marks_gaps():
    head, pieces = focus.units(PLAY)
    shown = focus.render(head, pieces, [5, 1, 0])
    assert shown == ("SCENE II Lawn before the Duke's palace.\nOrlando: An you mean to mock me after, you should not have mocked me before:\n"
                     "Duke Frederick: How dost thou, Charles?")
    head, pieces = focus.units(CHAT)
    assert focus.render(head, pieces, [1]) == "(8 May, 2023) Caroline: It was so powerful!"
    _, pieces = focus.units("One. Two. Three.")
    assert focus.render("", pieces, [0, 2]) == "One. … Three."


def test_select_keeps_memories_whole_when_they_fit_and_else_the_nearest_pieces_within_the_budget():
    contents = {1: "The weather was grey. The treaty was signed in 1648 at Munster. Bread was cheap.",
                2: "Cows graze on the hill. Nobody signed anything there. Rain fell all week long."}
    assert focus.select("When was the treaty signed?", contents, [1, 2], budget=100, count=words,
                        embed=None) == contents
    shown = focus.select("When was the treaty signed?", contents, [1, 2], budget=12, count=words, embed=None)
    assert shown[1] == "The treaty was signed in 1648 at Munster."
    assert sum(words(t) for t in shown.values()) <= 12
    for budget in range(0, 30):
        shown = focus.select("When was the treaty signed?", contents, [1, 2], budget=budget, count=words,
                             embed=None)
        assert sum(words(t) for t in shown.values()) <= budget
        assert all(w in contents[i].split() for i, t in shown.items() for w in t.replace("…", "").split())


def test_who_candidates_include_the_speakers_but_not_the_asked_name():
    asked = spans.question_terms("Who asks how Charles is?")
    got = [s.text for s in spans.memory_spans("who", asked, PLAY, 1, 0)]
    assert {"Orlando", "Rosalind", "Duke Frederick", "Le Beau"} <= set(got)
    assert "Charles" not in got and "SCENE" not in " ".join(got)
    got = [s.text for s in spans.memory_spans("who", spans.question_terms("Who went to a group?"), CHAT, 1, 0)]
    assert "Caroline" in got
    what = [s.text for s in spans.memory_spans("what", spans.question_terms("What did he ask?"), PLAY, 1, 0)]
    assert not any(re.search(r"\bORLANDO\b|\bROSALIND\b", t) for t in what)  # labels are not what was said


@pytest.fixture(scope="module")
def book_mem(tmp_path_factory):
    sentences = [f"The {c} garden had {n} old trees and a wall of grey stone, and the path ran past it to the river."
                 for c, n in (("north", "seven"), ("south", "three"), ("east", "nine"), ("west", "twelve"))]
    passages = [" ".join(sentences[i:] + sentences[:i]) + f" Macbeth killed Duncan in the castle at night {i}."
                if i == 2 else " ".join(sentences[i:] + sentences[:i]) * 2 for i in range(4)]
    with Memory(tmp_path_factory.mktemp("focus") / "book.db", fidelity="text") as mem:
        mem.add(passages)
        yield mem


def test_the_prompt_stays_under_the_cap_counted_by_the_models_tokenizer(book_mem):
    from hashmem.decoders.llamacpp import load_model, resolve_model

    llm = load_model(resolve_model(None), threads=1)
    question = "Who killed Duncan?"
    hits = book_mem.search(question, 4)
    contents = {h.id: book_mem.get(h.id).text for h in hits}
    whole, _ = focus.question_prompt(llm, book_mem, question, hits, contents, cap=None)
    for cap in (120, 200, 300):
        prompt, shown = focus.question_prompt(llm, book_mem, question, hits, contents, cap=cap)
        assert len(prompt) <= cap < len(whole)
        assert any("Macbeth killed Duncan" in t for t in shown.values())  # the piece nearest the question


def test_ask_on_a_book_answers_a_who_question_from_a_prompt_within_the_cap(tmp_path):
    from pathlib import Path

    from hashmem.decoders import llama as dllama
    from hashmem.memory.chunk import chunk_text

    play = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "canterbury" / "asyoulik.txt"
    if not play.is_file():
        pytest.skip("the shared Canterbury texts (../shared/data/canterbury) are absent")
    passages = [p.text for p in chunk_text(play.read_text(encoding="utf-8"))]
    at = next(i for i, p in enumerate(passages) if "All the world's a stage" in p)
    with Memory(tmp_path / "play.db", fidelity="text") as mem:
        mem.add(passages[at - 12 : at + 12])
        dec = dllama.LlamaDecoder(mem, threads=1)
        question = "Who says that all the world's a stage?"
        answer = dec.ask(question, mem.search(question, 5))
        assert 0 < dec.last_prompt_tokens <= focus.PROMPT_TOKENS
        assert answer.found and answer.text.startswith("Jaques ["), answer.text

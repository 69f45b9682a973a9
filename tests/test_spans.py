"""Candidate answers: question kinds, dates anchored on a memory's own date, spans by kind, hints."""

from __future__ import annotations

import pytest

from hashmem.decoders import spans
from hashmem.decoders.base import invented_terms


@pytest.mark.parametrize(("question", "kind"), [
    ("When did Caroline go to the LGBTQ support group?", "when"),
    ("In which year was the treaty signed?", "when"),
    ("How many children does Melanie have?", "count"),
    ("How long has John been surfing?", "count"),
    ("How tall is the Eiffel Tower?", "measure"),
    ("Who did Maria have dinner with on May 3, 2023?", "who"),
    ("Where did Joanna travel to in July 2022?", "where"),
    ("Which city was John in before traveling to Chicago?", "where"),
    ("What did Caroline research?", "what"),
    ("Why did Jon decide to start his dance studio?", "what"),
])
def test_question_kind(question, kind):
    assert spans.question_kind(question) == kind


def test_anchor_date_reads_a_memorys_own_date():
    assert spans.anchor_date("(8 May, 2023) Caroline: hi") == "8 May 2023"
    assert spans.anchor_date("(May 8, 2023) Caroline: hi") == "8 May 2023"
    assert spans.anchor_date("Caroline: hi, no date here") is None


@pytest.mark.parametrize(("text", "expected"), [
    ("(8 May, 2023) Caroline: I went to a LGBTQ support group yesterday.", "the day before 8 May 2023"),
    ("(9 June, 2023) Caroline: We met up last week, it was lovely.", "the week before 9 June 2023"),
    ("(25 May, 2023) Melanie: I ran a charity race last Sunday.", "the sunday before 25 May 2023"),
    ("(20 October, 2023) Melanie: Our road trip last weekend was fun.", "the weekend before 20 October 2023"),
    ("(1 May, 2022) Joanna: I started the book in March 2021.", "March 2021"),
    ("The Treaty of Westphalia was signed in 1648, ending the Thirty Years' War.", "1648"),
])
def test_dates_are_anchored_on_the_memorys_own_date(text, expected):
    found = [d for d, _ in spans.date_spans(text)]
    assert expected in found, found


def test_a_memorys_own_date_is_a_candidate_when_nothing_closer_says_otherwise():
    found = [d for d, _ in spans.date_spans("(8 May, 2023) Caroline: I painted a lake.")]
    assert found == ["8 May 2023"]


def test_date_candidates_keep_the_memorys_numbers():
    text = "(8 May, 2023) Caroline: I went to a LGBTQ support group yesterday."
    for c in spans.candidates("When did Caroline go to the LGBTQ support group?", {4: text}):
        assert not invented_terms(c.text, text), c.text
        assert c.source == 4 and c.kind == "when"


def test_candidates_are_the_memorys_words_and_not_the_questions():
    text = "(8 May, 2023) Caroline: Researching adoption agencies has been my dream for years."
    cands = spans.candidates("What did Caroline research?", {7: text})
    texts = {c.text for c in cands}
    assert "adoption agencies" in texts
    assert "Caroline" not in texts and not any(t.lower().startswith("research") for t in texts)
    words = set(spans.answer_words(text))
    for t in texts:
        assert set(t.split()) <= words, t  # every word is the memory's own


def test_kinds_filter_the_candidates():
    text = "The Eiffel Tower in Paris is 330 metres tall and was completed in 1889 for the World's Fair."
    assert [c.text for c in spans.candidates("How tall is the Eiffel Tower?", {1: text})] == ["330 metres"]
    who = {c.text for c in spans.candidates("Who did Ana have dinner with?",
                                            {1: "Ana: I had dinner with my mother and Tom on Friday."})}
    assert {"my mother", "Tom"} <= who and "dinner" not in who and "Friday" not in who
    where = {c.text for c in spans.candidates("Where did Joanna travel?", {1: "Joanna: The trip to Woodhaven was great."})}
    assert "Woodhaven" in where and "Joanna" not in where and "trip" not in where
    count = {c.text for c in spans.candidates("How many turtles does Nate have?",
                                              {1: "Nate: I have three turtles and 2 dogs."})}
    assert count == {"three", "2", "2 dogs"}


def test_hints_are_read_as_one_run_of_words_with_capitalized_names():
    hints = "keywords: Eiffel, Tower, Paris, 330, metres, tall, completed, 1889"
    assert [c.text for c in spans.candidates("How tall is the Eiffel Tower?", {1: hints})] == ["330 metres"]
    where = {c.text for c in spans.candidates("Where is the Eiffel Tower?", {1: hints})}
    assert "Paris" in where and "keywords" not in {w.lower() for t in where for w in t.split()}


def test_the_best_ranked_memory_holding_a_span_is_its_source_and_nearness_counts():
    a = "(1 May, 2022) Ana: The weather was nice."
    b = "(2 May, 2022) Ana: I adopted a puppy named Coco from the shelter."
    cands = spans.candidates("What is the name of Ana's puppy?", {1: a, 2: b}, order=[2, 1])
    coco = next(c for c in cands if c.text == "Coco")
    assert coco.source == 2 and coco.rank == 0 and coco.overlap > 0 and coco.near > 0
    far = next(c for c in cands if c.text == "weather")
    assert far.rank == 1 and far.near == 0.0


def test_talk_and_times_are_not_answers_to_what():
    text = "(2 May, 2022) Joanna: Thanks Nate! I'm so glad. Last week I submitted it to a film festival."
    texts = {c.text.lower() for c in spans.candidates("Where did Joanna submit her work?", {1: text})
             } | {c.text.lower() for c in spans.candidates("What did Joanna send?", {1: text})}
    assert "film festival" in texts
    assert not {t for t in texts if t.startswith(("thanks", "i'm")) or "week" in t}, texts
    assert "joanna" not in texts  # the speaker's label is not what was said
    count = {c.text for c in spans.candidates("How long has John been surfing?",
                                              {1: "(2 May, 2022) John: I've been surfing for five years now."})}
    assert "five years" in count


def test_a_bare_number_is_no_answer_to_what():
    hints = "keywords: 8, 2023, Caroline, painted, lake, sunrise"
    texts = {c.text for c in spans.candidates("What did Caroline paint?", {1: hints})}
    assert "lake sunrise" in texts and not {t for t in texts if t[0].isdigit()}, texts

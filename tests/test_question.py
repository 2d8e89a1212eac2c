"""Question analysis and asked-for phrases: pure logic, no model."""

from __future__ import annotations

import pytest

from bot.answer_phrases import asked_for
from bot.language import language_of
from bot.question import analyse, small_talk


@pytest.mark.parametrize(("question", "kind", "target"), [
    ("Which diet was named the best diet for 2022?", "named", "diet"),
    ("Which meal kit service received hundreds of reports of illness?", "named", "service"),
    ("Police arrested 31 men this week near a Pride event. Where was the event?", "place", None),
    ("How many months was her detention extended?", "quantity", "months"),
    ("What was the magnitude of the quake?", "quantity", None),
    ("When will the new vaccine be available?", "time", None),
    ("Who defeated Liz Cheney in the primary?", "person", None),
    ("Why did cities cancel their fireworks?", "reason", None),
    ("what are the obstacles?", "thing", None),
    ("The IRS announced it will do what this week?", "thing", None),
])
def test_the_kind_of_answer_asked_for(question: str, kind: str, target: str | None) -> None:
    asked = analyse(question)
    assert (asked.kind, asked.target) == (kind, target)


def test_a_new_study_is_news_of_the_last_weeks() -> None:
    assert analyse("Which chain is slowest, according to a new study?").window_days == 45
    assert analyse("New research suggests that megalodons were what?").window_days == 45
    assert analyse("Which chain is slowest?").window_days is None


def test_terms_leave_out_question_and_time_words() -> None:
    asked = analyse("Which country won Eurovision this week?")
    assert asked.terms == ("countri", "won", "eurovis")
    assert asked.window_days == 8
    assert asked.names == ("Eurovision",)


@pytest.mark.parametrize(("question", "points_back"), [
    ("which of them worries investors?", True),
    ("and where did he die?", True),
    ("what about Canada?", True),
    ("hey which of them worries investors?", True),
    ("Which country won Eurovision this year?", False),
    ("What is the price of lithium per tonne in Canada today?", False),
    ("who signed the law?", True),
])
def test_what_points_back_at_the_conversation(question: str, points_back: bool) -> None:
    assert analyse(question).points_back is points_back


@pytest.mark.parametrize(("message", "kind"), [
    ("hi", "greeting"), ("Hello!", "greeting"), ("good morning", "greeting"),
    ("thanks", "thanks"), ("Thank you!", "thanks"), ("thanks a lot", "thanks"),
    ("who are you?", "identity"), ("help", "help"), ("What can you do?", "help"),
    ("bye", "goodbye"), ("ok", "acknowledgement"),
    ("what are the obstacles?", None), ("hi, what are the obstacles?", None),
    ("thanks, and which of them worries investors?", None),
])
def test_small_talk_is_only_small_talk(message: str, kind: str | None) -> None:
    assert small_talk(message) == kind


@pytest.mark.parametrize(("question", "sentence", "phrase"), [
    ("Which diet was named the best diet for 2022?",
     "The Mediterranean diet was named the best overall diet for the fifth year in a row.",
     "Mediterranean diet"),
    ("Which meal kit service received reports of illness?",
     "Instagram-friendly meal kit service Daily Harvest is facing a firestorm of backlash.",
     "Daily Harvest"),
    ("Who defeated Liz Cheney?",
     "Everything since that day only served Harriet Hageman's victory in Wyoming's primary.",
     "Harriet Hageman"),
    ("When will it be available?",
     "The updated boosters could be available by Friday, according to manufacturers.",
     "Friday"),
    ("Which minerals are the countries cooperating on?",
     "Mexico and Canada are preparing to deepen cooperation on critical minerals.", None),
    ("How many people died?", "Nobody has said anything yet.", None),
    ("How much will Twitter charge?", "Musk first planned to charge $4.99 a month.", "$4.99"),
    ("How many moons does Neptune have?",
     "During its journey, Voyager 2 found five moons and four rings around Neptune.",
     "five moons"),
    ("How many rings does it have?", "In 1989 Voyager 2 found four rings.", "four rings"),
    ("When did the wheat harvest begin?", "Farmers began the wheat harvest early.", "early"),
    ("When did it open?", "The museum opened two years ago, officials said.", "two years ago"),
    ("How many live there?", "The city of 150,000 Jackson residents is dry.", "150,000"),
    ("How much storage?", "It comes with 20 GB of storage.", "20 GB"),
    ("How many residents live there?", "The city of 150,000 residents has no water.",
     "150,000 residents"),
])
def test_the_asked_for_phrase(question: str, sentence: str, phrase: str | None) -> None:
    span = asked_for(analyse(question), sentence)
    assert (sentence[span[0] : span[1]] if span else None) == phrase


def test_languages_other_than_english_are_told_apart() -> None:
    assert language_of("¿cuáles son los obstáculos a la cooperación entre México y Canadá?") == "es"
    assert language_of("quels sont les obstacles à la coopération avec le Canada ?") == "fr"
    assert language_of("what are the obstacles to the cooperation?") == "en"
    assert language_of("Who is Bob Saget?") == "en"  # short and unsure: taken for English

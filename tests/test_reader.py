"""The reader's verdict: what makes a sentence an answer and not only on the topic. Pure
logic: similarities are given, rarity is flat."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from bot.question import analyse
from bot.reader import Reader, Sentence
from bot.settings import ReaderSettings
from index.models import Article

QUESTION = analyse("How many tonnes of lithium will Mexico export to Canada?")
ON_TOPIC = "Mexico will export lithium to Canada under the new plan, officials said."
ANSWER = "Mexico will export 5,000 tonnes of lithium to Canada under the new plan."


def _flat(terms: Sequence[str]) -> dict[str, float]:
    return dict.fromkeys(terms, 1.0)


def _judge(text: str, settings: ReaderSettings) -> bool:
    article = Article(id="a", title="Minerals", text=text)
    reader = Reader(settings, _flat)
    readings = reader.read(QUESTION, [Sentence("a", 0, len(text), 0.6)], {"a": article})
    return reader.judge(QUESTION, readings, {"a": article}, date(2026, 11, 30)).answers


def test_how_many_is_answered_only_by_a_sentence_with_a_number() -> None:
    settings = ReaderSettings()
    assert _judge(ANSWER, settings)
    assert not _judge(ON_TOPIC, settings)


def test_the_kinds_that_need_a_phrase_are_a_setting() -> None:
    assert _judge(ON_TOPIC, ReaderSettings(phrase_required_for=[]))

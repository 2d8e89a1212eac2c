"""The reader's verdict: what makes a sentence an answer and not only on the topic. Pure
logic: similarities are given, rarity is flat."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pytest

from bot.question import analyse
from bot.reader import Reader, Sentence
from bot.settings import ReaderSettings, SentenceSource
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


# Two of the question's five rare terms, and the number asked for.
PARTIAL = "Exports will reach 5,000 tonnes."


def _best_score(settings: ReaderSettings, source: SentenceSource, dense: float) -> tuple[
        float, bool]:
    article = Article(id="a", title="Minerals", text=PARTIAL)
    reader = Reader(settings, _flat, source)
    readings = reader.read(QUESTION, [Sentence("a", 0, len(PARTIAL), dense)], {"a": article})
    judged = reader.judge(QUESTION, readings, {"a": article}, date(2026, 11, 30))
    return judged.best_score, judged.answers


def test_the_bars_and_the_phrase_bonus_follow_the_source_of_sentence_vectors() -> None:
    # Late-chunked similarities run lower: at this one the late bars let the sentence
    # answer, the separate ones would not.
    settings = ReaderSettings()
    late, late_answers = _best_score(settings, "late", 0.2)
    separate, separate_answers = _best_score(settings, "separate", 0.2)
    assert late - separate == pytest.approx(0.25 - 0.15)  # the phrase asked for weighs more
    assert late_answers and not separate_answers


def test_one_number_sets_a_bar_for_both_sources() -> None:
    sources: tuple[SentenceSource, ...] = ("late", "separate")
    for bar, answers in ((0.8, False), (0.6, True)):
        settings = ReaderSettings(min_score=bar, kind_weight=0.15)
        assert [_best_score(settings, source, 0.3)[1] for source in sources] == [answers] * 2

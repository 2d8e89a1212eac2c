"""Date weights: recency halves with age, time phrases favour their window, no date = 1."""

from __future__ import annotations

from datetime import date

import pytest

from bot.timeliness import Timeliness, parse_day, phrase_window

ASKED = date(2022, 6, 16)


@pytest.mark.parametrize(
    ("question", "days"),
    [
        ("Where was the event police stopped this week?", 8),
        ("What did the IRS announce yesterday?", 2),
        ("Which governor recently commuted 17 sentences?", 15),
        ("What happened last month in Kansas?", 62),
        ("Who won this week, and what happened this year?", 8),  # the narrowest wins
        ("Who is Liz Truss?", None),
        ("Which weekly magazine named its person of the year?", None),  # "weekly" is no phrase
    ],
)
def test_phrase_window(question: str, days: int | None) -> None:
    assert phrase_window(question) == days


@pytest.mark.parametrize(
    ("value", "day"),
    [
        ("2022-06-16", ASKED),
        ("2022/06/16", ASKED),
        ("2022-06-16T23:10:00+00:00", ASKED),
        ("June 16", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_day(value: str | None, day: date | None) -> None:
    assert parse_day(value) == day


def test_recency_bonus_halves_every_half_life() -> None:
    weights = Timeliness(recency_weight=0.5, half_life_days=30, phrase_boost=0).weights(
        "Who won?",
        {"today": "2022-06-16", "month": "2022-05-17", "two-months": "2022-04-17",
         "later": "2022-07-16", "undated": None, "bad": "soon"},
        ASKED,
    )
    assert weights["today"] == pytest.approx(1.5)
    assert weights["month"] == pytest.approx(1.25)
    assert weights["two-months"] == pytest.approx(1.125)
    # An article dated after the asking day gains nothing from being "newer".
    assert weights["later"] == pytest.approx(weights["month"])
    assert weights["undated"] == weights["bad"] == 1.0


def test_time_phrase_boosts_only_its_window() -> None:
    timeliness = Timeliness(recency_weight=0, half_life_days=30, phrase_boost=1.0)
    published = {"in-week": "2022-06-10", "before": "2022-06-01", "next-day": "2022-06-17",
                 "after": "2022-06-20"}
    weights = timeliness.weights("What was announced this week?", published, ASKED)
    assert weights == {"in-week": 2.0, "before": 1.0, "next-day": 2.0, "after": 1.0}
    # The same articles, no phrase in the question: no boost anywhere.
    assert set(timeliness.weights("What was announced?", published, ASKED).values()) == {1.0}


def test_turned_off_changes_nothing() -> None:
    off = Timeliness(recency_weight=0, half_life_days=30, phrase_boost=0)
    assert not off.active
    assert off.weights("this week?", {"a": "2022-06-16"}, ASKED) == {"a": 1.0}

"""When an article appeared, weighed against when the question is asked: news ages."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

# Relative time phrases and the rolling window (days before the asking date) each names.
# Rolling rather than calendar windows: "this week" asked on a Monday still means the
# news of the last few days. The narrowest phrase in a question wins.
_PHRASE_WINDOWS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"\b(?:today|tonight|yesterday|this morning)\b", re.IGNORECASE), 2),
    (re.compile(r"\b(?:this|past) (?:week|weekend)\b", re.IGNORECASE), 8),
    (re.compile(r"\b(?:last (?:week|weekend)|recently|latest)\b", re.IGNORECASE), 15),
    (re.compile(r"\b(?:this|past) month\b", re.IGNORECASE), 32),
    (re.compile(r"\blast month\b", re.IGNORECASE), 62),
    (re.compile(r"\b(?:this|past) year\b", re.IGNORECASE), 366),
)


def today() -> date:
    return datetime.now(UTC).date()


def parse_day(value: str | date | None) -> date | None:
    """The calendar day of an ISO date or timestamp ("2022-06-16", "2022/06/16T…")."""
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip()[:10].replace("/", "-"))
    except ValueError:
        return None


def phrase_window(question: str) -> int | None:
    """Days back that the question's relative time phrase covers, if it has one."""
    windows = [days for pattern, days in _PHRASE_WINDOWS if pattern.search(question)]
    return min(windows) if windows else None


@dataclass(frozen=True)
class Timeliness:
    """Multipliers for article scores from their publication dates.

    Two effects, both relative to the day the question is asked:
    - recency: an article published that day scores (1 + recency_weight) times more,
      the bonus halving every `half_life_days` (news questions are mostly about recent
      news; with an archive-only corpus every bonus is near zero and order is unchanged);
    - time phrases: "this week", "yesterday", "recently" multiply the score of articles
      published inside that window by (1 + phrase_boost).
    Articles without a date are left as they are.
    """

    recency_weight: float = 0.5
    half_life_days: float = 30.0
    phrase_boost: float = 1.0

    @property
    def active(self) -> bool:
        return self.recency_weight > 0 or self.phrase_boost > 0

    def weights(
        self, question: str, published: Mapping[str, str | None], as_of: date
    ) -> dict[str, float]:
        """Score multiplier for each article id in `published` (1.0 = unchanged)."""
        window = phrase_window(question) if self.phrase_boost > 0 else None
        weights: dict[str, float] = {}
        for article_id, value in published.items():
            day = parse_day(value)
            if day is None:
                weights[article_id] = 1.0
                continue
            # Recency counts distance either way: an article dated after the asking day
            # (an evaluation "as of" an earlier date, or a wrong date) is not fresher.
            days_before = (as_of - day).days
            weight = 1.0 + self.recency_weight * 0.5 ** (abs(days_before) / self.half_life_days)
            # A day of slack after the asking day: publication dates and the asker's
            # calendar may sit in different time zones.
            if window is not None and -1 <= days_before <= window:
                weight *= 1.0 + self.phrase_boost
            weights[article_id] = weight
        return weights

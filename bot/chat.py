"""One conversation per chat: bounded history, and follow-ups resolved against it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bot import llm
from bot.answer import Answerer, ProgressCallback
from bot.errors import LLMUnavailable
from bot.models import Answer, FollowUp
from bot.question import Question, analyse

_CONTEXT_QUOTES = 2

log = logging.getLogger(__name__)
# A follow-up looks first in the articles the previous answer quoted, then in those its
# retrieval found beside them (another report of the same story), this many in all.
_FOLLOW_UP_ARTICLES = 4


@dataclass
class Turn:
    """A question asked in the chat, the answer it got, and (for follow-ups) its quotes
    and the articles they came from."""

    question: str
    answer: str
    quotes: list[str] = field(default_factory=list)
    articles: list[str] = field(default_factory=list)  # quoted, then found beside them
    quoted: int = 0  # how many of `articles` the answer quoted


class Conversation:
    """History for one chat, shared by the terminal chat and Telegram.

    A follow-up ("which of them…", "and where did he…", "what about Canada?") stays with
    the articles of the previous answer unless it names a new subject: the previous
    question and quotes steer retrieval and those articles weigh more, while sentences are
    still scored against what was asked now. In LLM mode the model also condenses the
    history into a standalone question.
    """

    def __init__(self, answerer: Answerer, *, history_turns: int = 6,
                 turns: list[Turn] | None = None) -> None:
        self.answerer = answerer
        self.history_turns = history_turns
        self.turns: list[Turn] = list(turns or [])

    def is_follow_up(self, question: str | Question) -> bool:
        asked = question if isinstance(question, Question) else analyse(question)
        return bool(self.turns) and asked.points_back

    def follow_up(self, question: Question) -> FollowUp | None:
        """What `question` follows up, when it does."""
        if not self.is_follow_up(question):
            return None
        previous = self.turns[-1]
        return FollowUp(previous.question, tuple(previous.quotes[:_CONTEXT_QUOTES]),
                        tuple(previous.articles[: previous.quoted]),
                        tuple(previous.articles[previous.quoted :]))

    def ask(self, question: str, *, as_of: date | None = None,
            on_progress: ProgressCallback | None = None) -> Answer:
        """Answer `question` in this conversation (asked on `as_of`, default today);
        `on_progress` as in Answerer.ask."""
        asked = analyse(question)
        follow_up = self.follow_up(asked)
        standalone = self._condensed(asked.text) if follow_up is not None else None
        if standalone is not None:
            answer = self.answerer.ask(standalone, follow_up=follow_up, as_of=as_of,
                                       on_progress=on_progress)
            answer.question = asked.text
        else:
            answer = self.answerer.ask(asked, follow_up=follow_up, as_of=as_of,
                                       on_progress=on_progress)
        self._remember(asked.text, answer)
        return answer

    def _condensed(self, question: str) -> str | None:
        """The follow-up as a standalone question by the LLM; None without one, or when it
        fails (then the previous turn steers retrieval, as in extractive mode)."""
        model = self.answerer.chat_model
        if model is None:
            return None
        try:
            return llm.condense(model, [(t.question, t.answer) for t in self.turns], question)
        except LLMUnavailable as exc:
            log.warning("could not condense the follow-up (%s); the previous turn steers "
                        "retrieval instead", exc)
            return None

    def reset(self) -> None:
        self.turns.clear()

    def _remember(self, question: str, answer: Answer) -> None:
        if not answer.answered:
            return  # a miss, or small talk, is no context for "and what about them?"
        quoted = list(dict.fromkeys(c.article.id for c in answer.citations))
        related = [s.id for s in answer.sources if s.id not in quoted]
        articles = (quoted + related)[: max(_FOLLOW_UP_ARTICLES, len(quoted))]
        self.turns.append(Turn(question, answer.text, [c.quote for c in answer.citations],
                               articles, len(quoted)))
        if self.history_turns >= 0:
            del self.turns[: max(0, len(self.turns) - self.history_turns)]

    def to_state(self) -> list[dict[str, Any]]:
        """Plain data for persistence (Telegram keeps it across restarts)."""
        return [{"question": t.question, "answer": t.answer, "quotes": t.quotes,
                 "articles": t.articles, "quoted": t.quoted} for t in self.turns]

    @classmethod
    def from_state(cls, answerer: Answerer, state: list[dict[str, Any]] | None,
                   *, history_turns: int = 6) -> Conversation:
        turns = [Turn(str(t["question"]), str(t["answer"]), list(t.get("quotes", [])),
                      list(t.get("articles", [])), int(t.get("quoted", 0)))
                 for t in state or []]
        return cls(answerer, history_turns=history_turns, turns=turns)

"""One conversation per chat: bounded history, and follow-ups resolved against it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot import llm
from bot.answer import Answerer
from bot.models import Answer

# Words that point back at something said before ("which of them ...", "why did it ...").
_BACK_REFERENCE = re.compile(
    r"\b(it|its|they|them|their|theirs|this|that|these|those|he|she|him|her|his|"
    r"the same|such|which one|which ones|what else|more|also|another|other|others)\b",
    re.IGNORECASE,
)
_FOLLOW_UP_MAX_WORDS = 12
_CONTEXT_QUOTES = 2


@dataclass
class Turn:
    """A question asked in the chat and the answer it got (quotes kept for context)."""

    question: str
    answer: str
    quotes: list[str] = field(default_factory=list)


class Conversation:
    """History for one chat, shared by the terminal chat and Telegram.

    A follow-up is asked with context: in LLM mode the model condenses the history into a
    standalone question; in extractive mode the previous question and its quotes steer
    retrieval while the sentences are still scored against what was asked now.
    """

    def __init__(self, answerer: Answerer, *, history_turns: int = 6,
                 turns: list[Turn] | None = None) -> None:
        self.answerer = answerer
        self.history_turns = history_turns
        self.turns: list[Turn] = list(turns or [])

    def is_follow_up(self, question: str) -> bool:
        if not self.turns:
            return False
        return (
            bool(_BACK_REFERENCE.search(question))
            and len(question.split()) <= _FOLLOW_UP_MAX_WORDS
        )

    def ask(self, question: str) -> Answer:
        question = question.strip()
        previous = self.turns[-1] if self.turns else None
        if previous is not None and self.is_follow_up(question):
            model = self.answerer.chat_model
            if model is not None:
                history = [(t.question, t.answer) for t in self.turns]
                standalone = llm.condense(model, history, question)
                answer = self.answerer.ask(standalone)
                answer.question = question
            else:
                context = " ".join([previous.question, *previous.quotes[:_CONTEXT_QUOTES]])
                answer = self.answerer.ask(question, context=context)
        else:
            answer = self.answerer.ask(question)
        self._remember(question, answer)
        return answer

    def reset(self) -> None:
        self.turns.clear()

    def _remember(self, question: str, answer: Answer) -> None:
        if not answer.answered:
            return  # a miss is no context for "and what about them?"
        self.turns.append(Turn(question, answer.text, [c.quote for c in answer.citations]))
        if self.history_turns >= 0:
            del self.turns[: max(0, len(self.turns) - self.history_turns)]

    def to_state(self) -> list[dict[str, Any]]:
        """Plain data for persistence (Telegram keeps it across restarts)."""
        return [{"question": t.question, "answer": t.answer, "quotes": t.quotes}
                for t in self.turns]

    @classmethod
    def from_state(cls, answerer: Answerer, state: list[dict[str, Any]] | None,
                   *, history_turns: int = 6) -> Conversation:
        turns = [Turn(str(t["question"]), str(t["answer"]), list(t.get("quotes", [])))
                 for t in state or []]
        return cls(answerer, history_turns=history_turns, turns=turns)

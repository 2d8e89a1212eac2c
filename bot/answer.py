"""Answer a question from the articles: retrieve, then quote (extractive) or write (LLM)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import date

from langchain_core.language_models import BaseChatModel

from bot import extractive, llm
from bot.errors import LLMUnavailable
from bot.models import Answer, Mode
from bot.prompts import CANNOT_ANSWER, LLM_FALLBACK_NOTE, LLM_UNVERIFIED_NOTE
from bot.retrieval import HybridRetriever, Retrieved
from bot.settings import AnswerSettings
from index.embeddings import SentenceEmbeddings
from index.models import Article

log = logging.getLogger(__name__)


class Answerer:
    """Turns a question into an Answer whose every quote was checked against its article.

    Without a chat model the answer is extractive. With one, the model writes the prose;
    its quotes are verified and anything unsupported is dropped; when the model fails,
    times out or leaves no verified quote, the extractive answer comes back with a note.
    """

    def __init__(
        self,
        retriever: HybridRetriever,
        embedder: SentenceEmbeddings,
        settings: AnswerSettings,
        *,
        chat_model: BaseChatModel | None = None,
        llm_timeout_s: float = 30.0,
    ) -> None:
        self.retriever = retriever
        self.embedder = embedder
        self.settings = settings
        self.chat_model = chat_model
        self.llm_timeout_s = llm_timeout_s
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="llm")

    @property
    def mode(self) -> Mode:
        return "llm" if self.chat_model is not None else "extractive"

    def ask(self, question: str, *, context: str = "", as_of: date | None = None) -> Answer:
        """Answer `question` asked on `as_of` (default: today); `context` (a previous
        question and its quotes) steers a follow-up's retrieval without changing what is
        asked."""
        question = question.strip()
        query = f"{question}\n{context}" if context else question
        retrieved = self.retriever.retrieve(query, as_of=as_of)
        articles = self.retriever.store.get_articles([r.passage.article_id for r in retrieved])
        found = extractive.extract(
            question, retrieved, articles, self.embedder,
            max_quotes=self.settings.max_quotes, context=context,
        )
        covered = (
            bool(found.citations)
            and found.relevance >= self.settings.min_relevance
            and found.coverage >= self.settings.min_coverage
        )
        if not covered:
            return Answer(question, CANNOT_ANSWER, self.mode, False)
        quoted = Answer(
            question, extractive.compose(found.citations), "extractive", True, found.citations
        )
        if self.chat_model is None:
            return quoted
        return self._llm_answer(question, retrieved, articles, quoted)

    def _llm_answer(
        self,
        question: str,
        retrieved: list[Retrieved],
        articles: dict[str, Article],
        fallback: Answer,
    ) -> Answer:
        assert self.chat_model is not None
        messages = llm.build_messages(question, retrieved, articles)
        try:
            # The client has its own timeout; this one also bounds retries and slow reads.
            future = self._pool.submit(llm.call, self.chat_model, messages)
            reply = future.result(timeout=self.llm_timeout_s + 1)
        except FutureTimeout:
            return _with_note(fallback, LLM_FALLBACK_NOTE.format(reason="timed out"))
        except LLMUnavailable as exc:
            log.warning("LLM unavailable: %s", exc)
            return _with_note(fallback, LLM_FALLBACK_NOTE.format(reason=str(exc)))
        parsed = llm.parse_reply(reply)
        if parsed.cannot_answer:
            return Answer(question, CANNOT_ANSWER, "llm", False)
        text, citations = llm.verified_answer(parsed, retrieved, articles, question)
        if not citations or not text:
            return _with_note(fallback, LLM_UNVERIFIED_NOTE)
        return Answer(question, text, "llm", True, citations)


def _with_note(answer: Answer, note: str) -> Answer:
    answer.note = note
    return answer

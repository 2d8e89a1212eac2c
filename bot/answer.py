"""Answer a question from the articles: retrieve, then quote (extractive) or write (LLM)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING

from bot import extractive, prompts
from bot.errors import LLMUnavailable
from bot.language import is_english
from bot.models import Answer, ArticleRef, FollowUp, Mode
from bot.prompts import CANNOT_ANSWER, LLM_FALLBACK_NOTE, LLM_UNVERIFIED_NOTE
from bot.question import Question, SmallTalk, analyse
from bot.reader import Reader
from bot.retrieval import HybridRetriever, Retrieved, by_article_in_turn
from bot.sentence_vectors import SentenceVectors
from bot.settings import AnswerSettings, ReaderSettings
from index.embeddings import SentenceEmbeddings
from index.keyword import tokenize
from index.models import Article
from index.store import PassageStore

if TYPE_CHECKING:
    # The LLM path's modules load only with a chat model: an extractive answer (every
    # `dossier ask` by default) does not pay for their imports (about a second cold).
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.language_models import BaseChatModel

    from bot.llm import Output
    from bot.llm_chain import Progress

log = logging.getLogger(__name__)

# Told of each newly verified sentence: the answer so far (only verified sentences, with
# the quotes they cite), so a front end can show it while the model is still writing.
ProgressCallback = Callable[[Answer], None]


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
        reader_settings: ReaderSettings | None = None,
        chat_model: BaseChatModel | None = None,
        llm_timeout_s: float = 30.0,
        llm_output: Output = "text",
        sentence_vectors: SentenceVectors | None = None,
    ) -> None:
        self.retriever = retriever
        self.embedder = embedder
        self.sentence_vectors = sentence_vectors or SentenceVectors(
            retriever.store, embedder, settings.sentence_vectors
        )
        self.settings = settings
        self.reader_settings = reader_settings or ReaderSettings()
        self.chat_model = chat_model
        self.llm_timeout_s = llm_timeout_s
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="llm")
        self.chain = None
        if chat_model is not None:
            from bot.llm_chain import answer_chain

            self.chain = answer_chain(chat_model, llm_output)
        # LangChain callbacks for every LLM run (bench/ measures tokens with one).
        self.callbacks: list[BaseCallbackHandler] = []

    @property
    def mode(self) -> Mode:
        return "llm" if self.chat_model is not None else "extractive"

    @cached_property
    def reader(self) -> Reader:
        return Reader(self.reader_settings, self.store.term_rarity,
                      self.sentence_vectors.source)

    @property
    def store(self) -> PassageStore:
        return self.retriever.store

    def ask(self, question: str | Question, *, follow_up: FollowUp | None = None,
            as_of: date | None = None, on_progress: ProgressCallback | None = None) -> Answer:
        """Answer `question` asked on `as_of` (default: today). A `follow_up` (the previous
        question, its quotes and articles) steers retrieval to the previous answer's
        articles, unless the question names a new subject. With an LLM, `on_progress` sees
        the answer grow one verified sentence at a time; the Answer returned is final."""
        with self.store.reading():  # one generation of the store for the whole question
            return self._ask(question, follow_up, as_of, on_progress)

    def _ask(self, question: str | Question, follow_up: FollowUp | None,
             as_of: date | None, on_progress: ProgressCallback | None) -> Answer:
        asked = question if isinstance(question, Question) else analyse(question)
        if asked.small_talk is not None:
            return Answer(asked.text, self.small_talk_line(asked.small_talk), self.mode, False)
        answering = next((attempt for attempt in self.extracts(asked, follow_up=follow_up,
                                                                as_of=as_of)
                          if attempt[2].answers), None)
        if answering is None:
            return Answer(asked.text, self._not_covered(asked), self.mode, False)
        retrieved, articles, found, _ = answering
        sources = [ArticleRef.of(articles[article_id])
                   for article_id in dict.fromkeys(r.passage.article_id for r in retrieved)
                   if article_id in articles]
        text = extractive.compose(found.citations, found.asked_phrase, found.points)
        quoted = Answer(asked.text, text, "extractive", True, found.citations, sources=sources)
        if self.chat_model is None:
            return quoted
        return self._llm_answer(asked.text, retrieved, articles, quoted, on_progress)

    def extracts(self, question: Question, *, follow_up: FollowUp | None = None,
                 as_of: date | None = None,
                 ) -> Iterator[tuple[list[Retrieved], dict[str, Article], extractive.Extract,
                                     bool]]:
        """Each place the answer is looked for, in order (see `_attempts`), with its
        articles, the quotes read there and whether it is the previous answer's articles
        (judged by the follow-up bar): `ask` stops at the first that answers."""
        for retrieved, context, within_previous in self._attempts(question, follow_up, as_of):
            articles = self.store.get_articles([r.passage.article_id for r in retrieved])
            yield retrieved, articles, extractive.extract(
                question, retrieved, articles, self.sentence_vectors, self.reader,
                max_quotes=self.settings.max_quotes, context=context,
                follows=follow_up.question if context and follow_up else "", as_of=as_of,
                within_previous=within_previous,
            ), within_previous

    def retrieve(self, question: Question, *, follow_up: FollowUp | None = None,
                 as_of: date | None = None, k: int | None = None,
                 ) -> tuple[list[Retrieved], str]:
        """The passages answered from first, and the context text that steered them (a
        follow-up's previous question and quotes; "" for a question that stands alone)."""
        retrieved, context, _ = next(self._attempts(question, follow_up, as_of, k))
        return retrieved, context

    def _attempts(self, question: Question, follow_up: FollowUp | None,
                  as_of: date | None, k: int | None = None,
                  ) -> Iterator[tuple[list[Retrieved], str, bool]]:
        """Where to look for the answer, in order. A follow-up looks in the previous
        answer's articles (those it quoted, and those its retrieval found beside them),
        then everywhere with the previous question as context; a question that stands
        alone, or names a new subject, looks everywhere."""
        if follow_up is None or self._new_subject(question, follow_up):
            yield self.retriever.retrieve(question.text, k, as_of=as_of), "", False
            return
        context = follow_up.context
        previous = follow_up.articles + follow_up.related
        # Inside the previous articles the question and the one it follows are the query
        # (the previous quotes would only find the passages already quoted),
        # and any number of one article's passages may be read: every candidate is ranked,
        # then those of the previous articles kept.
        wanted = k or self.retriever.k
        inside = self.retriever.model_copy(update={"per_article": wanted})
        every = inside.dense_depth + inside.keyword_depth
        found = inside.retrieve(f"{question.text}\n{follow_up.question}", every,
                                as_of=as_of, prefer=previous)
        kept = by_article_in_turn(
            sorted((r for r in found if r.passage.article_id in previous),
                   key=lambda r: r.fused, reverse=True))[:wanted]
        if kept:
            ranked = [replace(r, rank=rank) for rank, r in enumerate(kept)]
            yield ranked, follow_up.question, True
        yield self.retriever.retrieve(f"{question.text}\n{context}", k, as_of=as_of), context, False

    def small_talk_line(self, kind: SmallTalk) -> str:
        count = len(self.store.records())
        return prompts.SMALL_TALK[kind].format(count=count, s="" if count == 1 else "s")

    def _new_subject(self, question: Question, follow_up: FollowUp) -> bool:
        """Whether a follow-up names what the previous answer's articles never mention:
        "what about Liz Cheney?" after an answer about Kansas starts afresh."""
        previous = self.store.get_articles(list(follow_up.articles + follow_up.related))
        texts = " ".join(f"{a.title}\n{a.text}" for a in previous.values()).casefold()
        if not texts:
            return True
        if question.names:
            return any(name.casefold() not in texts for name in question.names)
        words = set(tokenize([texts])[0])
        return bool(question.terms) and not any(t in words for t in question.terms)

    def _not_covered(self, question: Question) -> str:
        """"Not covered", or, for a question in another language, why that may be."""
        return prompts.CANNOT_ANSWER if is_english(question.text) else prompts.NOT_ENGLISH

    def _llm_answer(
        self,
        question: str,
        retrieved: list[Retrieved],
        articles: dict[str, Article],
        fallback: Answer,
        on_progress: ProgressCallback | None,
    ) -> Answer:
        from bot.llm_chain import LLMRequest

        assert self.chain is not None
        chain = self.chain
        request = LLMRequest(question, retrieved, articles)
        stop = threading.Event()
        shown: list[Answer] = []

        def answer_from(progress: Progress) -> Answer:
            """The answer made of the sentences verified so far and the quotes they cite."""
            verifier = progress.verifier
            return Answer(question, verifier.text, "llm", True, list(verifier.citations),
                          sources=fallback.sources)

        def run() -> Progress | None:
            """Stream the chain, telling `on_progress` of each newly verified sentence."""
            last: Progress | None = None
            for progress in chain.stream(request, config={"callbacks": self.callbacks}):
                if stop.is_set():
                    break  # timed out: nothing more reaches the user
                last = progress
                if progress.released and on_progress is not None:
                    shown.append(answer_from(progress))
                    on_progress(shown[-1])
            return last

        try:
            # The client has its own timeout; this one also bounds retries and slow reads.
            future = self._pool.submit(run)
            last = future.result(timeout=self.llm_timeout_s + 1)
        except FutureTimeout:
            stop.set()
            if shown:
                return shown[-1]  # what the user saw is verified: it stands as the answer
            return _with_note(fallback, LLM_FALLBACK_NOTE.format(reason="timed out"))
        except Exception as exc:  # every client error, timeout or refusal counts the same
            reason = _failure_reason(exc)
            log.warning("LLM unavailable: %s", reason)
            return _with_note(fallback, LLM_FALLBACK_NOTE.format(reason=reason))
        if last is not None and last.cannot_answer and not last.verifier.sentences:
            return Answer(question, CANNOT_ANSWER, "llm", False)
        if last is None or not last.verifier.sentences:
            return _with_note(fallback, LLM_UNVERIFIED_NOTE)
        return answer_from(last)


def _failure_reason(exc: BaseException) -> str:
    """A short reason for the note: "timed out", or the client's error type."""
    if isinstance(exc, LLMUnavailable):
        return str(exc)
    name = type(exc).__name__
    return "timed out" if "timeout" in name.lower() else name


def _with_note(answer: Answer, note: str) -> Answer:
    answer.note = note
    return answer

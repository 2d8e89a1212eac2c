"""The reader: which retrieved sentences *answer* the question, not only share its topic."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from bot.answer_phrases import asked_for, gives_reason
from bot.question import Question
from bot.settings import ReaderSettings, SentenceSource, per_source
from bot.timeliness import parse_day
from index.keyword import tokenize
from index.models import Article

# Days beyond a question's time window that an article may still answer it from.
WINDOW_SLACK_DAYS = 3

# How rare each question term is in the corpus (BM25's idf, from the keyword index).
Rarity = Callable[[Sequence[str]], dict[str, float]]


@dataclass(frozen=True)
class Sentence:
    """A candidate sentence: where it stands, and how close its meaning is to the question."""

    article_id: str
    start: int
    end: int
    dense: float


@dataclass(frozen=True)
class Reading:
    """How well one sentence answers the question.

    `support`: the share of the question's terms, weighted by rarity, that the sentence
    holds; `context`: the same over its paragraph (counting its heading and its article's
    title too lowered refusal on the negative split, 0.700 -> 0.667); `asked`: the span of
    the phrase of the kind asked for (a name, date, number, place) beyond the question's own words;
    `restates`: the sentence says nothing the question does not.
    """

    sentence: Sentence
    support: float
    context: float
    asked: tuple[int, int] | None
    restates: bool
    score: float


class WordsOf:
    """Each text's terms (index.keyword.tokenize), computed once per question: picking the
    candidates, scoring them and reading them look at the same sentences and paragraphs
    (three tokenizations of each before, a sixth of a first-time answer's own time)."""

    def __init__(self) -> None:
        self._seen: dict[str, frozenset[str]] = {}

    def __call__(self, text: str) -> frozenset[str]:
        words = self._seen.get(text)
        if words is None:
            words = self._seen[text] = frozenset(tokenize([text])[0])
        return words


@dataclass(frozen=True)
class TermWeights:
    """A question's terms and how rare each is (BM25's idf), with their sum."""

    weights: dict[str, float]
    total: float

    def share(self, words: set[str] | frozenset[str]) -> float:
        """The share of the weight that `words` hold."""
        if self.total <= 0:
            return 1.0  # a question of common words only: rarity cannot tell
        return sum(w for t, w in self.weights.items() if t in words) / self.total

    def share_of(self, text: str) -> float:
        return self.share(set(tokenize([text])[0]))


@dataclass(frozen=True)
class Judgement:
    """The reader's verdict on a question, with the two figures it was made from."""

    answers: bool
    best_score: float
    best_context: float


class Reader:
    """Scores candidate sentences as answers and says whether any of them answers."""

    def __init__(self, settings: ReaderSettings, rarity: Rarity,
                 source: SentenceSource = "late") -> None:
        self.settings = settings
        self.rarity = rarity
        self.source = source
        # The weights and bars for answers whose sentence vectors come from `source`.
        self.kind_weight = per_source(settings.kind_weight, source)
        self.min_score = per_source(settings.min_score, source)
        self.follow_up_min_score = per_source(settings.follow_up_min_score, source)

    def term_weights(self, question: Question) -> TermWeights:
        """The question's terms weighted by rarity: computed once per question, shared by
        the reader and whatever picks its candidates."""
        weights = {t: w for t, w in self.rarity(question.terms).items() if w > 0}
        return TermWeights(weights, sum(weights.values()))

    def read(self, question: Question, sentences: Sequence[Sentence],
             articles: dict[str, Article], weights: TermWeights | None = None,
             words_of: WordsOf | None = None) -> list[Reading]:
        """A Reading per sentence, in the order given."""
        weights = weights if weights is not None else self.term_weights(question)
        # Sentences of one paragraph share it: tokenized once each.
        words_of = words_of or WordsOf()
        readings = []
        for sentence in sentences:
            article = articles[sentence.article_id]
            text = article.text[sentence.start : sentence.end]
            words = words_of(text)
            around = words_of(_paragraph(article, sentence.start, sentence.end))
            support = weights.share(words)
            context = max(support, weights.share(around))
            asked = asked_for(question, text)
            kind_found = asked is not None or (
                question.kind == "reason" and gives_reason(text)
            )
            restates = words <= question.words
            score = 0.0 if restates else (
                sentence.dense
                + self.settings.support_weight * support
                + self.settings.context_weight * context
                + self.kind_weight * kind_found
            )
            readings.append(Reading(sentence, support, context, asked, restates, score))
        return readings

    def judge(self, question: Question, readings: Sequence[Reading],
              articles: dict[str, Article], as_of: date, *, follow_up: bool = False,
              ) -> Judgement:
        """Whether some sentence answers: one that has the question's rare terms near it
        (min_context: an on-topic passage without the answer lacks them), stands in an
        article from the time the question names ("this week": not a story from March),
        holds the phrase asked for when the question's kind needs one (a number for "how
        many"), and scores at least min_score (follow_up_min_score for a follow-up read in
        the previous answer's articles: already on its subject, its words are few)."""
        needs_phrase = question.kind in self.settings.phrase_required_for
        eligible = [
            r for r in readings
            if r.context >= self.settings.min_context
            and _in_window(question, articles[r.sentence.article_id], as_of)
            and (r.asked is not None or not needs_phrase)
        ]
        best = max((r.score for r in eligible), default=0.0)
        context = max((r.context for r in readings), default=0.0)
        bar = self.follow_up_min_score if follow_up else self.min_score
        return Judgement(best >= bar and bool(eligible), best, context)


def _in_window(question: Question, article: Article, as_of: date) -> bool:
    """Whether an article was published inside the window the question names (with a few
    days' slack for time zones and late reports); undated articles and questions that name
    no window always are."""
    if question.window_days is None:
        return True
    published = parse_day(article.published)
    if published is None:
        return True
    days_before = (as_of - published).days
    return -WINDOW_SLACK_DAYS <= days_before <= question.window_days + WINDOW_SLACK_DAYS


def _paragraph(article: Article, start: int, end: int) -> str:
    text = article.text
    first = text.rfind("\n", 0, start) + 1
    last = text.find("\n", end)
    return text[first : len(text) if last < 0 else last]

"""The offline answer: the retrieved sentences that best answer the question, quoted whole."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date

import numpy as np

from bot.models import Citation
from bot.prompts import CANNOT_ANSWER
from bot.question import Question
from bot.quotes import make_citation
from bot.reader import Judgement, Reader, Reading, Sentence, WordsOf
from bot.retrieval import Retrieved
from bot.safety import is_instruction_like
from bot.sentence_vectors import SentenceVectors
from bot.timeliness import today
from index.chunking import sentence_spans
from index.keyword import tokenize
from index.models import Article
from index.store import StoredPassage

# Weights of the sentence score; measured on the benchmark dev questions (see BENCHMARKS.md).
LEXICAL_WEIGHT = 0.3
HEADING_WEIGHT = 0.3
RANK_WEIGHT = 0.05
# A sentence right after a strong one in the same paragraph often carries its substance
# ("The partnership faces obstacles. Differences in regulatory systems ...").
FOLLOW_WEIGHT = 0.5
# A sentence this similar to one already picked says the same thing again.
DUPLICATE_SIMILARITY = 0.9
# Quotes well below the best one dilute the answer.
KEEP_RATIO = 0.55
MIN_WORDS = 4
# Passages (best first) whose every sentence is scored; later ones give only their
# lexically closest sentences.
FULL_PASSAGES = 2
SENTENCES_PER_OTHER_PASSAGE = 3
POINT_WORDS = 20
# The best article's passages in the retrieved list hold its answer less often than the
# article does (one passage per article comes first): its other sentences that hold at
# least this share of the question's rare terms are read too.
WHOLE_ARTICLE_MIN_SUPPORT = 0.5


# A paragraph, as sentence_spans and the reader see one: a line of the article.
_LINE = re.compile(r"[^\n]+")


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage, scored against the question."""

    article_id: str
    start: int
    end: int
    heading: str | None
    passage_rank: int
    dense: float = 0.0
    lexical: float = 0.0
    score: float = 0.0
    # The passage it was read in, if any: where its vector comes from.
    passage: StoredPassage | None = None


@dataclass(frozen=True)
class Extract:
    """The chosen quotes, whether the reader found a sentence that answers, and the phrase
    of the kind asked for (a name, date, number) in the first quote, when it holds one."""

    citations: list[Citation]
    judgement: Judgement
    asked_phrase: str | None = None
    readings: tuple[Reading, ...] = ()
    # For each citation, its sentence that answers best: what the answer line says of it.
    points: tuple[str, ...] = ()

    @property
    def answers(self) -> bool:
        return bool(self.citations) and self.judgement.answers


def _lexical_overlap(question_terms: set[str], text: str, words_of: WordsOf) -> float:
    if not question_terms:
        return 0.0
    return len(question_terms & words_of(text)) / len(question_terms)


def candidates(
    retrieved: list[Retrieved], articles: dict[str, Article], terms: set[str] | None = None,
    words_of: WordsOf | None = None,
) -> list[Candidate]:
    """The quotable sentences of the retrieved passages, once each.

    Only the best passages give all their sentences; the others give those that share
    most words with the question (embedding sentences when asked, `answer.sentence_vectors
    = "separate"`, would otherwise be the answer's main cost; the figures were tuned with
    this choice).
    """
    words_of = words_of or WordsOf()
    seen: set[tuple[str, int]] = set()
    found: list[Candidate] = []
    for item in retrieved:
        p = item.passage
        article = articles.get(p.article_id)
        if article is None:
            continue
        heading_spans = set(article.headings)
        passage_candidates = []
        for start, end in p.sentences:
            if (p.article_id, start) in seen or (start, end) in heading_spans:
                continue
            seen.add((p.article_id, start))
            sentence = article.text[start:end]
            if len(sentence.split()) < MIN_WORDS or is_instruction_like(sentence):
                continue  # too short to say anything, or addressed to an AI, not a reader
            passage_candidates.append(
                Candidate(p.article_id, start, end, p.heading, item.rank, passage=p)
            )
        if item.rank >= FULL_PASSAGES and terms:
            text = article.text
            passage_candidates.sort(
                key=lambda c: -_lexical_overlap(terms, text[c.start : c.end], words_of)
            )
            passage_candidates = sorted(
                passage_candidates[:SENTENCES_PER_OTHER_PASSAGE], key=lambda c: c.start
            )
        found.extend(passage_candidates)
    return found


def from_best_article(
    retrieved: list[Retrieved], articles: dict[str, Article], found: list[Candidate],
    support: Callable[[str], float],
) -> list[Candidate]:
    """The best article's sentences outside its retrieved passages that hold at least
    WHOLE_ARTICLE_MIN_SUPPORT of the question's terms, weighted by rarity."""
    if not retrieved or retrieved[0].passage.article_id not in articles:
        return []
    article = articles[retrieved[0].passage.article_id]
    seen = {c.start for c in found if c.article_id == article.id}
    headings = set(article.headings)
    extra = []
    for start, end in sentences_of_paragraphs_holding(article.text, support):
        sentence = article.text[start:end]
        if start in seen or (start, end) in headings or len(sentence.split()) < MIN_WORDS:
            continue
        # The safety check last: it costs most, and few sentences hold the question's terms.
        if support(sentence) >= WHOLE_ARTICLE_MIN_SUPPORT and not is_instruction_like(sentence):
            extra.append(Candidate(article.id, start, end, article.heading_before(start), 0))
    return extra


def sentences_of_paragraphs_holding(text: str, support: Callable[[str], float],
                                     ) -> list[tuple[int, int]]:
    """The sentence spans of the paragraphs (lines) that hold at least
    WHOLE_ARTICLE_MIN_SUPPORT of the question's terms: no sentence of another can (its
    terms are a part of its paragraph's), so those are not even split into sentences."""
    spans: list[tuple[int, int]] = []
    for line in _LINE.finditer(text):
        if support(line.group()) >= WHOLE_ARTICLE_MIN_SUPPORT:
            spans.extend(sentence_spans(text, line.start(), line.end()))
    return spans


def score_candidates(
    question: Question,
    found: list[Candidate],
    articles: dict[str, Article],
    vectors: SentenceVectors,
    context: str = "",
    follows: str = "",
    words_of: WordsOf | None = None,
) -> tuple[list[Candidate], np.ndarray]:
    """Scores (dense + lexical + section + rank) and the sentence vectors.

    `context` (a previous question and its quotes, for a follow-up) adds terms to the
    lexical side only. `follows` (the previous question alone) completes an elliptical
    follow-up ("which of them worries investors?") on the dense side.
    """
    texts = [articles[c.article_id].text[c.start : c.end] for c in found]
    # One (article, heading) for each heading text: the vector is the text's alone.
    named = {c.heading: c.article_id for c in found if c.heading}
    headings = sorted(named)
    asked = f"{question.text}\n{follows}" if follows else question.text
    query = vectors.texts([asked])[0]
    sentence_vectors = vectors.of([(c.passage, c.article_id, c.start, c.end) for c in found],
                                  articles)
    heading_vectors = vectors.headings([(named[h], h) for h in headings], articles)
    heading_similarity = {h: float(v @ query) for h, v in zip(headings, heading_vectors,
                                                              strict=True)}
    terms = set(question.words) or set(tokenize([context])[0])
    words_of = words_of or WordsOf()
    scored = []
    for candidate, text, vector in zip(found, texts, sentence_vectors, strict=True):
        dense = float(vector @ query)
        lexical = _lexical_overlap(terms, text, words_of)
        section = max(0.0, heading_similarity.get(candidate.heading or "", 0.0))
        score = (
            dense
            + LEXICAL_WEIGHT * lexical
            + HEADING_WEIGHT * section
            + RANK_WEIGHT / (1 + candidate.passage_rank)
        )
        scored.append(replace(candidate, dense=dense, lexical=lexical, score=score))
    return _propagate(scored, articles), sentence_vectors


def _propagate(scored: list[Candidate], articles: dict[str, Article]) -> list[Candidate]:
    """Lend part of a sentence's score to the next sentence of its paragraph."""
    by_end = {(c.article_id, c.end): c for c in scored}
    out = []
    for c in scored:
        text = articles[c.article_id].text
        gap_start = len(text[: c.start].rstrip())
        previous = by_end.get((c.article_id, gap_start))
        if previous is not None and "\n" not in text[gap_start : c.start]:
            c = replace(c, score=c.score + FOLLOW_WEIGHT * max(0.0, previous.score - c.score))
        out.append(c)
    return out


def choose(scored: list[Candidate], vectors: np.ndarray, max_quotes: int,
           topic: Sequence[float] | None = None) -> list[Candidate]:
    """The best sentences, near-duplicates dropped, weak tails cut: those well below the
    best score (and, when `topic` scores are given, well below the best of those too)."""
    order = sorted(range(len(scored)), key=lambda i: scored[i].score, reverse=True)
    if not order:
        return []
    best = scored[order[0]].score
    best_topic = max(topic) if topic else 0.0
    picked: list[int] = []
    for i in order:
        if len(picked) >= max_quotes:
            break
        if scored[i].score < best * KEEP_RATIO and (
            topic is None or topic[i] < best_topic * KEEP_RATIO
        ):
            continue
        if any(float(vectors[i] @ vectors[j]) > DUPLICATE_SIMILARITY for j in picked):
            continue
        picked.append(i)
    return [scored[i] for i in picked]


def merge_adjacent(
    chosen: list[Candidate], articles: dict[str, Article]
) -> list[tuple[str, int, int, str | None]]:
    """Quotes as (article, start, end, heading), most relevant first: consecutive sentences
    of one paragraph are joined into one quote."""
    groups: list[list[Candidate]] = []
    for c in sorted(chosen, key=lambda c: (c.article_id, c.start)):
        if groups and groups[-1][-1].article_id == c.article_id:
            text = articles[c.article_id].text
            gap = text[groups[-1][-1].end : c.start]
            if not gap.strip() and "\n" not in gap:
                groups[-1].append(c)
                continue
        groups.append([c])
    groups.sort(key=lambda g: max(c.score for c in g), reverse=True)
    return [(g[0].article_id, g[0].start, g[-1].end, g[0].heading) for g in groups]


def extract(
    question: Question,
    retrieved: list[Retrieved],
    articles: dict[str, Article],
    vectors: SentenceVectors,
    reader: Reader,
    *,
    max_quotes: int,
    context: str = "",
    follows: str = "",
    as_of: date | None = None,
    within_previous: bool = False,
) -> Extract:
    """Pick and verify the quotes that answer `question` (asked on `as_of`, default today)
    from the retrieved passages, and let the reader judge whether any of them answers it."""
    terms = set(question.words) | set(tokenize([context])[0])
    words_of = WordsOf()
    found = candidates(retrieved, articles, terms, words_of)
    weights = reader.term_weights(question)
    found += from_best_article(retrieved, articles, found,
                               lambda text: weights.share(words_of(text)))
    if not found:
        return Extract([], Judgement(False, 0.0, 0.0))
    scored, sentence_vectors = score_candidates(question, found, articles, vectors, context,
                                                follows, words_of)
    readings = reader.read(
        question, [Sentence(c.article_id, c.start, c.end, c.dense) for c in scored], articles,
        weights, words_of,
    )
    # Quotes are taken in order of how well they answer (the reader's score), not by topic
    # alone; a sentence close to the question's topic is not cut as weak (the items of a
    # list after "the partnership faces obstacles.").
    answering = [replace(c, score=r.score) for c, r in zip(scored, readings, strict=True)]
    chosen = choose(answering, sentence_vectors, 2 * max_quotes, [c.score for c in scored])
    citations: list[Citation] = []
    points: list[str] = []
    asked_phrase = None
    for article_id, start, end, heading in _leading_with_answer(
        merge_adjacent(chosen, articles), readings
    )[:max_quotes]:
        citation = make_citation(len(citations) + 1, articles[article_id], start, end,
                                 heading=heading)
        if citation is None:
            continue
        inside = _inside(readings, article_id, start, end)
        if not citations:
            asked_phrase = _asked_phrase(articles[article_id], inside)
        citations.append(citation)
        points.append(_best_sentence(articles[article_id], start, end, inside))
    judgement = reader.judge(question, readings, articles, as_of or today(),
                             follow_up=within_previous)
    return Extract(citations, judgement, asked_phrase, tuple(readings), tuple(points))


def _inside(readings: Sequence[Reading], article_id: str, start: int, end: int,
            ) -> list[Reading]:
    """The readings of the sentences that stand in the quote [start, end), in order."""
    return sorted((r for r in readings
                   if r.sentence.article_id == article_id and start <= r.sentence.start < end),
                  key=lambda r: r.sentence.start)


def _leading_with_answer(
    quotes: list[tuple[str, int, int, str | None]], readings: Sequence[Reading]
) -> list[tuple[str, int, int, str | None]]:
    """The quotes with the one holding the best answering sentence first."""
    def answer_score(quote: tuple[str, int, int, str | None]) -> float:
        article_id, start, end, _ = quote
        return max((r.score for r in _inside(readings, article_id, start, end)), default=0.0)

    if not quotes:
        return quotes
    lead = max(range(len(quotes)), key=lambda i: answer_score(quotes[i]))
    return [quotes[lead], *quotes[:lead], *quotes[lead + 1 :]]


def _best_sentence(article: Article, start: int, end: int, inside: list[Reading]) -> str:
    """The sentence of a quote [start, end) that answers best (the quote's first when none
    of its sentences was read)."""
    if not inside:
        return article.text[start:end]
    best = max(inside, key=lambda r: r.score).sentence
    return article.text[best.start : best.end]


def _asked_phrase(article: Article, inside: list[Reading]) -> str | None:
    """The first asked-for phrase among the sentences of a quote."""
    for reading in inside:
        if reading.asked is not None:
            low, high = reading.asked
            at = reading.sentence.start
            return article.text[at + low : at + high]
    return None


def _point(quote: str) -> str:
    """A quote's first sentence, cut short: the answer line stays short, the full quote
    follows it as a block quote."""
    spans = sentence_spans(quote)
    first = quote[spans[0][0] : spans[0][1]] if spans else quote
    words = first.split()
    return first if len(words) <= POINT_WORDS else " ".join(words[:POINT_WORDS]) + " …"


def compose(citations: list[Citation], asked_phrase: str | None = None,
            points: Sequence[str] = ()) -> str:
    """The answer line: the asked-for phrase when the reader found one ("Mediterranean diet
    [1]."), then a short lead naming the sources and one point per quote with its marker
    (`points[i]`, the quote's best answering sentence, else its first)."""
    if not citations:
        return CANNOT_ANSWER
    titles: list[str] = []
    for c in citations:
        if c.article.title and f"“{c.article.title}”" not in titles:
            titles.append(f"“{c.article.title}”")
    sections = {c.heading for c in citations}
    lead = "According to " + (", ".join(titles) if titles else "the articles")
    if len(titles) == 1 and len(sections) == 1 and None not in sections:
        lead += f" ({sections.pop()})"
    said = " ".join(
        f"{_point(points[i] if i < len(points) else c.quote)} [{c.n}]"
        for i, c in enumerate(citations)
    )
    stated = f"{asked_phrase[:1].upper()}{asked_phrase[1:]} [1]. " if asked_phrase else ""
    return f"{stated}{lead}: {said}"

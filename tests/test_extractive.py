"""Choosing quotes: the best article read beyond its retrieved passage, and quotes taken in
order of how well they answer. Pure logic: no model."""

from __future__ import annotations

import numpy as np

from bot.extractive import (
    WHOLE_ARTICLE_MIN_SUPPORT,
    Candidate,
    candidates,
    choose,
    from_best_article,
    sentences_of_paragraphs_holding,
)
from bot.retrieval import Retrieved
from index.chunking import sentence_spans
from index.models import Article
from index.store import StoredPassage

DIET = Article(
    id="diet",
    title="Best diets of 2022",
    text=(
        "The rankings are out for another year. Experts scored forty diets on seven counts.\n"
        "The Mediterranean diet was named the best diet overall for 2022, for the fifth year.\n"
        "The Dukan Diet landed at the bottom of the list. Its rules are strict and short-lived."
    ),
)
OTHER = Article(id="other", title="Gardening", text="Tomatoes like the sun. Water them daily.")


def _retrieved(article: Article, start: int, end: int, rank: int) -> Retrieved:
    spans = tuple(s for s in sentence_spans(article.text) if start <= s[0] < end)
    passage = StoredPassage(f"{article.id}:{start}", article.id, start, end,
                            article.text[start:end], None, spans)
    return Retrieved(passage, 1.0 / (1 + rank), 0.5, rank)


def _support(text: str) -> float:
    """Share of the question's two rare terms ("best", "2022") a text holds."""
    return sum(term in text for term in ("best", "2022")) / 2


def test_the_best_articles_answer_outside_its_retrieved_passage_is_read() -> None:
    dukan = DIET.text.index("The Dukan")
    retrieved = [_retrieved(DIET, dukan, len(DIET.text), 0),
                 _retrieved(OTHER, 0, len(OTHER.text), 1)]
    articles = {"diet": DIET, "other": OTHER}
    found = candidates(retrieved, articles)

    extra = from_best_article(retrieved, articles, found, _support)

    texts = [DIET.text[c.start : c.end] for c in extra]
    assert texts == ["The Mediterranean diet was named the best diet overall for 2022, for "
                     "the fifth year."]
    assert all(c.article_id == "diet" for c in extra)


def test_nothing_is_added_from_an_article_whose_other_sentences_lack_the_terms() -> None:
    retrieved = [_retrieved(OTHER, 0, 22, 0)]
    found = candidates(retrieved, {"other": OTHER})
    assert from_best_article(retrieved, {"other": OTHER}, found, _support) == []


def _candidate(start: int, score: float) -> Candidate:
    return Candidate("a", start, start + 1, None, 0, score=score)


def test_quotes_come_in_order_of_answering_and_topic_keeps_a_weak_answer() -> None:
    answering = [_candidate(0, 0.4), _candidate(10, 1.0), _candidate(20, 0.3),
                 _candidate(30, 0.2)]
    topic = [0.9, 0.8, 0.2, 0.85]
    vectors = np.eye(4)

    chosen = choose(answering, vectors, 4, topic)

    # Ordered by the answering score; 0.3 is weak on both counts and cut; 0.2 answers
    # weakly but is close to the topic, so it stays.
    assert [c.start for c in chosen] == [10, 0, 30]


def test_near_duplicates_are_quoted_once() -> None:
    answering = [_candidate(0, 1.0), _candidate(10, 0.9)]
    same = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert [c.start for c in choose(answering, same, 4)] == [0]


def test_only_paragraphs_holding_the_terms_are_split_and_no_answer_is_lost() -> None:
    # Only the Mediterranean line holds half the question's terms: the others are never
    # split into sentences, and every sentence that holds enough is still found.
    every = [s for s in sentence_spans(DIET.text)
             if _support(DIET.text[s[0] : s[1]]) >= WHOLE_ARTICLE_MIN_SUPPORT]
    checked: list[str] = []

    def support(text: str) -> float:
        checked.append(text)
        return _support(text)

    assert sentences_of_paragraphs_holding(DIET.text, support) == every
    assert every and checked == DIET.text.split("\n")  # one check per paragraph

"""Chunking: exact offsets, sentence and paragraph boundaries, nothing beyond the window."""

from __future__ import annotations

import re
from collections.abc import Sequence

from index.chunking import chunk_article, embedding_texts, leading_words, sentence_spans
from index.models import Article


def _count(texts: list[str] | tuple[str, ...]) -> list[int]:
    return [len(re.findall(r"\w+", t)) or 1 for t in texts]


def _article(text: str, headings: tuple[tuple[int, int], ...] = ()) -> Article:
    return Article(id="a", title="A title", text=text, headings=headings)


def test_sentence_spans_are_exact_substrings() -> None:
    text = "Mr. Smith went to Washington. He said “no.” Then U.S. officials met.\n\nNew one!"
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == [
        "Mr. Smith went to Washington.",
        "He said “no.”",
        "Then U.S. officials met.",
        "New one!",
    ]


def test_chunks_tile_sentences_with_exact_offsets_and_respect_the_limit() -> None:
    paragraphs = [
        " ".join(f"Sentence {p}-{s} has several words in it." for s in range(6))
        for p in range(12)
    ]
    text = "\n\n".join(paragraphs)
    chunks = chunk_article(_article(text), _count, max_tokens=40, window=60)
    assert len(chunks) > 5
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert sum(_count([chunk.text])) <= 40
        for a, b in chunk.sentences:
            assert chunk.start <= a < b <= chunk.end
    covered = [span for chunk in chunks for span in chunk.sentences]
    assert covered == sentence_spans(text)  # every sentence in exactly one passage, in order


def test_a_heading_opens_a_new_passage_and_names_its_section() -> None:
    text = "Intro sentence one here. Intro two.\n\nChallenges Ahead\n\nObstacles remain large."
    start = text.index("Challenges Ahead")
    article = _article(text, headings=((start, start + len("Challenges Ahead")),))
    chunks = chunk_article(article, _count, max_tokens=100)
    assert [c.text for c in chunks] == [
        "Intro sentence one here. Intro two.",
        "Challenges Ahead\n\nObstacles remain large.",
    ]
    assert chunks[1].heading == "Challenges Ahead"
    assert chunks[0].heading is None


def test_an_over_long_sentence_is_cut_at_words_not_truncated() -> None:
    text = " ".join(f"word{i}" for i in range(130)) + "."
    chunks = chunk_article(_article(text), _count, max_tokens=50, window=50)
    assert len(chunks) == 3
    assert all(_count([c.text])[0] <= 50 for c in chunks)
    assert " ".join(c.text for c in chunks) == text


def test_embedding_text_adds_context_without_touching_the_passage() -> None:
    text = "Intro.\n\nChallenges Ahead\n\nObstacles remain."
    start = text.index("Obstacles")
    article = _article(text, headings=((8, 24),))
    chunk = chunk_article(article, _count, max_tokens=3)[-1]
    assert chunk.text == "Obstacles remain." and chunk.start == start
    assert embedding_texts([(article, chunk)], _count) == [
        "A title — Challenges Ahead\nObstacles remain."
    ]


def test_context_is_cut_by_word_pieces_not_words() -> None:
    def by_length(texts: Sequence[str]) -> list[int]:  # a piece per 4 letters of a word
        return [sum(-(-len(word) // 4) for word in text.split()) for text in texts]

    cut = leading_words(["Ala ma kota", "Współzawodnictwo sportowe trwa"], by_length, 5)
    assert cut["Ala ma kota"] == "Ala ma kota"  # 3 pieces: whole
    assert cut["Współzawodnictwo sportowe trwa"] == "Współzawodnictwo"  # 4 + 3 > 5

    def merging(texts: Sequence[str]) -> list[int]:  # each space costs a piece too
        return [len(text.split()) + text.count(" ") for text in texts]

    assert leading_words(["a b c d"], merging, 3)["a b c d"] == "a b"

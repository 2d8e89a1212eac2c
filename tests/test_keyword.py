"""The BM25 keyword index: built page by page from word ids, it ranks as bm25s over tokens."""

from __future__ import annotations

import bm25s
import pytest

from index import keyword
from index.chunking import chunk_article
from index.keyword import KeywordIndex, tokenize
from index.loaders import load_file
from tests.support import SEED
from tests.support.fakes import FakeEmbeddings

QUERIES = ["obstacles to the partnership", "critical minerals lithium", "workforce",
           "regulatory systems differ", "nothing matches zyzzyva"]


def test_a_streamed_build_scores_as_bm25s_over_every_text_at_once(
    fake_embedder: FakeEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    [article] = load_file(SEED, corpus_root=SEED.parent)
    chunks = chunk_article(article, fake_embedder.count_tokens, max_tokens=40)
    ids, texts = [c.id for c in chunks], [c.text for c in chunks]
    assert len(ids) > 6
    monkeypatch.setattr(keyword, "_BUILD_PAGE", 3)  # several pages, one partly filled
    streamed = KeywordIndex.build_streamed(zip(ids, texts, strict=True), "g1")
    whole = bm25s.BM25()
    whole.index(tokenize(texts), show_progress=False)
    for query in QUERIES:
        terms = [t for t in tokenize([query])[0] if t in whole.vocab_dict]
        expected: list[tuple[str, float]] = []
        if terms:
            rows, scores = whole.retrieve([terms], k=5, show_progress=False)
            expected = [(ids[int(r)], float(s)) for r, s in zip(rows[0], scores[0], strict=True)
                        if s > 0]
        got = streamed.search(query, 5)
        assert [pid for pid, _ in got] == [pid for pid, _ in expected], query
        assert [s for _, s in got] == pytest.approx([s for _, s in expected]), query
    assert streamed.search("nothing matches zyzzyva", 5) == []


def test_an_empty_store_gives_an_empty_index() -> None:
    empty = KeywordIndex.build_streamed(iter(()), "g0")
    assert empty.search("anything", 5) == [] and empty.generation == "g0"


def test_terms_are_the_ones_bm25s_tokenize_gives() -> None:
    """The answer tokenizes each sentence alone, so `tokenize` does bm25s's work without its
    per-call cost; the terms must stay the very ones the index was built with."""
    [article] = load_file(SEED, corpus_root=SEED.parent)
    texts = ["", "the and of it", "It's 2023: U.S. GDP grew 2.1%; Zürich cafés' naïve résumés!",
             article.title, *article.text.split(". "), article.text]
    theirs = bm25s.tokenize(texts, stopwords="en", stemmer=keyword._STEMMER,
                            return_ids=False, show_progress=False)
    assert tokenize(texts) == [list(t) for t in theirs]
    assert tokenize(["the and of it"]) == [[]]

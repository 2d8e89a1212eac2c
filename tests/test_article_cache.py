"""The article cache: held by generation, bounded by the size of its texts."""

from __future__ import annotations

from index.article_cache import ArticleCache
from index.models import Article

STORE = {f"a{n}": Article(id=f"a{n}", title="", text="x" * 100) for n in range(10)}


class _Reads:
    """A store's article read that notes which ids it was asked for."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    def __call__(self, ids: list[str]) -> dict[str, Article]:
        self.asked.append(ids)
        return {i: STORE[i] for i in ids if i in STORE}


def test_articles_are_read_once_per_generation_and_unknown_ones_are_left_out() -> None:
    cache, reads = ArticleCache(), _Reads()
    assert set(cache.get(["a1", "a2", "nowhere"], "g1", reads)) == {"a1", "a2"}
    assert set(cache.get(["a2", "a1"], "g1", reads)) == {"a1", "a2"}
    assert reads.asked == [["a1", "a2", "nowhere"]]
    cache.get(["a1"], "g2", reads)  # a write happened: what was held may be stale
    assert reads.asked[-1] == ["a1"]


def test_the_least_recently_used_go_when_the_texts_outgrow_the_bound() -> None:
    cache, reads = ArticleCache(max_chars=300), _Reads()
    cache.get(["a1", "a2", "a3"], "g", reads)
    cache.get(["a1"], "g", reads)  # a1 used again: a2 is now the oldest
    cache.get(["a4"], "g", reads)
    reads.asked.clear()
    cache.get(["a1", "a3", "a4"], "g", reads)
    assert reads.asked == []
    cache.get(["a2"], "g", reads)
    assert reads.asked == [["a2"]]

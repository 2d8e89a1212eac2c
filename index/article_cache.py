"""Articles kept in memory for one generation of the store, bounded by their texts' size."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

from index.models import Article

# Characters of article text kept (about as many bytes for English news): 1,427 news
# articles hold 13.3 M. A bound by count (512 articles) thrashed: the articles a stream of
# questions quotes from cycle through more than 512, so most reads missed and went to Chroma.
DEFAULT_CHARS = 32_000_000


class ArticleCache:
    """Least recently used articles, emptied when the store's generation changes (any write
    may have changed them). Safe to share between the threads answering questions."""

    def __init__(self, max_chars: int = DEFAULT_CHARS) -> None:
        self.max_chars = max_chars
        self._articles: OrderedDict[str, Article] = OrderedDict()
        self._chars = 0
        self._generation = ""
        self._lock = threading.Lock()

    def get(self, ids: Sequence[str], generation: str,
            read: Callable[[list[str]], dict[str, Article]]) -> dict[str, Article]:
        """The articles of `ids` that exist, those not held read by `read` (outside the
        lock: a slow read does not hold up the other threads)."""
        wanted = list(dict.fromkeys(ids))
        with self._lock:
            if generation != self._generation:
                self._articles.clear()
                self._chars = 0
                self._generation = generation
            missing = [i for i in wanted if i not in self._articles]
        fetched = read(missing) if missing else {}
        with self._lock:
            if generation == self._generation:
                for article_id, article in fetched.items():
                    if article_id not in self._articles:
                        self._articles[article_id] = article
                        self._chars += len(article.text)
            found = {}
            for article_id in wanted:
                held = fetched.get(article_id) or self._articles.get(article_id)
                if held is not None:
                    found[article_id] = held
                    if article_id in self._articles:
                        self._articles.move_to_end(article_id)
            while self._chars > self.max_chars and self._articles:
                _, dropped = self._articles.popitem(last=False)
                self._chars -= len(dropped.text)
        return found

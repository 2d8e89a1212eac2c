"""Hybrid retrieval: dense (Chroma) and keyword (BM25) results fused, dated, ranked by article."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

from bot.settings import RetrievalSettings
from bot.timeliness import Timeliness, today
from index.embeddings import SentenceEmbeddings
from index.store import PassageHit, PassageStore, StoredPassage

T = TypeVar("T")


@dataclass(frozen=True)
class Retrieved:
    """A passage with its fused score, its dense similarity and its rank (0 = best)."""

    passage: StoredPassage
    fused: float
    dense: float
    rank: int


class HybridRetriever(BaseModel):
    """Retrieval over a PassageStore (bot.langchain_retriever offers it to LangChain).

    Dense and BM25 candidate lists are fused by reciprocal rank (robust to their
    incomparable score scales). Articles are then ranked by their best passage plus
    `article_support` times the next two, so an article that matches in several places
    beats a stray sentence elsewhere; that order is fused again by reciprocal rank with
    BM25 over whole articles (`article_keyword_weight`) and with the whole articles'
    vectors (`article_dense_weight`), and weighed by the articles' dates (`Timeliness`).
    The result takes the best passage of each article in that order first, then the
    second best, and so on (at most `per_article` each): the top passages cover as many
    of the best articles as they can, and one long article cannot crowd out the others.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: PassageStore
    embedder: SentenceEmbeddings
    k: int = 6
    dense_depth: int = 50
    keyword_depth: int = 50
    rrf_k: int = 60
    per_article: int = 3
    article_support: float = 0.3
    article_keyword_weight: float = 2.0
    article_dense_weight: float = 1.0
    timeliness: Timeliness = Timeliness()
    follow_up_boost: float = 2.0

    @classmethod
    def from_settings(
        cls, store: PassageStore, embedder: SentenceEmbeddings, settings: RetrievalSettings
    ) -> HybridRetriever:
        return cls(
            store=store,
            embedder=embedder,
            k=settings.k,
            dense_depth=settings.dense_depth,
            keyword_depth=settings.keyword_depth,
            rrf_k=settings.rrf_k,
            per_article=settings.per_article,
            article_support=settings.article_support,
            article_keyword_weight=settings.article_keyword_weight,
            article_dense_weight=settings.article_dense_weight,
            follow_up_boost=settings.follow_up_boost,
            timeliness=Timeliness(
                recency_weight=settings.recency_weight,
                half_life_days=settings.recency_half_life_days,
                phrase_boost=settings.time_phrase_boost,
            ),
        )

    def retrieve(
        self, query: str, k: int | None = None, *, as_of: date | None = None,
        prefer: Collection[str] = (),
    ) -> list[Retrieved]:
        """The best passages for `query` asked on `as_of` (default: today), best first;
        passages of the `prefer` articles (a follow-up's previous answer) weigh
        (1 + follow_up_boost) times more."""
        k = k or self.k
        vector = self.embedder.encode_question(query).tolist()
        with self.store.reading():  # one generation, read once, for every search below
            return self._retrieve(query, vector, k, as_of, prefer)

    def _retrieve(self, query: str, vector: list[float], k: int, as_of: date | None,
                  prefer: Collection[str]) -> list[Retrieved]:
        # Candidates are fused, dated and ranked from the store's passage table; the only
        # Chroma call is the vector query (and reading the kept passages' articles, when
        # they are not in memory yet).
        dense = self.store.dense_hits(vector, self.dense_depth)
        keyword = self.store.keyword_search(query, self.keyword_depth)

        fused: dict[str, float] = defaultdict(float)
        for rank, hit in enumerate(dense):
            fused[hit.id] += 1.0 / (self.rrf_k + rank + 1)
        for rank, (pid, _) in enumerate(keyword):
            fused[pid] += 1.0 / (self.rrf_k + rank + 1)

        hits = {h.id: h for h in dense}
        missing = [pid for pid, _ in keyword if pid not in hits]
        hits.update(self.store.passage_hits(missing))
        dense_score = {h.id: h.score for h in dense}
        fused = {pid: score for pid, score in fused.items() if pid in hits}
        by_article = self._by_article(fused, hits)
        weights = self._date_weights(query, by_article, hits, as_of or today())
        for article_id in by_article:
            if article_id in prefer:
                weights[article_id] = weights.get(article_id, 1.0) * (1.0 + self.follow_up_boost)
        articles = self._ranked_articles(query, vector, by_article, fused, weights)

        kept = _interleaved(by_article, articles, self.per_article)[:k]
        passages = self.store.get_passages(kept)
        results: list[Retrieved] = []
        for pid in (pid for pid in kept if pid in passages):
            score = fused[pid] * weights.get(hits[pid].article_id, 1.0)
            results.append(
                Retrieved(
                    replace(passages[pid], score=score),
                    score,
                    dense_score.get(pid, 0.0),
                    len(results),
                )
            )
        return results

    def _date_weights(self, query: str, by_article: Mapping[str, list[str]],
                      hits: Mapping[str, PassageHit], as_of: date) -> dict[str, float]:
        """Each candidate article's date multiplier (none when dates are switched off); the
        date comes with the passages' metadata, or from the registry for passages indexed
        before they carried it."""
        if not self.timeliness.active or not by_article:
            return {}
        published: dict[str, str | None] = {}
        undated = []
        for article_id, pids in by_article.items():
            hit = hits[pids[0]]
            if hit.dated:
                published[article_id] = hit.published
            else:
                undated.append(article_id)
        if undated:
            published.update(self.store.published_dates(undated))
        return self.timeliness.weights(query, published, as_of)

    def _by_article(
        self, fused: dict[str, float], passages: Mapping[str, PassageHit]
    ) -> dict[str, list[str]]:
        """Each candidate article's best passages (at most `per_article`), best first."""
        by_article: dict[str, list[str]] = defaultdict(list)
        for pid in sorted(fused, key=fused.__getitem__, reverse=True):
            kept = by_article[passages[pid].article_id]
            if len(kept) < self.per_article:
                kept.append(pid)
        return by_article

    def _ranked_articles(
        self,
        query: str,
        vector: list[float],
        by_article: dict[str, list[str]],
        fused: dict[str, float],
        weights: dict[str, float],
    ) -> list[str]:
        """Candidate articles, best first (`weights`: dates and follow-up preference).

        An article scores its best passage plus `article_support` times the next two.
        That order is fused by reciprocal rank with two searches over whole articles:
        BM25 (title weighted, `article_keyword_weight`) and the question's cosine to each
        article's mean passage vector (`article_dense_weight`). A story whose words or
        meaning are spread over the article, or stand in its title, is not lost because
        no single passage holds them. Dates and a follow-up's preference multiply the
        final score; they weigh every passage of an article alike, so applying them here
        is the same as applying them to each passage.
        """

        def passage_support(article_id: str) -> float:
            best, *others = (fused[pid] for pid in by_article[article_id])
            return best + self.article_support * sum(others[:2])

        score = {article_id: passage_support(article_id) for article_id in by_article}
        whole_articles = [
            (self.article_keyword_weight,
             lambda: self.store.article_keyword_search(query, self.keyword_depth)),
            (self.article_dense_weight,
             lambda: self.store.article_dense_search(vector, self.dense_depth)),
        ]
        if any(weight > 0 for weight, _ in whole_articles):
            by_passages = sorted(score, key=score.__getitem__, reverse=True)
            score = {a: 1.0 / (self.rrf_k + rank + 1) for rank, a in enumerate(by_passages)}
        for weight, search in whole_articles:
            if weight <= 0:
                continue
            # Only articles with candidate passages: the answer needs passages to quote.
            for rank, (article_id, _) in enumerate(search()):
                if article_id in score:
                    score[article_id] += weight / (self.rrf_k + rank + 1)
        for article_id, weight in weights.items():
            if article_id in score:
                score[article_id] *= weight
        return sorted(score, key=score.__getitem__, reverse=True)


def by_article_in_turn(results: list[Retrieved]) -> list[Retrieved]:
    """Results (best first) reordered as the retriever orders passages: each article's
    best, in the order of the articles' best, then each one's second best, and so on."""
    by_article: dict[str, list[Retrieved]] = defaultdict(list)
    for r in results:
        by_article[r.passage.article_id].append(r)
    return _interleaved(by_article, list(by_article), len(results))


def _interleaved(
    by_article: Mapping[str, list[T]], articles: list[str], per_article: int
) -> list[T]:
    """Passage ids: each ranked article's best, then each one's second best, ..."""
    return [
        by_article[article_id][turn]
        for turn in range(per_article)
        for article_id in articles
        if turn < len(by_article[article_id])
    ]

"""Hybrid retrieval: dense (Chroma) and keyword (BM25) results fused, dated, ranked by article."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from bot.settings import RetrievalSettings
from bot.timeliness import Timeliness, today
from index.embeddings import SentenceEmbeddings
from index.store import PassageHit, PassageStore, StoredPassage


@dataclass(frozen=True)
class Retrieved:
    """A passage with its fused score, its dense similarity and its rank (0 = best)."""

    passage: StoredPassage
    fused: float
    dense: float
    rank: int


class HybridRetriever(BaseRetriever):
    """LangChain retriever over a PassageStore.

    Dense and BM25 candidate lists are fused by reciprocal rank (robust to their
    incomparable score scales) and weighed by the articles' dates (`Timeliness`). Articles
    are then ranked by their best passage plus `article_support` times the next two, so
    an article that matches in several places beats a stray sentence elsewhere. The
    result takes the best passage of each article in that order first, then the second
    best, and so on (at most `per_article` each): the top passages cover as many of the
    best articles as they can, and one long article cannot crowd out the others.
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
        vector = self.embedder.encode_cached([query])[0].tolist()
        # Candidates are fused, dated and ranked from their metadata; only the k kept are
        # read whole (three Chroma reads per question, whatever the depths).
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
        self._weigh_by_date(query, fused, hits, as_of or today())
        if prefer:
            for pid in fused:
                if hits[pid].article_id in prefer:
                    fused[pid] *= 1.0 + self.follow_up_boost

        kept = self._interleaved(fused, hits)[:k]
        passages = self.store.get_passages(kept)
        results: list[Retrieved] = []
        for pid in (pid for pid in kept if pid in passages):
            results.append(
                Retrieved(
                    replace(passages[pid], score=fused[pid]),
                    fused[pid],
                    dense_score.get(pid, 0.0),
                    len(results),
                )
            )
        return results

    def _weigh_by_date(
        self,
        query: str,
        fused: dict[str, float],
        hits: Mapping[str, PassageHit],
        as_of: date,
    ) -> None:
        if not self.timeliness.active or not fused:
            return
        published = {hits[pid].article_id: hits[pid].published for pid in fused
                     if hits[pid].dated}
        undated = [hits[pid].article_id for pid in fused if not hits[pid].dated]
        if undated:  # passages indexed before they carried the date
            published.update(self.store.published_dates(undated))
        weights = self.timeliness.weights(query, published, as_of)
        for pid in fused:
            fused[pid] *= weights.get(hits[pid].article_id, 1.0)

    def _interleaved(
        self, fused: dict[str, float], passages: Mapping[str, PassageHit]
    ) -> list[str]:
        """Passage ids: each ranked article's best, then each one's second best, ..."""
        by_article: dict[str, list[str]] = defaultdict(list)
        for pid in sorted(fused, key=fused.__getitem__, reverse=True):
            kept = by_article[passages[pid].article_id]
            if len(kept) < self.per_article:
                kept.append(pid)

        def article_score(article_id: str) -> float:
            best, *others = (fused[pid] for pid in by_article[article_id])
            return best + self.article_support * sum(others[:2])

        articles = sorted(by_article, key=article_score, reverse=True)
        return [
            by_article[article_id][turn]
            for turn in range(self.per_article)
            for article_id in articles
            if turn < len(by_article[article_id])
        ]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [_as_document(r) for r in self.retrieve(query)]


def _as_document(result: Retrieved) -> Document:
    p = result.passage
    metadata: dict[str, Any] = {
        "id": p.id,
        "article_id": p.article_id,
        "start": p.start,
        "end": p.end,
        "heading": p.heading,
        "score": result.fused,
        "dense": result.dense,
    }
    return Document(page_content=p.text, metadata=metadata, id=p.id)

"""Hybrid retrieval: dense (Chroma) and keyword (BM25) results fused by reciprocal rank."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from bot.settings import RetrievalSettings
from index.embeddings import SentenceEmbeddings
from index.store import PassageStore, StoredPassage


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
    incomparable score scales), then at most `per_article` passages per article are kept
    so one long article cannot crowd out the others.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: PassageStore
    embedder: SentenceEmbeddings
    k: int = 6
    dense_depth: int = 50
    keyword_depth: int = 50
    rrf_k: int = 60
    per_article: int = 3

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
        )

    def retrieve(self, query: str, k: int | None = None) -> list[Retrieved]:
        """The best passages for `query`, best first."""
        k = k or self.k
        vector = self.embedder.encode_cached([query])[0].tolist()
        dense = self.store.dense_search(vector, self.dense_depth)
        keyword = self.store.keyword_search(query, self.keyword_depth)

        fused: dict[str, float] = defaultdict(float)
        for rank, passage in enumerate(dense):
            fused[passage.id] += 1.0 / (self.rrf_k + rank + 1)
        for rank, (pid, _) in enumerate(keyword):
            fused[pid] += 1.0 / (self.rrf_k + rank + 1)

        passages = {p.id: p for p in dense}
        missing = [pid for pid, _ in keyword if pid not in passages]
        passages.update(self.store.get_passages(missing))
        dense_score = {p.id: p.score for p in dense}

        ordered = sorted(
            (pid for pid in fused if pid in passages), key=lambda pid: fused[pid], reverse=True
        )
        per_article: dict[str, int] = defaultdict(int)
        results: list[Retrieved] = []
        for pid in ordered:
            passage = passages[pid]
            if per_article[passage.article_id] >= self.per_article:
                continue
            per_article[passage.article_id] += 1
            results.append(
                Retrieved(
                    replace(passage, score=fused[pid]),
                    fused[pid],
                    dense_score.get(pid, 0.0),
                    len(results),
                )
            )
            if len(results) >= k:
                break
        return results

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

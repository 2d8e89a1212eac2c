"""Dossier's retrieval and embedding model as LangChain components, for chains built on it.

Kept apart from bot.retrieval and index.embeddings: importing LangChain's retriever and
embeddings bases brings its callbacks, tracers and langsmith (about 0.35 s each of a cold
start, BENCHMARKS.md), which an extractive answer never uses.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from bot.retrieval import HybridRetriever, Retrieved
from index.embeddings import SentenceEmbeddings


class DossierRetriever(BaseRetriever):
    """A LangChain BaseRetriever over HybridRetriever: each passage a Document whose
    metadata carries its article, offsets, heading and scores."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: HybridRetriever

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [as_document(r) for r in self.retriever.retrieve(query)]


def as_document(result: Retrieved) -> Document:
    """A retrieved passage as a LangChain Document (its text, offsets and scores)."""
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


class DossierEmbeddings(Embeddings):
    """A LangChain Embeddings over the index's own model (its OpenVINO copy when there is
    one): vectors that match the stored passages'."""

    def __init__(self, embedder: SentenceEmbeddings) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_query(text)

"""Dossier's retrieval and embeddings offered to LangChain: the same passages and vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever

from bot.langchain_adapters import DossierEmbeddings, DossierRetriever
from bot.retrieval import HybridRetriever
from index.chunking import chunk_article
from index.models import Article
from index.store import PassageStore, make_client
from tests.support.fakes import FakeEmbeddings

ARTICLES = [
    Article(id="mine", title="", text="Workers at the Atacama lithium mine went on strike."),
    Article(id="harvest", title="", text="Farmers began the grape harvest early this year."),
]


def test_langchain_gets_the_passages_retrieve_gives_with_their_offsets(
    tmp_path: Path, fake_embedder: FakeEmbeddings
) -> None:
    store = PassageStore(make_client(tmp_path / "chroma"), "dossier",
                         fake_embedder.model_name, tmp_path / "keyword")
    store.begin_write()
    for article in ARTICLES:
        chunks = chunk_article(article, fake_embedder.count_tokens, max_tokens=16)
        store.replace_article(article, chunks, fake_embedder.encode([c.text for c in chunks]))
    store.finish_write()
    retriever = HybridRetriever(store=store, embedder=fake_embedder, k=2)
    wrapped = DossierRetriever(retriever=retriever)
    assert isinstance(wrapped, BaseRetriever)

    documents = wrapped.invoke("Why did the lithium mine workers strike?")
    direct = retriever.retrieve("Why did the lithium mine workers strike?")
    assert [d.id for d in documents] == [r.passage.id for r in direct]
    top = documents[0]
    assert top.metadata["article_id"] == "mine"
    article = ARTICLES[0].text
    assert article[top.metadata["start"]:top.metadata["end"]] == top.page_content


def test_langchain_embeds_with_the_index_model(fake_embedder: FakeEmbeddings) -> None:
    wrapped = DossierEmbeddings(fake_embedder)
    assert isinstance(wrapped, Embeddings)
    texts = [article.text for article in ARTICLES]
    assert np.allclose(wrapped.embed_documents(texts), fake_embedder.encode(texts))
    assert np.allclose(wrapped.embed_query(texts[0]), fake_embedder.encode(texts[:1])[0])

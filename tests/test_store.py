"""The Chroma store: replace/remove, model checks, and the keyword index kept in sync."""

from __future__ import annotations

import gc
import logging
import weakref
from pathlib import Path
from typing import Any

import chromadb
import httpx
import numpy as np
import pytest
from chromadb.config import Settings as ChromaSettings

from index import heap
from index import store as store_module
from index.article_vectors import ArticleVectors
from index.chunking import chunk_article
from index.errors import EmbeddingModelMismatch, IndexNotBuilt
from index.keyword import KeywordIndex
from index.models import Article
from index.passage_table import PassageTable
from index.store import PassageStore, is_outage, make_client
from tests.support.chroma_server import free_port
from tests.support.fakes import FakeEmbeddings


def _store(tmp_path: Path, model: str = "fake-hash-embeddings") -> PassageStore:
    return PassageStore(make_client(tmp_path / "chroma"), "dossier", model, tmp_path / "keyword")


def _article(article_id: str, text: str) -> Article:
    return Article(id=article_id, title=article_id.title(), text=text, path=f"{article_id}.txt")


def _written(tmp_path: Path, embedder: FakeEmbeddings, *articles: Article) -> PassageStore:
    """A new store with `articles` written in one write."""
    store = _store(tmp_path)
    store.check_model(embedder.dimension)
    _write(store, embedder, *articles)
    return store


def _write(store: PassageStore, embedder: FakeEmbeddings, *articles: Article) -> None:
    store.begin_write()
    for article in articles:
        chunks = chunk_article(article, embedder.count_tokens, max_tokens=12)
        store.replace_article(article, chunks, embedder.encode([c.text for c in chunks]))
    store.finish_write()


LITHIUM = (
    "Lithium mining grows in Mexico. " * 4 + "\n\nCanada invests in refining plants near ports."
)
WEATHER = "Storms hit the coast on Monday. Rain fell for days.\n\nFlood warnings were issued."
BOTH = (_article("lithium", LITHIUM), _article("weather", WEATHER))


def test_replace_keeps_no_orphans_and_registry_tracks_articles(
    tmp_path: Path, fake_embedder: FakeEmbeddings
) -> None:
    store = _written(tmp_path, fake_embedder, *BOTH)
    first = store.count()
    assert set(store.records()) == {"lithium", "weather"}

    shorter = _article("lithium", "Lithium mining grows in Mexico.")
    _write(store, fake_embedder, shorter)
    remaining = store.passages.get(where={"article_id": "lithium"})
    assert len(remaining["ids"]) == 1
    assert store.count() < first
    assert store.get_articles(["lithium"])["lithium"].text == shorter.text

    store.remove_article("weather")
    assert set(store.records()) == {"lithium"}
    assert store.passages.get(where={"article_id": "weather"})["ids"] == []


def test_dense_and_keyword_search_find_the_right_article(
    tmp_path: Path, fake_embedder: FakeEmbeddings
) -> None:
    store = _store(tmp_path)
    store.check_model(fake_embedder.dimension)
    with pytest.raises(IndexNotBuilt):
        store.dense_search(fake_embedder.embed_query("x"), 5)
    _write(store, fake_embedder, _article("lithium", LITHIUM), _article("weather", WEATHER))
    hits = store.dense_search(fake_embedder.embed_query("flood warnings"), 3)
    assert hits[0].article_id == "weather"
    assert hits[0].text == WEATHER[hits[0].start : hits[0].end]
    keyword = store.keyword_search("refining plants", 3)
    assert keyword and store.get_passages([keyword[0][0]])[keyword[0][0]].article_id == "lithium"
    # Whole articles are searched too, their titles included ("Weather" is only a title).
    assert [aid for aid, _ in store.article_keyword_search("weather", 3)] == ["weather"]
    assert store.article_keyword_search("refining plants", 3)[0][0] == "lithium"
    # And by their vectors: each article's passages' mean direction.
    found = store.article_dense_search(fake_embedder.embed_query("storms rain flood"), 3)
    assert [aid for aid, _ in found] == ["weather", "lithium"]


def test_opening_with_another_model_is_refused_unless_rebuilt(
    tmp_path: Path, fake_embedder: FakeEmbeddings
) -> None:
    _written(tmp_path, fake_embedder, _article("lithium", LITHIUM))
    other = _store(tmp_path, model="another-model")
    with pytest.raises(EmbeddingModelMismatch, match="--rebuild"):
        other.check_model(fake_embedder.dimension)
    other.check_model(fake_embedder.dimension, rebuild=True)
    assert other.count() == 0 and other.records() == {}
    assert other.metadata["embedding_model"] == "another-model"


def test_a_write_that_never_finished_makes_the_keyword_index_rebuild(
    tmp_path: Path, fake_embedder: FakeEmbeddings
) -> None:
    store = _written(tmp_path, fake_embedder, _article("lithium", LITHIUM))
    saved = KeywordIndex.load(store.keyword_dir)
    assert saved is not None and saved.generation == store.generation

    # A writer that dies after changing Chroma but before saving the keyword index:
    store.begin_write()
    weather = _article("weather", WEATHER)
    chunks = chunk_article(weather, fake_embedder.count_tokens, max_tokens=12)
    store.replace_article(weather, chunks, fake_embedder.encode([c.text for c in chunks]))

    reopened = _store(tmp_path)
    assert reopened.keyword_index().generation == reopened.generation
    assert len(reopened.keyword_index().ids) == reopened.count()
    assert any(pid.startswith("weather:") for pid, _ in reopened.keyword_search("flood", 3))
    # The whole-article index follows the same generation, and is rebuilt alike.
    assert KeywordIndex.load(store.article_keyword_dir).generation != reopened.generation
    assert reopened.article_keyword_index().generation == reopened.generation
    assert reopened.article_keyword_search("flood", 3)[0][0] == "weather"
    # So are the article vectors.
    assert ArticleVectors.load(store.article_vectors_dir).generation != reopened.generation
    assert set(reopened.article_vector_index().ids) == {"lithium", "weather"}
    assert reopened.article_vector_index().generation == reopened.generation
    # And so is the passage table: the new article's passages are placed and dated.
    assert PassageTable.load(store.passage_table_dir).generation != reopened.generation
    table = reopened.passage_table()
    assert table.generation == reopened.generation and len(table) == reopened.count()
    assert {row.article_id for row in map(table.row, table.ids) if row} == {"lithium", "weather"}


def test_a_damaged_keyword_index_is_rebuilt_and_said_so_in_the_log(
    tmp_path: Path, fake_embedder: FakeEmbeddings, caplog: pytest.LogCaptureFixture
) -> None:
    store = _written(tmp_path, fake_embedder, _article("lithium", LITHIUM))
    (store.keyword_dir / "dossier.json").write_text("{not json", encoding="utf-8")

    reopened = _store(tmp_path)
    with caplog.at_level(logging.WARNING, logger="index.keyword"):
        found = reopened.keyword_search("refining plants", 3)
    assert found and found[0][0].startswith("lithium:")
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "unreadable" in warning.getMessage() and str(store.keyword_dir) in warning.getMessage()


def test_an_outage_is_known_by_the_clients_error_types_not_by_its_words() -> None:
    # Nothing listens on this port: chromadb re-raises httpx.ConnectError as a ValueError.
    with pytest.raises(ValueError) as refused:
        chromadb.HttpClient(host="127.0.0.1", port=free_port(),
                            settings=ChromaSettings(anonymized_telemetry=False))
    assert is_outage(refused.value)
    # chromadb's words for a missing tenant also say "connect", but the server answered.
    assert not is_outage(ValueError("Could not connect to tenant x. Are you sure it exists?"))
    assert is_outage(httpx.ReadTimeout("timed out"))
    assert not is_outage(httpx.HTTPStatusError(
        "bad request", request=httpx.Request("GET", "http://x"),
        response=httpx.Response(400)))


def test_every_index_a_write_rebuilds_from_the_whole_store_hands_its_freed_memory_back(
    tmp_path: Path, fake_embedder: FakeEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    trims: list[bool] = []
    real = heap.return_freed_memory
    monkeypatch.setattr(heap, "return_freed_memory", lambda: trims.append(real()) or True)
    _written(tmp_path, fake_embedder, _article("lithium", LITHIUM))
    # keyword index with passage table, article keyword, article vectors: each read the
    # whole store
    assert trims == [True] * 3


def test_a_write_reads_every_passage_once_for_the_keyword_index_and_the_passage_table(
    tmp_path: Path, fake_embedder: FakeEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path)
    store.check_model(fake_embedder.dimension)
    whole_reads: list[list[str]] = []
    passages_get = store.passages.get

    def get(**kw: Any) -> Any:
        if kw.get("offset") == 0:  # the first page of a read of every passage
            whole_reads.append(kw.get("include", []))
        return passages_get(**kw)

    monkeypatch.setattr(store.passages, "get", get)
    _write(store, fake_embedder, _article("lithium", LITHIUM), _article("weather", WEATHER))
    assert whole_reads == [["documents", "metadatas"]]
    monkeypatch.undo()
    table = store.passage_table()
    assert table.generation == store.generation and len(table) == store.count()
    assert {row.article_id for row in map(table.row, table.ids) if row} == {"lithium", "weather"}
    assert store.keyword_search("storms flood", 3)[0][0].startswith("weather:")


def test_a_write_lets_go_of_the_derived_indexes_it_makes_stale(
    tmp_path: Path, fake_embedder: FakeEmbeddings
) -> None:
    # A long-lived process (the bot taking an upload, an ingest of several folders) held
    # the whole previous keyword indexes, article vectors and passage table through the
    # embedding and through the rebuild of their successors: twice the derived memory.
    store = _written(tmp_path, fake_embedder, _article("lithium", LITHIUM))
    held = [weakref.ref(index) for index in (
        store.keyword_index(), store.article_keyword_index(), store.article_vector_index(),
        store.passage_table())]
    assert all(ref() is not None for ref in held)
    store.begin_write()
    gc.collect()
    assert [ref() for ref in held] == [None] * 4
    article = _article("weather", WEATHER)
    chunks = chunk_article(article, fake_embedder.count_tokens, max_tokens=12)
    store.replace_article(article, chunks, fake_embedder.encode([c.text for c in chunks]))
    store.finish_write()
    assert {pid.split(":")[0] for pid, _ in store.keyword_search("storms flood", 5)} == {
        "weather"}


def _vectors_by_passages(store: PassageStore) -> ArticleVectors:
    """The article vectors as they were built before the registry kept rows: every stored
    passage vector read and summed by article."""
    got = store.passages.get(include=["embeddings", "metadatas"])
    return ArticleVectors.build(
        ((str(meta["article_id"]), vector)
         for meta, vector in zip(got["metadatas"], got["embeddings"], strict=True)), "x")


def _same_rows(a: ArticleVectors, b: ArticleVectors) -> bool:
    rows_b = dict(zip(b.ids, b.matrix, strict=True))
    return sorted(a.ids) == sorted(b.ids) and all(
        np.allclose(row, rows_b[i], atol=1e-6) for i, row in zip(a.ids, a.matrix, strict=True))


def test_article_vectors_are_rebuilt_from_rows_kept_by_article_not_every_passage_vector(
    tmp_path: Path, fake_embedder: FakeEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _written(tmp_path, fake_embedder, *BOTH)
    reads: list[list[str]] = []
    passages_get = store.passages.get
    monkeypatch.setattr(store.passages, "get",
                        lambda **kw: reads.append(kw.get("include", [])) or passages_get(**kw))
    rebuilt = store._rebuild_article_vectors("rebuilt")
    assert not any("embeddings" in include for include in reads)
    monkeypatch.undo()
    assert _same_rows(rebuilt, _vectors_by_passages(store))


@pytest.mark.parametrize("read_by_article_up_to", [200, 0])
def test_articles_indexed_before_rows_were_kept_get_theirs_from_their_passages(
    tmp_path: Path, fake_embedder: FakeEmbeddings, monkeypatch: pytest.MonkeyPatch,
    read_by_article_up_to: int,
) -> None:
    # 200: the one older article's passages are read by its id; 0: every passage is read
    monkeypatch.setattr(store_module, "_OLDER_ARTICLES_A_READ", read_by_article_up_to)
    store = _written(tmp_path, fake_embedder, *BOTH)
    # "weather" as an index built before rows were kept: no row
    store.article_rows.delete(ids=["weather"])
    assert store.article_rows.get(ids=["lithium", "weather"])["ids"] == ["lithium"]
    assert _same_rows(store._rebuild_article_vectors("rebuilt"), _vectors_by_passages(store))


def test_an_article_reingested_without_passages_leaves_no_row_behind(
    tmp_path: Path, fake_embedder: FakeEmbeddings
) -> None:
    store = _written(tmp_path, fake_embedder, *BOTH)
    store.begin_write()
    store.replace_article(_article("weather", WEATHER), [], np.zeros((0, 8)))
    store.finish_write()
    assert store.article_rows.get(ids=["lithium", "weather"])["ids"] == ["lithium"]
    assert store.article_vector_index().ids == ["lithium"]

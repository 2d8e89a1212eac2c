"""Articles' texts: kept compressed out of Chroma's full-text index, and an index that kept
them as documents still read."""

from __future__ import annotations

import base64
import sqlite3
import zlib
from pathlib import Path

from index.article_texts import decode_text, encode_text
from index.store import PassageStore
from tests.support.fakes import FakeEmbeddings
from tests.test_store import LITHIUM, _article, _store, _write

# Accents, curly quotes, an emoji and CJK: what news text holds beside ASCII.
WEATHER = "Storms hit São Paulo on Monday — “rain for days” 🌧.\n\n洪水警報が出された。"


def _two_articles(tmp_path: Path, embedder: FakeEmbeddings) -> PassageStore:
    store = _store(tmp_path)
    store.check_model(embedder.dimension)
    _write(store, embedder, _article("lithium", LITHIUM), _article("weather", WEATHER))
    return store


def _full_text_rows(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "chroma" / "chroma.sqlite3") as db:
        return int(db.execute("select count(*) from embedding_fulltext_search").fetchone()[0])


def test_encoded_text_comes_back_exactly_in_about_half_the_space() -> None:
    text = (WEATHER + " " + LITHIUM) * 20
    encoded = encode_text(text)
    assert encoded.isascii() and decode_text(encoded) == text
    assert len(encoded) < 0.5 * len(text.encode("utf-8"))


def test_texts_an_earlier_index_kept_in_base85_are_still_read(
    tmp_path: Path, fake_embedder: FakeEmbeddings
) -> None:
    store = _two_articles(tmp_path, fake_embedder)
    packed = base64.b85encode(zlib.compress(WEATHER.encode("utf-8"), 9)).decode("ascii")
    store.texts.collection.delete(ids=["weather"])
    store.texts.collection.add(ids=["weather"], embeddings=[[1.0]],
                               metadatas=[{"text_zlib_b85": packed}])
    again = _store(tmp_path)
    assert again.texts.get(["weather", "lithium"]) == {"weather": WEATHER, "lithium": LITHIUM}


def test_texts_stay_out_of_the_full_text_index_and_come_back_whole(
    tmp_path: Path, fake_embedder: FakeEmbeddings
) -> None:
    store = _two_articles(tmp_path, fake_embedder)
    assert _full_text_rows(tmp_path) == 0
    assert store.articles.get(include=["documents"])["documents"] == [None, None]
    # A new store on the same files reads them as a new process would.
    again = _store(tmp_path)
    assert again.get_articles(["weather"])["weather"].text == WEATHER
    assert {a: t for a, _, t in again.iter_articles()} == {"lithium": LITHIUM, "weather": WEATHER}
    hit = again.dense_search(fake_embedder.embed_query("refining plants near ports"), 1)[0]
    assert hit.text == LITHIUM[hit.start : hit.end] and hit.text
    assert [a for a, _ in again.article_keyword_search("refining", 3)] == ["lithium"]

    again.remove_article("weather")
    assert again.texts.get(["weather", "lithium"]) == {"lithium": LITHIUM}
    again.reset()
    assert again.texts.get(["lithium"]) == {}


def test_an_index_that_kept_texts_as_documents_still_reads_and_is_rewritten_cleanly(
    tmp_path: Path, fake_embedder: FakeEmbeddings
) -> None:
    store = _two_articles(tmp_path, fake_embedder)
    # As an earlier version kept it: the text as the registry entry's document.
    store.texts.remove(["lithium"])
    store.articles.update(ids=["lithium"], embeddings=[[1.0]], documents=[LITHIUM])
    earlier = _store(tmp_path)
    assert earlier.get_articles(["lithium"])["lithium"].text == LITHIUM
    assert dict((a, t) for a, _, t in earlier.iter_articles())["lithium"] == LITHIUM

    changed = _article("lithium", "Lithium prices fell in May.")
    _write(earlier, fake_embedder, changed)
    got = earlier.articles.get(ids=["lithium"], include=["documents"])
    assert got["documents"] == [None]  # the earlier text does not linger beside the new one
    assert _store(tmp_path).get_articles(["lithium"])["lithium"].text == changed.text

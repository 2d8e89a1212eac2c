"""Store, ingest and answers on a real `chroma run` server as well as embedded, and two
machines (two data dirs) sharing one server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from bot.factory import Dossier
from bot.settings import load_settings
from index.chunking import chunk_article
from index.embeddings import SentenceEmbeddings
from index.errors import EmbeddingModelMismatch
from index.keyword import KeywordIndex
from index.models import Article
from tests.support import PROJECT, SEED
from tests.support.chroma_server import ChromaServer
from tests.support.fakes import FakeEmbeddings

pytestmark = pytest.mark.slow

STORMS = "Storms hit the coast on Monday. Rain fell for three days.\n\nFlood warnings stayed up."
MARKETS = "Markets rose on Tuesday after the jobs report. Investors cheered the wage figures."
HARVEST = "Farmers began the wheat harvest early. Dry weather shortened the growing season."
VOLCANO = "A volcano erupted near Grindavik overnight. Ash closed the airport at Keflavik."


def _unique_collection() -> str:
    """Tests share the session's server: each keeps to collections of its own."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["embedded", "server"])
def store_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    """The `store` settings for an embedded Chroma, or for the session's Chroma server."""
    if request.param == "embedded":
        return {}
    server: ChromaServer = request.getfixturevalue("chroma_server")
    return {"chroma_url": server.url, "collection": _unique_collection()}


def _dossier(data_dir: Path, store: dict[str, str], embedder: SentenceEmbeddings) -> Dossier:
    return Dossier(load_settings(data_dir=data_dir, store=store), embedder=embedder)


def _news(folder: Path) -> Path:
    folder.mkdir()
    (folder / "storms.md").write_text(f"---\ntitle: Storms\nauthor: A. Writer\n---\n{STORMS}\n")
    (folder / "markets.txt").write_text(f"Markets\n\n{MARKETS}\n")
    (folder / "harvest.txt").write_text(f"Harvest\n\n{HARVEST}\n")
    return folder


def _assert_keyword_index_in_sync(dossier: Dossier) -> None:
    """The keyword index saved in this data dir holds exactly Chroma's passages, tagged
    with the store's generation."""
    saved = KeywordIndex.load(dossier.store.keyword_dir)
    assert saved is not None and saved.generation == dossier.store.generation
    assert sorted(saved.ids) == sorted(pid for pid, _ in dossier.store.iter_passages())


def _assert_verbatim(dossier: Dossier, citations: list[dict[str, Any]]) -> None:
    articles = dossier.store.get_articles([c["article"]["id"] for c in citations])
    for c in citations:
        assert articles[c["article"]["id"]].text[c["start"] : c["end"]] == c["quote"]


def test_ingest_update_prune_and_answer(
    store_settings: dict[str, str], isolated: Path, tmp_path: Path, embedder: SentenceEmbeddings
) -> None:
    news = _news(tmp_path / "news")
    corpus = [PROJECT / "corpus", news]
    dossier = _dossier(isolated, store_settings, embedder)
    first = dossier.ingestor().run(corpus)
    assert (first.added, first.skipped) == (4, [])
    if store_settings:  # server mode keeps nothing of Chroma's in the data dir
        assert not dossier.settings.chroma_path.exists()

    calls = embedder.calls
    again = dossier.ingestor().run(corpus)
    assert (again.added, again.updated, again.unchanged, again.embedded) == (0, 0, 4, 0)
    assert embedder.calls == calls and again.passages == first.passages

    (news / "storms.md").write_text("---\ntitle: Storms\n---\nA calm week followed the storm.\n")
    (news / "markets.txt").unlink()
    updated = dossier.ingestor().run(corpus, prune=True)
    assert (updated.added, updated.updated, updated.unchanged, updated.removed) == (0, 1, 2, 1)
    records = dossier.store.records()
    assert sorted(r.title for r in records.values()) == [
        "Harvest", "Mexico and Canada Plan Joint Action on Critical Minerals", "Storms",
    ]
    [storms] = [r.id for r in records.values() if r.title == "Storms"]
    ids = dossier.store.passages.get(where={"article_id": storms})["ids"]
    stored = dossier.store.get_passages(ids)  # texts cut from the article
    # no orphan left
    assert [p.text for p in stored.values()] == ["A calm week followed the storm."]
    _assert_keyword_index_in_sync(dossier)

    answer = dossier.answerer.ask("what are the obstacles?").to_json()
    assert answer["answered"] is True
    quotes = " ".join(c["quote"] for c in answer["citations"])
    assert "Infrastructure gaps also pose a challenge." in quotes
    _assert_verbatim(dossier, answer["citations"])
    harvest = dossier.answerer.ask("When did the wheat harvest begin?").to_json()
    assert harvest["answered"] and harvest["citations"][0]["article"]["title"] == "Harvest"


def test_store_refuses_another_model_and_rebuilds_a_keyword_index_left_stale(
    store_settings: dict[str, str], isolated: Path, fake_embedder: FakeEmbeddings
) -> None:
    dossier = _dossier(isolated, store_settings, fake_embedder)
    dossier.store.check_model(fake_embedder.dimension)
    storms = Article(id="storms", title="Storms", text=STORMS)
    markets = Article(id="markets", title="Markets", text=MARKETS)
    store = dossier.store
    for article in (storms, markets):
        chunks = chunk_article(article, fake_embedder.count_tokens, max_tokens=12)
        if article is storms:
            store.begin_write()
            store.replace_article(article, chunks, fake_embedder.encode([c.text for c in chunks]))
            store.finish_write()
        else:  # a writer that dies after changing Chroma, before saving the keyword index
            store.begin_write()
            store.replace_article(article, chunks, fake_embedder.encode([c.text for c in chunks]))
    reopened = _dossier(isolated, store_settings, fake_embedder)
    assert any(pid.startswith("markets:") for pid, _ in reopened.store.keyword_search("jobs", 3))
    _assert_keyword_index_in_sync(reopened)

    other = Dossier(load_settings(data_dir=isolated, store=store_settings),
                    embedder=FakeEmbeddings(dimension=16))
    with pytest.raises(EmbeddingModelMismatch, match="--rebuild"):
        other.ingestor()
    other.ingestor(rebuild=True)
    assert other.store.count() == 0 and other.store.records() == {}


def test_cli_ask_json_answers_from_a_chroma_server(
    chroma_server: ChromaServer, tmp_path: Path, embedder: SentenceEmbeddings
) -> None:
    """`dossier ask --json` on a machine that has never ingested: the server has it all."""
    collection = _unique_collection()
    store = {"chroma_url": chroma_server.url, "collection": collection}
    ingested = _dossier(tmp_path / "ingester", store, embedder)
    assert ingested.ingestor().run([PROJECT / "corpus"]).added == 1

    fresh = tmp_path / "asker"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}
    env.update(PYTHONPATH=str(PROJECT), HF_HUB_OFFLINE="1", DOSSIER_DATA_DIR=str(fresh),
               DOSSIER_STORE__CHROMA_URL=chroma_server.url,
               DOSSIER_STORE__COLLECTION=collection)
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "ask", "what are the obstacles?", "--json"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["answered"] is True and answer["mode"] == "extractive"
    quotes = " ".join(c["quote"] for c in answer["citations"])
    for expected in ("regulatory systems", "Infrastructure gaps", "workforce development"):
        assert expected in quotes
    seed = SEED.read_text(encoding="utf-8")
    assert all(c["quote"] in seed for c in answer["citations"])
    _assert_verbatim(ingested, answer["citations"])
    asker = _dossier(fresh, store, embedder)
    assert not asker.settings.chroma_path.exists()  # nothing embedded on the asking machine
    _assert_keyword_index_in_sync(asker)  # built there from the server's passages


def _machine(name: str, tmp_path: Path, server: ChromaServer, collection: str) -> Dossier:
    """One machine: a data dir of its own (its keyword index lives there), a shared server."""
    settings = load_settings(data_dir=tmp_path / name,
                             store={"chroma_url": server.url, "collection": collection})
    return Dossier(settings, embedder=FakeEmbeddings())


def test_machine_b_sees_what_machine_a_ingested(chroma_server: ChromaServer,
                                                tmp_path: Path) -> None:
    collection = _unique_collection()
    a = _machine("a", tmp_path, chroma_server, collection)
    b = _machine("b", tmp_path, chroma_server, collection)
    news = _news(tmp_path / "news")
    a.ingestor().run([news], corpus_root=news)

    assert {r.title for r in b.store.records().values()} == {"Storms", "Markets", "Harvest"}
    [(top, _), *_] = b.store.keyword_search("flood warnings", 3)
    assert top.startswith("storms")
    _assert_keyword_index_in_sync(b)
    old_generation = b.store.generation

    assert b.retriever.retrieve("wheat harvest")  # B's passage table is built
    (news / "volcano.txt").write_text(f"Volcano\n\n{VOLCANO}\n")
    with b.store.reading():  # a question of B's under way while A writes ...
        assert a.ingestor().run([news], corpus_root=news).added == 1
        assert b.store.generation == old_generation  # ... holds to the generation it began with
    # B's next question reads the new generation, and reloads its passage table.
    assert b.store.generation != old_generation
    table = b.store.passage_table()
    assert table.generation == b.store.generation
    assert any(pid.startswith("volcano") for pid in table.ids)

    # B's own copy of the keyword index is of the generation before A's write ...
    stale = KeywordIndex.load(b.store.keyword_dir)
    assert stale is not None and stale.generation == old_generation != b.store.generation
    assert not any(pid.startswith("volcano") for pid in stale.ids)
    # ... so B's next keyword search rebuilds it from Chroma, and finds A's new article.
    [(top, _), *_] = b.store.keyword_search("Grindavik volcano", 3)
    assert top.startswith("volcano")
    _assert_keyword_index_in_sync(b)
    answer = b.answerer.ask("Where did the volcano erupt?")
    assert answer.answered and answer.citations[0].article.title == "Volcano"

    # A third machine, as a separate `dossier articles --json` process, sees it too.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}
    env.update(PYTHONPATH=str(PROJECT), DOSSIER_DATA_DIR=str(tmp_path / "c"),
               DOSSIER_STORE__CHROMA_URL=chroma_server.url,
               DOSSIER_STORE__COLLECTION=collection)
    listed = subprocess.run([sys.executable, "-m", "bot.cli", "articles", "--json"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert listed.returncode == 0, listed.stderr
    assert sorted(r["title"] for r in json.loads(listed.stdout)) == [
        "Harvest", "Markets", "Storms", "Volcano",
    ]


def test_a_keyword_index_rebuilt_during_a_write_is_not_kept(chroma_server: ChromaServer,
                                                            tmp_path: Path) -> None:
    """B searches while A is half-way through a write: B's index, built from half of it,
    must not outlive the write (finish_write seals it with a generation of its own)."""
    collection = _unique_collection()
    a = _machine("a", tmp_path, chroma_server, collection)
    b = _machine("b", tmp_path, chroma_server, collection)
    embedder = a.embedder
    a.store.check_model(embedder.dimension)

    def write(article: Article) -> None:
        chunks = chunk_article(article, embedder.count_tokens, max_tokens=40)
        a.store.replace_article(article, chunks, embedder.encode([c.text for c in chunks]))

    a.store.begin_write()
    write(Article(id="storms", title="Storms", text=STORMS))
    assert b.store.keyword_search("flood", 3)  # B rebuilt from the half-done write
    write(Article(id="volcano", title="Volcano", text=VOLCANO))
    a.store.finish_write()

    [(top, _), *_] = b.store.keyword_search("Grindavik volcano", 3)
    assert top.startswith("volcano:")
    _assert_keyword_index_in_sync(b)

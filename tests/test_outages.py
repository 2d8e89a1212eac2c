"""Outages: a stopped Chroma server is one clear line, and is survived without a restart;
a dead LLM leaves the extractive answer, with a note."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.factory import Dossier
from bot.settings import load_settings
from index.embeddings import SentenceEmbeddings
from index.errors import StoreUnavailable
from index.keyword import KeywordIndex
from tests.support import PROJECT
from tests.support.chroma_server import ChromaServer, free_port
from tests.support.fakes import FakeEmbeddings

pytestmark = pytest.mark.slow

QUESTION = "what are the obstacles?"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ChromaServer]:
    """A Chroma server of this test's own, which it may stop and start again."""
    with ChromaServer(tmp_path / "chroma-server") as running:
        yield running


def _dossier(data_dir: Path, server: ChromaServer, embedder: SentenceEmbeddings) -> Dossier:
    settings = load_settings(data_dir=data_dir,
                             store={"chroma_url": server.url, "collection": "outages"})
    return Dossier(settings, embedder=embedder)


def _cli(args: list[str], data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, timeout=300,
        env={**clean, "PYTHONPATH": str(PROJECT), "HF_HUB_OFFLINE": "1",
             "DOSSIER_DATA_DIR": str(data_dir), **env},
    )


def _assert_one_clear_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("dossier: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr


def test_cli_with_the_server_stopped_prints_one_line_and_exits_1(
    server: ChromaServer, isolated: Path
) -> None:
    _dossier(isolated, server, FakeEmbeddings()).ingestor().run([PROJECT / "corpus"])
    server.stop()
    env = {"DOSSIER_STORE__CHROMA_URL": server.url, "DOSSIER_STORE__COLLECTION": "outages"}
    asked = _cli(["ask", QUESTION, "--json"], isolated, **env)
    _assert_one_clear_line(asked, "Chroma", server.url)
    ingested = _cli(["ingest", str(PROJECT / "corpus"), "--json"], isolated, **env)
    _assert_one_clear_line(ingested, "Chroma", server.url)


def test_ask_raises_store_unavailable_then_recovers_by_itself(
    server: ChromaServer, isolated: Path
) -> None:
    dossier = _dossier(isolated, server, FakeEmbeddings())
    dossier.ingestor().run([PROJECT / "corpus"])
    before = dossier.answerer.ask(QUESTION).to_json()
    assert before["answered"]

    server.stop()
    for attempt in (dossier.answerer.ask, dossier.conversation().ask):
        with pytest.raises(StoreUnavailable, match="unavailable") as raised:
            attempt(QUESTION)
        assert not isinstance(raised.value, httpx.HTTPError)
        assert isinstance(raised.value.__cause__, httpx.TransportError)  # kept for the log
    with pytest.raises(StoreUnavailable):
        dossier.store.records()

    server.start()  # same port, same data; the same Dossier, never rebuilt
    assert dossier.answerer.ask(QUESTION).to_json() == before


def test_a_dossier_made_while_the_server_is_down_works_once_it_is_up(
    tmp_path: Path, isolated: Path
) -> None:
    server = ChromaServer(tmp_path / "late-server", port=free_port())
    try:
        dossier = _dossier(isolated, server, FakeEmbeddings())
        with pytest.raises(StoreUnavailable, match=server.url):
            dossier.answerer.ask(QUESTION)
        server.start()
        assert dossier.ingestor().run([PROJECT / "corpus"]).added == 1
        assert dossier.answerer.ask(QUESTION).answered
    finally:
        server.close()


class _OutageDuringIngest(FakeEmbeddings):
    """Stops the server the first time passages are embedded for writing: the ingest has
    begun its write (a new generation is set), and its first store write meets the outage."""

    def __init__(self, server: ChromaServer) -> None:
        super().__init__()
        self.server: ChromaServer | None = server

    def encode(self, texts: Sequence[str]) -> Any:
        if self.server is not None and len(texts) > 1:
            self.server.stop()
            self.server = None
        return super().encode(texts)


def test_an_outage_mid_ingest_is_redone_by_the_next_ingest(
    server: ChromaServer, isolated: Path, tmp_path: Path
) -> None:
    news = tmp_path / "news"
    news.mkdir()
    for n in range(5):
        (news / f"story-{n}.txt").write_text(
            f"River story {n}\n\nThe river at town {n} rose two metres after the rain. "
            f"Engineers closed bridge number {n} until the water falls again.\n"
        )
    dossier = _dossier(isolated, server, _OutageDuringIngest(server))
    with pytest.raises(StoreUnavailable):
        dossier.ingestor().run([news], corpus_root=news)
    assert not server.running

    server.start()
    report = dossier.ingestor().run([news], corpus_root=news)
    assert (report.added, report.unchanged) == (5, 0)
    saved = KeywordIndex.load(dossier.store.keyword_dir)
    assert saved is not None and saved.generation == dossier.store.generation
    assert sorted(saved.ids) == sorted(pid for pid, _ in dossier.store.iter_passages())


def test_llm_down_gives_the_extractive_answer_with_a_note(
    isolated: Path, embedder: SentenceEmbeddings
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    llm = {"provider": "openai", "base_url": dead, "model": "m", "timeout_s": 2.0}
    dossier = Dossier(load_settings(data_dir=isolated, llm=llm), embedder=embedder)
    dossier.ingestor().run([PROJECT / "corpus"])
    answer = dossier.answerer.ask(QUESTION)
    assert answer.mode == "extractive" and answer.answered and answer.citations
    assert answer.note and "language model could not be used" in answer.note
    quotes = " ".join(c.quote for c in answer.citations)
    assert "Infrastructure gaps also pose a challenge." in quotes

    asked = _cli(["ask", QUESTION, "--json"], isolated, DOSSIER_LLM__PROVIDER="openai",
                 DOSSIER_LLM__BASE_URL=dead, DOSSIER_LLM__MODEL="m", DOSSIER_LLM__TIMEOUT_S="2")
    assert asked.returncode == 0, asked.stderr
    printed = json.loads(asked.stdout)
    assert printed["mode"] == "extractive" and printed["answered"] and printed["citations"]
    assert "language model could not be used" in printed["note"]

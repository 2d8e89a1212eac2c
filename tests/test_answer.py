"""Answers over the seed article with the real model: verified quotes, misses, LLM mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.factory import Dossier
from bot.prompts import CANNOT_ANSWER
from bot.quotes import verify_quote
from bot.settings import Settings, load_settings
from index.embeddings import SentenceEmbeddings
from tests.support import PROJECT
from tests.support.llm_server import ScriptedLLMServer, prompt_text

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceEmbeddings) -> Path:
    """The seed corpus ingested once for the module."""
    folder = tmp_path_factory.mktemp("answers")
    dossier = Dossier(load_settings(data_dir=folder / "data"), embedder=embedder)
    report = dossier.ingestor().run([PROJECT / "corpus"], corpus_root=PROJECT / "corpus")
    assert report.added >= 1
    return folder / "data"


def _dossier(data_dir: Path, embedder: SentenceEmbeddings, **overrides: Any) -> Dossier:
    return Dossier(load_settings(data_dir=data_dir, **overrides), embedder=embedder)


def _assert_verbatim(dossier: Dossier, answer_json: dict[str, Any]) -> None:
    articles = dossier.store.get_articles([c["article"]["id"] for c in answer_json["citations"]])
    for c in answer_json["citations"]:
        article = articles[c["article"]["id"]]
        assert article.text[c["start"] : c["end"]] == c["quote"]
        assert verify_quote(article, c["start"], c["end"], c["quote"])


def test_obstacles_are_answered_with_the_challenges_ahead_sentences(
    data_dir: Path, embedder: SentenceEmbeddings
) -> None:
    dossier = _dossier(data_dir, embedder)
    answer = dossier.answerer.ask("what are the obstacles?").to_json()
    assert answer["answered"] is True and answer["mode"] == "extractive"
    quotes = " ".join(c["quote"] for c in answer["citations"])
    for expected in ("regulatory systems", "Infrastructure gaps", "workforce development"):
        assert expected in quotes
    assert "[1]" in answer["answer"]
    assert answer["citations"][0]["article"]["title"] == (
        "Mexico and Canada Plan Joint Action on Critical Minerals"
    )
    assert set(answer) == {"question", "answer", "mode", "answered", "citations"}
    assert set(answer["citations"][0]) == {"n", "quote", "start", "end", "article", "link"}
    assert set(answer["citations"][0]["article"]) == {
        "id", "title", "author", "published", "url", "path",
    }
    _assert_verbatim(dossier, answer)


@pytest.mark.parametrize(
    "question",
    [
        "What is the current price of lithium per tonne?",
        "Who won the football world cup final?",
        "How do I bake sourdough bread at home?",
    ],
)
def test_questions_the_article_does_not_cover_are_not_answered(
    data_dir: Path, embedder: SentenceEmbeddings, question: str
) -> None:
    answer = _dossier(data_dir, embedder).answerer.ask(question)
    assert answer.answered is False
    assert answer.citations == []
    assert answer.text == CANNOT_ANSWER


@pytest.fixture
def llm() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer() as server:
        yield server


def _llm_dossier(data_dir: Path, embedder: SentenceEmbeddings, server: ScriptedLLMServer,
                 timeout_s: float = 5.0) -> Dossier:
    return _dossier(data_dir, embedder, llm={
        "provider": "openai", "base_url": server.base_url, "model": "m", "timeout_s": timeout_s,
    })


def test_an_invented_llm_quote_is_never_shown_and_a_real_one_is(
    data_dir: Path, embedder: SentenceEmbeddings, llm: ScriptedLLMServer
) -> None:
    llm.enqueue(
        "ANSWER: Infrastructure gaps are a challenge [1]. Mexico banned all mining [2].\n"
        "QUOTES:\n"
        '[1] "Infrastructure gaps also pose a challenge."\n'
        '[2] "Mexico has banned all foreign mining companies from operating."\n'
    )
    dossier = _llm_dossier(data_dir, embedder, llm)
    answer = dossier.answerer.ask("what are the obstacles?")
    assert answer.mode == "llm" and answer.answered
    quotes = [c.quote for c in answer.citations]
    assert quotes == ["Infrastructure gaps also pose a challenge."]
    assert "banned" not in answer.text
    assert answer.text == "Infrastructure gaps are a challenge [1]."
    _assert_verbatim(dossier, answer.to_json())
    prompt = prompt_text(llm.last_chat_request.messages)
    assert "Challenges Ahead" in prompt and "<passages>" in prompt


def test_llm_errors_fall_back_to_the_extractive_answer_with_a_note(
    data_dir: Path, embedder: SentenceEmbeddings, llm: ScriptedLLMServer
) -> None:
    llm.fail_with(status=500, times=5)
    answer = _llm_dossier(data_dir, embedder, llm).answerer.ask("what are the obstacles?")
    assert answer.mode == "extractive" and answer.answered and answer.citations
    assert answer.note and "language model" in answer.note


def test_a_silent_llm_falls_back_within_the_timeout(
    data_dir: Path, embedder: SentenceEmbeddings, llm: ScriptedLLMServer
) -> None:
    llm.hang(seconds=30)
    answer = _llm_dossier(data_dir, embedder, llm, timeout_s=1.0).answerer.ask(
        "what are the obstacles?"
    )
    assert answer.mode == "extractive" and answer.citations
    assert answer.note and "timed out" in answer.note


def test_settings_reach_the_llm_client(
    data_dir: Path, embedder: SentenceEmbeddings, llm: ScriptedLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOSSIER_LLM_API_KEY", "sk-test-key")
    llm.enqueue(f"ANSWER: {CANNOT_ANSWER}")
    settings: Settings = load_settings(
        data_dir=data_dir,
        llm={"provider": "openai", "base_url": llm.base_url, "model": "tiny-model"},
    )
    Dossier(settings, embedder=embedder).answerer.ask("what are the obstacles?")
    request = llm.last_chat_request
    assert request.header("authorization") == "Bearer sk-test-key"
    assert request.json["model"] == "tiny-model"

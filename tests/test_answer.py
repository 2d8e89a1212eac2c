"""Answers over the seed article with the real model: verified quotes, misses, LLM mode."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.factory import Dossier
from bot.models import Answer
from bot.prompts import CANNOT_ANSWER
from bot.quotes import verify_quote
from bot.settings import Settings, load_settings
from index.embeddings import SentenceEmbeddings
from tests.support import PROJECT
from tests.support.llm_server import ScriptedLLMServer, ToolCall, prompt_text

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


GAPS = "Infrastructure gaps also pose a challenge."
WORKFORCE = "Another key issue is workforce development."
STRUCTURED = json.dumps({
    "quotes": [{"passage": 1, "quote": GAPS}, {"passage": 1, "quote": WORKFORCE},
               {"passage": 2, "quote": "Mexico has banned all foreign mining companies."}],
    "answer": "Infrastructure gaps are a challenge [1]. Workforce development is another "
              "key issue [1]. Mexico banned foreign mining [2].",
})


def _structured_dossier(data_dir: Path, embedder: SentenceEmbeddings,
                        server: ScriptedLLMServer, output: str) -> Dossier:
    return _dossier(data_dir, embedder, llm={
        "provider": "openai", "base_url": server.base_url, "model": "m", "output": output,
    })


@pytest.mark.parametrize("output", ["json_schema", "tool_calling"])
def test_a_structured_answer_is_asked_for_and_checked_like_any_other(
    data_dir: Path, embedder: SentenceEmbeddings, llm: ScriptedLLMServer, output: str
) -> None:
    llm.enqueue(STRUCTURED if output == "json_schema" else ToolCall("cited_answer", STRUCTURED))
    dossier = _structured_dossier(data_dir, embedder, llm, output)
    answer = dossier.answerer.ask("what are the obstacles?")
    assert answer.mode == "llm" and answer.answered
    assert answer.text == ("Infrastructure gaps are a challenge [1]. "
                           "Workforce development is another key issue [2].")
    assert [c.quote for c in answer.citations] == [GAPS, WORKFORCE]
    _assert_verbatim(dossier, answer.to_json())
    body = llm.last_chat_request.json
    if output == "json_schema":
        assert body["response_format"]["type"] == "json_schema"
        schema = body["response_format"]["json_schema"]["schema"]
    else:
        assert body["tool_choice"]["function"]["name"] == "cited_answer"
        schema = body["tools"][0]["function"]["parameters"]
    assert list(schema["properties"]) == ["quotes", "answer"]
    # Passage numbers are bounded to the passages the prompt holds.
    shown = prompt_text(body["messages"]).count("<passage n=")
    number = schema["properties"]["quotes"]["items"]["properties"]["passage"]
    assert shown >= 1 and (number["minimum"], number["maximum"]) == (1, shown)


def test_a_server_that_ignores_the_schema_and_writes_inline_quotes_is_still_read(
    data_dir: Path, embedder: SentenceEmbeddings, llm: ScriptedLLMServer
) -> None:
    # Before: only the QUOTES: protocol was read, so this whole reply was dropped.
    llm.enqueue(f'The partnership faces obstacles [1]. "{GAPS}" [1]')
    dossier = _structured_dossier(data_dir, embedder, llm, "json_schema")
    answer = dossier.answerer.ask("what are the obstacles?")
    assert answer.mode == "llm" and answer.note is None
    # The quoted sentence stands; the claim its quote does not carry ("obstacles",
    # "partnership") is dropped, as any unsupported prose is.
    assert answer.text == f'"{GAPS}" [1]'
    assert [c.quote for c in answer.citations] == [GAPS]
    _assert_verbatim(dossier, answer.to_json())


def test_the_answer_grows_one_verified_sentence_at_a_time(
    data_dir: Path, embedder: SentenceEmbeddings, llm: ScriptedLLMServer
) -> None:
    llm.enqueue(STRUCTURED)
    llm.chunk_delay_s = 0.02
    dossier = _structured_dossier(data_dir, embedder, llm, "json_schema")
    seen: list[Answer] = []
    answer = dossier.answerer.ask("what are the obstacles?", on_progress=seen.append)
    assert [s.text for s in seen] == [
        "Infrastructure gaps are a challenge [1].",
        "Infrastructure gaps are a challenge [1]. Workforce development is another key "
        "issue [2].",
    ]
    assert seen[-1].text == answer.text and seen[-1].citations == answer.citations
    assert all("banned" not in s.text for s in seen)

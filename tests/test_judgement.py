"""Answer judgement on a corpus of many articles: the seed plus the first 100 benchmark
articles, with the real model, real Chroma, the CLI and the bot over the Bot API test server.

Each test is a case a new user met: answers to questions the articles don't answer, quotes
in reply to small talk, lost follow-ups, answer lines that missed the answer.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import prompts
from bot.factory import Dossier
from bot.settings import load_settings
from index.embeddings import SentenceEmbeddings
from tests.support import PROJECT, REALTIMEQA, SEED
from tests.support.bot_harness import running_bot
from tests.support.telegram_server import SentMessage, TelegramTestServer

pytestmark = pytest.mark.slow

OBSTACLES = "what are the obstacles to Mexico Canada critical minerals cooperation?"
WORRIES = "which of them worries investors?"
INVESTORS = "have raised concerns among some foreign investors"
USER, GROUP = 1001, -1001000000007


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceEmbeddings) -> Path:
    """A data dir holding the seed and the first 100 benchmark articles; tests only read."""
    folder = tmp_path_factory.mktemp("many")
    corpus = folder / "corpus"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    articles = folder / "first-100.jsonl"
    with gzip.open(REALTIMEQA / "articles.jsonl.gz", "rt") as source:
        lines = [line for line in source if line.strip()][:100]
    articles.write_text("".join(lines), encoding="utf-8")
    dossier = _dossier(folder, embedder)
    report = dossier.ingest([corpus])
    report_jsonl = dossier.ingest([articles])
    assert report.added == 1 and report_jsonl.added == 100, (report, report_jsonl)
    return folder


def _dossier(folder: Path, embedder: SentenceEmbeddings, **telegram: str) -> Dossier:
    settings = load_settings(data_dir=folder / "data", corpus={"path": folder / "corpus"},
                             telegram=telegram or None)
    return Dossier(settings, embedder=embedder)


def test_a_price_the_articles_do_not_state_is_refused(
    many: Path, embedder: SentenceEmbeddings
) -> None:
    answer = _dossier(many, embedder).answerer.ask("what is the price of lithium per tonne?")
    assert not answer.answered
    assert answer.citations == []
    assert answer.text == prompts.CANNOT_ANSWER


@pytest.mark.parametrize(("message", "kind"), [
    ("thanks", "thanks"), ("hi", "greeting"), ("who are you?", "identity"), ("help", "help"),
])
def test_small_talk_gets_a_friendly_line_and_never_quotes(
    many: Path, embedder: SentenceEmbeddings, message: str, kind: str
) -> None:
    answer = _dossier(many, embedder).answerer.ask(message)
    assert answer.citations == []
    assert answer.text == prompts.SMALL_TALK[kind].format(count=101, s="s")
    assert answer.text != prompts.CANNOT_ANSWER


def test_a_follow_up_stays_with_the_articles_of_the_previous_answer(
    many: Path, embedder: SentenceEmbeddings
) -> None:
    conversation = _dossier(many, embedder).conversation()
    first = conversation.ask(OBSTACLES)
    assert first.answered and first.citations[0].article.title.startswith("Mexico and Canada")
    follow_up = conversation.ask(WORRIES)
    assert follow_up.answered
    assert INVESTORS in follow_up.citations[0].quote


def test_where_did_he_die_follows_the_man_the_answer_was_about(
    many: Path, embedder: SentenceEmbeddings
) -> None:
    conversation = _dossier(many, embedder).conversation()
    assert conversation.ask("what happened to Bob Saget?").answered
    follow_up = conversation.ask("and where did he die?")
    assert follow_up.answered
    assert "Saget" in follow_up.citations[0].article.title
    assert "Ritz-Carlton Orlando" in " ".join(c.quote for c in follow_up.citations)


def test_a_new_question_is_not_forced_into_the_old_topic(
    many: Path, embedder: SentenceEmbeddings
) -> None:
    conversation = _dossier(many, embedder).conversation()
    assert conversation.ask(OBSTACLES).answered
    answer = conversation.ask("Which diet was named the best diet for 2022?")
    assert answer.answered
    assert "diet" in answer.citations[0].article.title.lower()


def test_the_answer_line_states_the_answer(many: Path, embedder: SentenceEmbeddings) -> None:
    answer = _dossier(many, embedder).answerer.ask("Which diet was named the best diet for 2022?")
    assert answer.answered
    assert answer.text.startswith("Mediterranean diet [1].")
    assert "Mediterranean" in answer.citations[0].quote


@pytest.mark.parametrize("question", [
    "¿cuáles son los obstáculos a la cooperación entre México y Canadá en minerales críticos?",
    "quels sont les obstacles à la coopération entre le Mexique et le Canada sur les minéraux ?",
])
def test_a_question_in_another_language_is_invited_in_english(
    many: Path, embedder: SentenceEmbeddings, question: str
) -> None:
    answerer = _dossier(many, embedder).answerer
    answer = answerer.ask(question)
    assert not answer.answered and answer.citations == []
    assert answer.text == prompts.NOT_ENGLISH
    assert answerer.ask(OBSTACLES).answered  # the same question in English is answered


def test_chat_json_keeps_the_conversation_between_lines(many: Path) -> None:
    env = {**os.environ, "DOSSIER_DATA_DIR": str(many / "data"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "--json"], input=f"{OBSTACLES}\n{WORRIES}\n",
        capture_output=True, text=True, timeout=300, cwd=PROJECT, env=env,
    )
    assert done.returncode == 0, done.stderr
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert first["question"] == OBSTACLES and first["answered"]
    assert second["question"] == WORRIES and second["answered"]
    assert INVESTORS in second["citations"][0]["quote"]
    assert set(second) >= {"question", "answer", "mode", "answered", "citations"}


# ---- the same cases in Telegram ----------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[TelegramTestServer]:
    with TelegramTestServer() as srv:
        srv.add_user(USER)
        srv.add_group(GROUP)
        yield srv


def _replying_to(message_id: int) -> object:
    def predicate(sent: SentMessage) -> bool:
        return sent.reply_to_message_id == message_id
    return predicate


def _telegram(many: Path, embedder: SentenceEmbeddings, server: TelegramTestServer) -> Dossier:
    return _dossier(many, embedder, api_base_url=server.base_url,
                    file_base_url=server.base_file_url)


async def test_in_a_group_a_mention_follows_up_like_a_reply(
    many: Path, embedder: SentenceEmbeddings, server: TelegramTestServer, tmp_path: Path
) -> None:
    bot = server.bot_username
    async with running_bot(_telegram(many, embedder, server), server, tmp_path / "p"):
        first = server.add_group_message(f"@{bot} {OBSTACLES}", chat_id=GROUP)
        await server.wait_for_async(_replying_to(first["message"]["message_id"]), chat_id=GROUP)
        mention = server.add_group_message(f"hey @{bot} {WORRIES}", chat_id=GROUP)
        (reply,) = await server.wait_for_async(
            _replying_to(mention["message"]["message_id"]), chat_id=GROUP
        )
    assert INVESTORS in (reply.text or "")


async def test_small_talk_in_telegram_gets_no_quotes(
    many: Path, embedder: SentenceEmbeddings, server: TelegramTestServer, tmp_path: Path
) -> None:
    async with running_bot(_telegram(many, embedder, server), server, tmp_path / "p"):
        replies = []
        for text in ("thanks", "hi"):
            asked = server.add_private_message(text, user_id=USER)["message"]["message_id"]
            (reply,) = await server.wait_for_async(_replying_to(asked), chat_id=USER)
            replies.append(reply)
    for reply in replies:
        assert not any(e["type"] == "blockquote" for e in reply.entities)
        assert prompts.CANNOT_ANSWER not in (reply.text or "")
    assert "welcome" in (replies[0].text or "") and "Hello" in (replies[1].text or "")


async def test_a_price_the_articles_do_not_state_is_refused_in_telegram(
    many: Path, embedder: SentenceEmbeddings, server: TelegramTestServer, tmp_path: Path
) -> None:
    async with running_bot(_telegram(many, embedder, server), server, tmp_path / "p"):
        asked = server.add_private_message("what is the price of lithium per tonne?",
                                           user_id=USER)["message"]["message_id"]
        (reply,) = await server.wait_for_async(_replying_to(asked), chat_id=USER)
    assert reply.text == prompts.CANNOT_ANSWER
    assert reply.entities == [] or not any(e["type"] == "blockquote" for e in reply.entities)

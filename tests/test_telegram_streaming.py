"""LLM answers streamed in Telegram: one message edited with verified sentences only, its
last edit the final answer (real bot over HTTP, Bot API test server, scripted LLM)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.factory import Dossier
from bot.prompts import LLM_UNVERIFIED_NOTE
from bot.settings import load_settings
from index.embeddings import SentenceEmbeddings
from tests.support.bot_harness import ingest_corpus, running_bot
from tests.support.llm_server import ScriptedLLMServer
from tests.support.telegram_server import SentMessage, TelegramTestServer

pytestmark = pytest.mark.slow

USER = 1001
GAPS = "Infrastructure gaps also pose a challenge."
WORKFORCE = "Another key issue is workforce development."
INVENTED = "Mexico has banned all foreign mining companies."
# Quotes first, then three sentences: the middle one rests on an invented quote.
REPLY = (
    f'QUOTES:\n[1] "{GAPS}"\n[2] "{INVENTED}"\n[1] "{WORKFORCE}"\n'
    "ANSWER: Infrastructure gaps are a challenge [1]. Mexico has banned foreign mining "
    "companies [2]. Workforce development is another key issue [1]."
)


@pytest.fixture(scope="module")
def seed_index(tmp_path_factory: pytest.TempPathFactory,
               embedder: SentenceEmbeddings) -> tuple[Path, Path]:
    return ingest_corpus(tmp_path_factory.mktemp("streaming"), embedder)


@pytest.fixture
def telegram() -> Iterator[TelegramTestServer]:
    with TelegramTestServer() as server:
        server.add_user(USER)
        yield server


@pytest.fixture
def llm() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer() as server:
        yield server


def _dossier(index: tuple[Path, Path], embedder: SentenceEmbeddings,
             telegram: TelegramTestServer, llm: ScriptedLLMServer) -> Dossier:
    corpus, data = index
    return Dossier(load_settings(
        data_dir=data, corpus={"path": corpus},
        telegram={"api_base_url": telegram.base_url, "file_base_url": telegram.base_file_url},
        llm={"provider": "openai", "base_url": llm.base_url, "model": "m", "timeout_s": 30},
    ), embedder=embedder)


def _answer_line(text: str | None) -> str:
    return (text or "").split("\n", 1)[0]


async def _ask(telegram: TelegramTestServer, question: str, done: str) -> SentMessage:
    """Ask, then wait until the reply's answer line shows `done` and its quotes follow."""
    asked = telegram.add_private_message(question, user_id=USER)["message"]["message_id"]

    def finished() -> bool:
        replies = [m for m in telegram.sent_messages(USER) if m.reply_to_message_id == asked]
        return bool(replies) and done in (replies[-1].text or "")

    await telegram.wait_until_async(finished, timeout=30)
    (reply,) = [m for m in telegram.sent_messages(USER) if m.reply_to_message_id == asked]
    return reply


async def test_edits_show_only_verified_sentences_and_end_on_the_final_answer(
    seed_index: tuple[Path, Path], embedder: SentenceEmbeddings,
    telegram: TelegramTestServer, llm: ScriptedLLMServer, tmp_path: Path,
) -> None:
    llm.enqueue(REPLY)
    llm.chunk_delay_s = 0.08  # about 5 s of writing: the first sentence shows well before
    dossier = _dossier(seed_index, embedder, telegram, llm)
    async with running_bot(dossier, telegram, tmp_path / "p"):
        reply = await _ask(telegram, "what are the obstacles?",
                           done="Workforce development is another key issue [2].")
    final = dossier.answerer.ask  # the same answer, asked again for comparison below
    llm.enqueue(REPLY)
    expected = final("what are the obstacles?").text
    views = [*reply.history, reply.text]
    assert len(views) >= 2  # shown, then edited
    for view in views:
        line = _answer_line(view)
        assert "banned" not in (view or "")  # the unverified sentence never appears
        assert expected.startswith(line)  # every edit is a verified prefix of the answer
    assert _answer_line(reply.text) == expected
    assert GAPS in (reply.text or "") and WORKFORCE in (reply.text or "")


async def test_with_nothing_verifiable_one_message_brings_the_extractive_answer(
    seed_index: tuple[Path, Path], embedder: SentenceEmbeddings,
    telegram: TelegramTestServer, llm: ScriptedLLMServer, tmp_path: Path,
) -> None:
    llm.enqueue(f'QUOTES:\n[1] "{INVENTED}"\nANSWER: Mexico banned foreign mining [1].')
    dossier = _dossier(seed_index, embedder, telegram, llm)
    async with running_bot(dossier, telegram, tmp_path / "p"):
        reply = await _ask(telegram, "what are the obstacles?", done=LLM_UNVERIFIED_NOTE[:40])
    assert reply.history == []  # nothing was shown before the final answer
    assert "banned" not in (reply.text or "")
    assert GAPS in (reply.text or "")

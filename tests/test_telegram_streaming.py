"""LLM answers streamed in Telegram: one message edited with verified sentences only, its
last edit the final answer (real bot over HTTP, Bot API test server, a scripted LLM and
the real SmolLM2 run by llama.cpp)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.factory import Dossier
from bot.models import Answer
from bot.prompts import LLM_UNVERIFIED_NOTE
from bot.quotes import verify_quote
from bot.settings import load_settings
from bot.telegram import render
from index.embeddings import SentenceEmbeddings
from tests.support import SEED
from tests.support.bot_harness import blockquote_bodies, ingest_corpus, running_bot
from tests.support.gguf import SMOLLM2_LOCAL
from tests.support.llm_server import ScriptedLLMServer
from tests.support.telegram_server import SentMessage, TelegramTestServer
from tests.support.telegram_server.text import render_text

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
             telegram: TelegramTestServer, llm: ScriptedLLMServer | dict[str, Any],
             **settings: Any) -> Dossier:
    """A Dossier on the test server answering with the scripted server or these settings."""
    corpus, data = index
    if isinstance(llm, ScriptedLLMServer):
        llm = {"provider": "openai", "base_url": llm.base_url, "model": "m", "timeout_s": 30}
    return Dossier(load_settings(
        data_dir=data, corpus={"path": corpus},
        telegram={"api_base_url": telegram.base_url, "file_base_url": telegram.base_file_url},
        llm=llm, **settings,
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


def _shown(html: str) -> str:
    """What a user sees of an HTML message (as the test server stores it)."""
    return render_text(html, "HTML")[0]


async def test_a_real_local_model_streams_only_verified_sentences(
    seed_index: tuple[Path, Path], embedder: SentenceEmbeddings,
    telegram: TelegramTestServer, gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # SmolLM2-135M invents freely: whatever it writes, an edit shows only sentences
    # released by the quote check, and the last edit is the answer the bot settled on.
    dossier = _dossier(seed_index, embedder, telegram,
                       {**SMOLLM2_LOCAL, "model_path": str(gguf)}, retrieval={"k": 2})
    answerer = dossier.answerer
    partials: list[Answer] = []
    finals: list[Answer] = []
    ask = answerer.ask

    def recorded(*args: Any, on_progress: Any = None, **kwargs: Any) -> Answer:
        """The real ask; every partial answer it reports and the answer it returns are kept."""
        def progress(partial: Answer) -> None:
            partials.append(partial)
            if on_progress is not None:
                on_progress(partial)
        finals.append(ask(*args, on_progress=progress, **kwargs))
        return finals[-1]

    monkeypatch.setattr(answerer, "ask", recorded)
    async with running_bot(dossier, telegram, tmp_path / "p"):
        asked = telegram.add_private_message("what are the obstacles?", user_id=USER)
        asked_id = asked["message"]["message_id"]

        def replies() -> list[SentMessage]:
            return [m for m in telegram.sent_messages(USER) if m.reply_to_message_id == asked_id]

        def final_shown() -> bool:
            sent = replies()
            return bool(finals and sent) and sent[-1].source_text == render.render_answer(
                finals[0])[0]

        await telegram.wait_until_async(final_shown, timeout=600)
    (reply,) = replies()
    (answer,) = finals
    assert answer.answered and answer.citations
    # The model's answer, or the extractive one with the note saying why.
    assert answer.mode == "llm" or (answer.mode == "extractive" and answer.note)
    articles = dossier.store.get_articles([c.article.id for a in [*partials, answer]
                                           for c in a.citations])
    for shown in [*partials, answer]:
        for c in shown.citations:
            assert verify_quote(articles[c.article.id], c.start, c.end, c.quote)
    if answer.mode == "llm":
        assert all(answer.text.startswith(partial.text) for partial in partials)
    else:
        assert partials == [] and reply.history == []  # nothing verifiable was ever shown
    # Every edit shows one of the verified answers so far; the last one the final answer.
    verified_views = {_shown(render.render_answer(a)[0]) for a in [*partials, answer]}
    for view in [*reply.history, reply.text]:
        assert view in verified_views
    assert reply.text == _shown(render.render_answer(answer)[0])
    article = " ".join(SEED.read_text(encoding="utf-8").split())
    for body in blockquote_bodies(reply):
        assert " ".join(body.split()) in article

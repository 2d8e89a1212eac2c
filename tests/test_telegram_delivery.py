"""Sending under load: "typing…" refreshed only while an answer runs, and the bot's own
message limit and paid broadcasts taken from the settings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from telegram import Bot

from bot.errors import DossierError
from bot.factory import Dossier
from bot.settings import load_settings
from bot.telegram import delivery
from bot.telegram.app import build_application
from bot.telegram.flow import MessageRateLimiter
from tests.support.fakes import FakeEmbeddings
from tests.support.telegram_server import DEFAULT_USER_ID, TelegramTestServer

USER = DEFAULT_USER_ID  # the user the `server` fixture knows
REFRESH_S = 0.05


@pytest.fixture(autouse=True)
def quick_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery, "TYPING_REFRESH_S", REFRESH_S)


@pytest.mark.slow
async def test_a_question_waiting_its_turn_shows_typing_once(
    bot: Bot, server: TelegramTestServer,
) -> None:
    async with delivery.typing(bot, USER, working=lambda: False):
        await asyncio.sleep(REFRESH_S * 8)
    assert [a.action for a in server.chat_actions(USER)] == ["typing"]


@pytest.mark.slow
async def test_typing_is_refreshed_while_the_answer_runs(
    bot: Bot, server: TelegramTestServer,
) -> None:
    started = asyncio.Event()

    async def work() -> None:
        await asyncio.sleep(REFRESH_S * 3)  # waiting its turn
        started.set()
        await asyncio.sleep(REFRESH_S * 8)  # answering

    async with delivery.typing(bot, USER, working=started.is_set):
        await work()
    actions = server.chat_actions(USER)
    assert {a.action for a in actions} == {"typing"}
    # The first at once, then refreshes only once the answer ran (about 8 of them).
    assert 3 <= len(actions) <= 10


@pytest.mark.parametrize("per_second", [30.0, 0.0])
def test_the_message_limit_is_the_setting(
    tmp_path: Path, fake_embedder: FakeEmbeddings, per_second: float,
) -> None:
    dossier = Dossier(load_settings(data_dir=tmp_path, telegram={
        "messages_per_second": per_second}), embedder=fake_embedder)
    limiter = build_application(dossier, "123:abc").bot.rate_limiter
    assert isinstance(limiter, MessageRateLimiter)
    assert limiter.messages_per_second == per_second


def _bot_of(tmp_path: Path, embedder: FakeEmbeddings, server: TelegramTestServer,
            **telegram: object) -> Bot:
    """The application's own bot (its rate limiter in the path), pointed at `server`."""
    dossier = Dossier(load_settings(data_dir=tmp_path, telegram={
        "api_base_url": server.base_url, "file_base_url": server.base_file_url, **telegram,
    }), embedder=embedder)
    return build_application(dossier, server.token).bot


@pytest.mark.slow
@pytest.mark.parametrize("paid", [True, False])
async def test_new_messages_go_out_as_paid_broadcasts_only_when_set(
    tmp_path: Path, fake_embedder: FakeEmbeddings, server: TelegramTestServer, paid: bool,
) -> None:
    async with _bot_of(tmp_path, fake_embedder, server, paid_broadcast=paid) as bot:
        sent = await bot.send_message(USER, "an answer")
        await bot.edit_message_text("an answer, edited", USER, sent.message_id)
        await bot.send_chat_action(USER, "typing")
    params = {call.method: call.params for call in server.calls()}
    assert params["sendMessage"].get("allow_paid_broadcast", False) is paid
    # Telegram takes the flag on new messages only: an edit or an action never carries it
    assert "allow_paid_broadcast" not in params["editMessageText"]
    assert "allow_paid_broadcast" not in params["sendChatAction"]


@pytest.mark.slow
async def test_paid_messages_are_not_held_to_the_free_limit(
    tmp_path: Path, fake_embedder: FakeEmbeddings, server: TelegramTestServer,
) -> None:
    # One free message a second: eight sends would take seven seconds within that limit.
    async with _bot_of(tmp_path, fake_embedder, server, messages_per_second=1,
                       paid_broadcast=True) as bot:
        await asyncio.wait_for(asyncio.gather(
            *(bot.send_message(USER, f"answer {n}") for n in range(8))), timeout=4)
    assert sorted(m.text or "" for m in server.sent_messages(USER)) == [
        f"answer {n}" for n in range(8)]


def test_a_negative_message_limit_is_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(DossierError, match="messages_per_second"):
        load_settings(data_dir=tmp_path, telegram={"messages_per_second": -1})

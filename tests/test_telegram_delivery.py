"""Sending under load: "typing…" refreshed only while an answer runs, and the bot's own
message limit taken from the settings."""

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


def test_a_negative_message_limit_is_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(DossierError, match="messages_per_second"):
        load_settings(data_dir=tmp_path, telegram={"messages_per_second": -1})

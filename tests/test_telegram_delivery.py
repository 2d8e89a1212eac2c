""""typing…" while the bot works: refreshed while an answer runs, not while it waits its turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from telegram import Bot

from bot.telegram import delivery
from tests.support.telegram_server import TelegramTestServer

USER = 1001
REFRESH_S = 0.05


@pytest.fixture
def server() -> Iterator[TelegramTestServer]:
    with TelegramTestServer() as srv:
        srv.add_user(USER)
        yield srv


@pytest.fixture
async def bot(server: TelegramTestServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Bot]:
    monkeypatch.setattr(delivery, "TYPING_REFRESH_S", REFRESH_S)
    async with Bot(server.token, base_url=server.base_url) as client:
        yield client


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

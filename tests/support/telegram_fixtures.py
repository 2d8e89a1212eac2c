"""Pytest fixtures: the Bot API test server with one user, and a real Bot talking to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from telegram import Bot

from tests.support.telegram_server import DEFAULT_USER_ID, TelegramTestServer


@pytest.fixture
def server() -> Iterator[TelegramTestServer]:
    """A running test server that knows user DEFAULT_USER_ID (a test file may define its
    own `server` instead)."""
    with TelegramTestServer() as srv:
        srv.add_user(DEFAULT_USER_ID)
        yield srv


@pytest.fixture
async def bot(server: TelegramTestServer) -> AsyncIterator[Bot]:
    """python-telegram-bot's Bot pointed at `server`."""
    async with Bot(
        server.token, base_url=server.base_url, base_file_url=server.base_file_url
    ) as client:
        yield client

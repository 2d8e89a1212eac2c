"""How updates flow: one chat's updates in order while chats run in parallel, and
Telegram's flood limits kept for messages (not for "typing…")."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import AIORateLimiter, BaseUpdateProcessor


class ChatOrderedUpdateProcessor(BaseUpdateProcessor):
    """Chats are served in parallel; the updates of one chat one at a time, in order."""

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        lock = self._locks.setdefault(chat.id, asyncio.Lock())  # FIFO: arrival order kept
        self._waiting[chat.id] = self._waiting.get(chat.id, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._waiting[chat.id] -= 1
            if not self._waiting[chat.id]:
                del self._waiting[chat.id], self._locks[chat.id]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""


class MessageRateLimiter(AIORateLimiter):
    """PTB's flood-control limiter for messages; chat actions ("typing…") go straight out.

    Telegram's limits (about 30 messages a second, 20 a minute per group) are on messages.
    Sent through the same budget, each answer's typing action halved the answers a busy bot
    could send. A chat action Telegram refuses is only logged (see `typing`).
    `messages_per_second` 0 drops the overall limit (the per-group one stays).
    """

    def __init__(self, messages_per_second: float = 30.0, max_retries: int = 0) -> None:
        super().__init__(overall_max_rate=messages_per_second, max_retries=max_retries)
        self.messages_per_second = messages_per_second

    async def process_request(self, callback: Any, args: Any, kwargs: dict[str, Any],
                              endpoint: str, data: dict[str, Any],
                              rate_limit_args: int | None) -> Any:
        if endpoint == "sendChatAction":
            return await callback(*args, **kwargs)
        return await super().process_request(callback, args, kwargs, endpoint, data,
                                             rate_limit_args)

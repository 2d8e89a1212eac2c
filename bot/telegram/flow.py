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


# The Bot API methods that take `allow_paid_broadcast` (Bot API 7.11): new messages, not edits.
PAID_BROADCAST_METHODS = frozenset({
    "sendMessage", "copyMessage", "sendAnimation", "sendAudio", "sendContact", "sendDice",
    "sendDocument", "sendGame", "sendInvoice", "sendLocation", "sendMediaGroup",
    "sendPaidMedia", "sendPhoto", "sendPoll", "sendSticker", "sendVenue", "sendVideo",
    "sendVideoNote", "sendVoice",
})


class MessageRateLimiter(AIORateLimiter):
    """PTB's flood-control limiter for messages; chat actions ("typing…") go straight out.

    Telegram's limits (about 30 messages a second, 20 a minute per group) are on messages.
    Sent through the same budget, each answer's typing action halved the answers a busy bot
    could send. A chat action Telegram refuses is only logged (see `typing`).
    `messages_per_second` 0 drops the overall limit (the per-group one stays).

    `paid_broadcast`: new messages go out as Telegram's paid broadcasts (a fee in Stars per
    message, up to 1000 a second), the documented way past the free 30 a second for a busy
    bot. PTB's limiter holds those to the paid rate; edits stay within `messages_per_second`.
    """

    def __init__(self, messages_per_second: float = 30.0, max_retries: int = 0, *,
                 paid_broadcast: bool = False) -> None:
        super().__init__(overall_max_rate=messages_per_second, max_retries=max_retries)
        self.messages_per_second = messages_per_second
        self.paid_broadcast = paid_broadcast

    async def process_request(self, callback: Any, args: Any, kwargs: dict[str, Any],
                              endpoint: str, data: dict[str, Any],
                              rate_limit_args: int | None) -> Any:
        if endpoint == "sendChatAction":
            return await callback(*args, **kwargs)
        if self.paid_broadcast and endpoint in PAID_BROADCAST_METHODS:
            # `data` is the request's own parameters (ExtBot passes the same dict on to the
            # callback), so the flag reaches Telegram and PTB's paid-rate limiter alike.
            data["allow_paid_broadcast"] = True
        return await super().process_request(callback, args, kwargs, endpoint, data,
                                             rate_limit_args)

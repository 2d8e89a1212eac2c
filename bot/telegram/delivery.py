"""Sending to Telegram: HTML with a plain-text fallback, retried only when surely not
delivered, answers edited in place, and "typing…" while the bot works."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import httpx
from telegram import (
    Bot,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    ReplyParameters,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, NetworkError, TelegramError, TimedOut
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from bot.telegram import render

log = logging.getLogger(__name__)

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
SEND_RETRIES = 3  # sends Telegram did not take (5xx, never connected), tried again
SEND_BACKOFF_S = 0.5  # doubled after each failed try: 0.5 s, 1 s, 2 s
TYPING_REFRESH_S = 4.0  # Telegram shows "typing" for about 5 s


def not_delivered(error: BaseException) -> bool:
    """Whether a failed send surely left no message in the chat, so that sending it again
    cannot show it twice: Telegram answered with an HTTP error (5xx), or the request never
    reached it (no connection, no free connection). A read timeout or a connection dropped
    mid-request may have delivered it: those are not retried."""
    if not isinstance(error, NetworkError) or isinstance(error, BadRequest):
        return False
    cause = error.__cause__
    if cause is None or isinstance(cause, TelegramError):  # PTB's mapping of an HTTP status
        return not isinstance(error, TimedOut)
    return isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    delay = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning("Telegram did not take a message (%s); trying again in %.1f s",
                getattr(error, "message", error), delay)


async def deliver(send: Callable[[], Awaitable[Any]]) -> Any:
    """`send()`, tried again with backoff while it fails in a way that delivered nothing.

    The rate limiter already waits out 429s (RetryAfter); this covers Telegram's 5xx. On
    the real Bot API a 5xx most likely means the message was not sent; if it was, the
    retry shows it twice, which beats losing an answer.
    """
    retrying = AsyncRetrying(
        retry=retry_if_exception(not_delivered),
        stop=stop_after_attempt(SEND_RETRIES + 1),
        wait=wait_exponential(multiplier=SEND_BACKOFF_S),
        before_sleep=_log_retry,
        reraise=True,
    )
    return await retrying(send)


def plain_entities(text: str) -> list[MessageEntity] | None:
    """Code entities over the link-like spans of a plain-text message, as `render.inert`
    sets them in HTML: Telegram links neither."""
    return [MessageEntity(MessageEntity.CODE, offset, length)
            for offset, length in render.link_like_spans(text)] or None


def _unparsable(error: BadRequest) -> bool:
    return "can't parse entities" in error.message.lower()


def _not_modified(error: BadRequest) -> bool:
    return "message is not modified" in error.message.lower()


async def send_html(bot: Bot, chat_id: int, messages: Sequence[str],
                    reply_to: int | None = None,
                    keyboard: InlineKeyboardMarkup | None = None) -> list[Message]:
    """Send HTML messages without link previews (the keyboard under the last one); HTML
    Telegram can't parse goes as plain text."""
    sent: list[Message] = []
    for number, text in enumerate(messages):
        reply = (ReplyParameters(reply_to, allow_sending_without_reply=True)
                 if reply_to is not None and number == 0 else None)
        markup = keyboard if number == len(messages) - 1 else None
        try:
            message = await deliver(partial(
                bot.send_message, chat_id, text, parse_mode=ParseMode.HTML,
                link_preview_options=NO_PREVIEW, reply_parameters=reply, reply_markup=markup))
        except BadRequest as exc:
            if not _unparsable(exc):
                raise
            log.warning("Telegram refused our HTML (%s); resending as plain text", exc.message)
            plain = render.visible_text(text)
            message = await deliver(partial(
                bot.send_message, chat_id, plain, entities=plain_entities(plain),
                link_preview_options=NO_PREVIEW, reply_parameters=reply, reply_markup=markup))
        sent.append(message)
    return sent


async def edit_html(bot: Bot, chat_id: int, message_id: int, text: str,
                    keyboard: InlineKeyboardMarkup | None = None) -> None:
    """Replace the text (and keyboard) of one of the bot's messages; the same text again
    is no error, HTML Telegram can't parse goes as plain text."""
    try:
        await deliver(partial(bot.edit_message_text, text, chat_id, message_id,
                              parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW,
                              reply_markup=keyboard))
    except BadRequest as exc:
        if _not_modified(exc):
            return
        if not _unparsable(exc):
            raise
        plain = render.visible_text(text)
        await deliver(partial(bot.edit_message_text, plain, chat_id, message_id,
                              entities=plain_entities(plain), link_preview_options=NO_PREVIEW,
                              reply_markup=keyboard))


async def replace_messages(bot: Bot, chat_id: int, earlier: Sequence[int],
                           messages: Sequence[str], reply_to: int,
                           keyboard: InlineKeyboardMarkup | None = None) -> list[int]:
    """Show `messages` in place of the bot's `earlier` ones: edited one for one, the rest
    sent after them, earlier ones left over deleted. Returns the ids now showing them."""
    shown: list[int] = []
    for number, (message_id, text) in enumerate(zip(earlier, messages, strict=False)):
        last = number == len(messages) - 1
        await edit_html(bot, chat_id, message_id, text, keyboard if last else None)
        shown.append(message_id)
    extra = list(messages[len(shown):])
    if extra:
        sent = await send_html(bot, chat_id, extra, reply_to=reply_to, keyboard=keyboard)
        shown += [m.message_id for m in sent]
    for message_id in earlier[len(messages):]:
        try:
            await deliver(partial(bot.delete_message, chat_id, message_id))
        except BadRequest as exc:  # already deleted by the user: nothing left to tidy
            log.info("could not delete message %s in chat %s: %s", message_id, chat_id,
                     exc.message)
    return shown


async def say(bot: Bot, message: Message, text: str) -> None:
    """Answer `message` with one line of our own text."""
    await send_html(bot, message.chat_id, [render.escape(text)], reply_to=message.message_id)


@contextlib.asynccontextmanager
async def typing(bot: Bot, chat_id: int,
                 working: Callable[[], bool] = lambda: True) -> AsyncIterator[None]:
    """Show "typing…" in the chat when the body starts, and again every TYPING_REFRESH_S
    while `working()` says the work runs (a failed action is no failure).

    A question waiting its turn behind others (`working()` false) gets the first "typing…"
    only: under load, refreshing every waiting chat's action sent more requests than the
    answers themselves, and they all wait on the same event loop.
    """

    async def send() -> None:
        try:
            await bot.send_chat_action(chat_id, ChatAction.TYPING)
        except TelegramError as exc:
            log.debug("typing action failed: %s", exc)

    async def keep_typing() -> None:
        while True:
            await asyncio.sleep(TYPING_REFRESH_S)
            if working():
                await send()

    await send()
    refresher = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher

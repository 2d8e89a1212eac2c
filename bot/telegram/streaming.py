"""An LLM answer shown in Telegram as it grows: one message, edited with each newly verified
sentence at most every EDIT_INTERVAL_S, whose last edit is the final answer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from telegram import Bot, LinkPreviewOptions, Message, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError

from bot.models import Answer
from bot.telegram import render

log = logging.getLogger(__name__)

# Telegram allows about one edit a second per chat; a steady 1.5 s stays well inside it
# and still shows each sentence soon after it is verified.
EDIT_INTERVAL_S = 1.5
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)

class LiveAnswer:
    """Shows partial answers (from a worker thread, through `on_progress`) in one message.

    Only verified sentences ever reach it: the Answerer calls `on_progress` with the answer
    made of the sentences whose quotes passed the check. When nothing verifiable arrives,
    no message is sent: the front end sends the final (e.g. extractive) answer.
    """

    def __init__(self, bot: Bot, chat_id: int, reply_to: int, *,
                 interval_s: float = EDIT_INTERVAL_S) -> None:
        self.bot = bot
        self.chat_id = chat_id
        self.reply_to = reply_to
        self.interval_s = interval_s
        self.message: Message | None = None
        self._loop = asyncio.get_running_loop()
        self._latest: Answer | None = None
        self._shown = ""  # the HTML the message shows now
        self._changed = asyncio.Event()
        self._last_edit = 0.0
        self._task = asyncio.create_task(self._keep_up())

    def on_progress(self, partial: Answer) -> None:
        """Called from the answering thread with the answer so far."""
        self._loop.call_soon_threadsafe(self._update, partial)

    def _update(self, partial: Answer) -> None:
        self._latest = partial
        self._changed.set()

    async def _keep_up(self) -> None:
        while True:
            await self._changed.wait()
            wait = self._last_edit + self.interval_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)  # sentences arriving meanwhile join this edit
            self._changed.clear()
            if self._latest is not None:
                await self._show(render.render_answer(self._latest)[0])

    async def _show(self, html: str) -> None:
        if html == self._shown:
            return
        try:
            if self.message is None:
                self.message = await self.bot.send_message(
                    self.chat_id, html, parse_mode=ParseMode.HTML,
                    link_preview_options=NO_PREVIEW,
                    reply_parameters=ReplyParameters(self.reply_to,
                                                     allow_sending_without_reply=True),
                )
            else:
                await self.message.edit_text(html, parse_mode=ParseMode.HTML,
                                             link_preview_options=NO_PREVIEW)
            self._shown = html
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                log.warning("could not show the answer so far: %s", exc.message)
        except TelegramError as exc:  # a partial view is not worth failing the answer for
            log.warning("could not show the answer so far: %r", exc)
        self._last_edit = time.monotonic()

    async def handed_over(self) -> list[int]:
        """Stop following the model; the message shown so far (none when nothing
        verifiable arrived), once the edit interval allows the edit into the final answer."""
        await self.close()
        if self.message is None:
            return []
        wait = self._last_edit + self.interval_s - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        return [self.message.message_id]

    async def close(self) -> None:
        """Stop showing partial answers (idempotent)."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

"""Lists behind inline buttons: /articles paged in one message (◀ ▶ edit it in place), and
the button under an answer that lists all of its sources."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from bot import prompts
from bot.factory import Dossier
from bot.models import Answer, ArticleRef
from bot.telegram import render
from bot.telegram.delivery import edit_html, send_html

Context = ContextTypes.DEFAULT_TYPE

ARTICLES_DATA = "articles:"  # + the page to show
SOURCES_DATA = "sources"
SOURCES_KEY = "sources"  # chat_data: answer message id -> that answer's sources
SOURCES_KEPT = 50  # answers per chat whose sources button still works


def articles_keyboard(page: int, pages: int) -> InlineKeyboardMarkup | None:
    """◀ and ▶ to the neighbouring pages (only those that exist); None for one page."""
    buttons = []
    if page > 1:
        buttons.append(InlineKeyboardButton(prompts.TG_PAGE_BACK,
                                            callback_data=f"{ARTICLES_DATA}{page - 1}"))
    if page < pages:
        buttons.append(InlineKeyboardButton(prompts.TG_PAGE_NEXT,
                                            callback_data=f"{ARTICLES_DATA}{page + 1}"))
    return InlineKeyboardMarkup([buttons]) if buttons else None


def sources_keyboard(answer: Answer) -> InlineKeyboardMarkup | None:
    """A button listing all of an answer's sources, when the quotes show only some."""
    if not answer.unshown_sources:
        return None
    label = prompts.TG_SOURCES_BUTTON.format(count=len(answer.sources))
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=SOURCES_DATA)]])


def remember_sources(chat_data: dict[str, Any], message_id: int, answer: Answer) -> None:
    """Keep an answer's sources for its button (the latest SOURCES_KEPT answers per chat)."""
    if not answer.unshown_sources:
        return
    kept: dict[int, list[dict[str, Any]]] = chat_data.setdefault(SOURCES_KEY, {})
    kept[message_id] = [asdict(source) for source in answer.sources]
    for old in list(kept)[:-SOURCES_KEPT]:
        del kept[old]


class Pages:
    """The /articles command and the callbacks of the buttons above."""

    def __init__(self, dossier: Dossier) -> None:
        self.dossier = dossier

    async def articles(self, update: Update, context: Context) -> None:
        """List the indexed articles, one page per message, ◀ ▶ to turn the pages."""
        message = update.effective_message
        assert message is not None
        text, keyboard = await self._page(1)
        await send_html(context.bot, message.chat_id, [text], reply_to=message.message_id,
                        keyboard=keyboard)

    async def turn_page(self, update: Update, context: Context) -> None:
        """Show another page of /articles in the same message."""
        query = update.callback_query
        assert query is not None and query.data is not None
        await query.answer()
        message = query.message
        if message is None or not message.is_accessible:
            return
        requested = query.data.removeprefix(ARTICLES_DATA)
        page = int(requested) if requested.isdigit() else 1
        text, keyboard = await self._page(page)
        await edit_html(context.bot, message.chat.id, message.message_id, text, keyboard)

    async def sources(self, update: Update, context: Context) -> None:
        """List every source of the answer whose button was pressed, as a reply to it."""
        query = update.callback_query
        assert query is not None
        message = query.message
        kept = (context.chat_data or {}).get(SOURCES_KEY, {})
        stored = kept.get(message.message_id) if message is not None else None
        if message is None or stored is None:
            await query.answer(prompts.TG_SOURCES_GONE, show_alert=True)
            return
        await query.answer()
        sources = [ArticleRef(**fields) for fields in stored]
        await send_html(context.bot, message.chat.id, render.render_sources(sources),
                        reply_to=message.message_id)

    async def _page(self, page: int) -> tuple[str, InlineKeyboardMarkup | None]:
        records = await asyncio.to_thread(lambda: list(self.dossier.store.records().values()))
        pages = render.page_count(len(records))
        page = min(max(page, 1), pages)
        return render.render_articles_page(records, page), articles_keyboard(page, pages)

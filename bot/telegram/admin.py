"""What the bot's admins may do in a private chat: add a document, list the uploads
(/uploads) and remove one (/remove N)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.ext import ContextTypes

from bot import prompts
from bot.errors import DossierError
from bot.factory import Dossier
from bot.telegram import render
from bot.telegram.access import AccessPolicy
from bot.telegram.delivery import say, send_html, typing
from bot.uploads import document_extension

Context = ContextTypes.DEFAULT_TYPE
CaptionAnswerer = Callable[[Update, Context], Awaitable[bool]]


class Admin:
    """The admin handlers; `answer_caption` answers a document's caption as a question
    (and says whether there was one)."""

    def __init__(self, dossier: Dossier, policy: AccessPolicy,
                 answer_caption: CaptionAnswerer) -> None:
        self.dossier = dossier
        self.policy = policy
        self.answer_caption = answer_caption

    def _is_admin(self, update: Update) -> bool:
        user = update.effective_user
        return self.policy.is_admin(user.id if user else None)

    async def document(self, update: Update, context: Context) -> None:
        """Add an admin's document to the corpus and report what changed; its caption,
        if any, is then answered as a question (a non-admin's caption is answered alone)."""
        message = update.effective_message
        assert message is not None and message.document is not None
        document, settings = message.document, self.policy.settings
        if not self._is_admin(update):
            if not await self.answer_caption(update, context):
                await say(context.bot, message, prompts.TG_ADMIN_ONLY)
            return
        if document_extension(document.file_name, document.mime_type) is None:
            await say(context.bot, message, prompts.TG_DOCUMENT_TYPE)
            return
        if self.policy.document_too_big(document.file_size):
            await say(context.bot, message, render.too_big(document.file_size or 0, settings))
            return
        async with typing(context.bot, message.chat_id):
            file = await document.get_file()
            content = bytes(await file.download_as_bytearray())
            if self.policy.document_too_big(len(content)):
                await say(context.bot, message, render.too_big(len(content), settings))
                return
            added = await asyncio.to_thread(
                self.dossier.add_document, document.file_name, content, document.mime_type
            )
        summary = render.render_ingest(added.report, added.name, added.kept, added.replaced)
        await send_html(context.bot, message.chat_id, [summary], reply_to=message.message_id)
        await self.answer_caption(update, context)

    async def uploads(self, update: Update, context: Context) -> None:
        """List the uploaded documents, numbered for /remove."""
        message = update.effective_message
        assert message is not None
        if not self._is_admin(update):
            await say(context.bot, message, prompts.TG_ADMIN_COMMAND_ONLY)
            return
        uploads = await asyncio.to_thread(self.dossier.uploads)
        await send_html(context.bot, message.chat_id, render.render_uploads(uploads),
                        reply_to=message.message_id)

    async def remove(self, update: Update, context: Context) -> None:
        """Remove upload N of /uploads, file and article."""
        message = update.effective_message
        assert message is not None
        if not self._is_admin(update):
            await say(context.bot, message, prompts.TG_ADMIN_COMMAND_ONLY)
            return
        args = context.args or []
        if len(args) != 1 or not args[0].isdigit():
            await say(context.bot, message, prompts.TG_REMOVE_USAGE)
            return
        number = int(args[0])
        uploads = await asyncio.to_thread(self.dossier.uploads)
        if not 1 <= number <= len(uploads):
            await say(context.bot, message, prompts.TG_REMOVE_UNKNOWN.format(number=number))
            return
        try:
            removed = await asyncio.to_thread(self.dossier.remove_upload, uploads[number - 1].name)
        except DossierError as exc:  # removed meanwhile by another admin
            await say(context.bot, message, str(exc))
            return
        await say(context.bot, message, prompts.TG_REMOVED.format(name=removed.name))

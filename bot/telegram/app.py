"""The Telegram front end: thin handlers over the core, wired in one builder, and `run`."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from telegram import (
    Bot,
    BotCommand,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    TelegramError,
    TimedOut,
)
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    BaseUpdateProcessor,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    PersistenceInput,
    PicklePersistence,
    TypeHandler,
    filters,
)

from bot import prompts
from bot.answer import ProgressCallback
from bot.chat import Conversation
from bot.errors import DossierError
from bot.factory import Dossier
from bot.models import Answer
from bot.settings import telegram_token
from bot.telegram import render
from bot.telegram.access import AccessPolicy, protect_token_in_logs, webhook_secret
from bot.telegram.streaming import LiveAnswer
from bot.uploads import document_extension

log = logging.getLogger(__name__)

App = Application[Any, Any, Any, Any, Any, Any]
Context = ContextTypes.DEFAULT_TYPE

CONVERSATION_KEY = "conversation"  # chat_data key of the persisted Conversation state
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
ALLOWED_UPDATES = [Update.MESSAGE]
MAX_CONCURRENT_UPDATES = 256  # waiting updates are cheap; the worker threads bound the CPU
RETRY_AFTER_RETRIES = 5
SEND_RETRIES = 3  # sends Telegram did not take (5xx, never connected), tried again
SEND_BACKOFF_S = 0.5  # doubled after each failed try: 0.5 s, 1 s, 2 s
PERSISTENCE_INTERVAL_S = 30.0
TYPING_REFRESH_S = 4.0  # Telegram shows "typing" for about 5 s


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
    """

    async def process_request(self, callback: Any, args: Any, kwargs: dict[str, Any],
                              endpoint: str, data: dict[str, Any],
                              rate_limit_args: int | None) -> Any:
        if endpoint == "sendChatAction":
            return await callback(*args, **kwargs)
        return await super().process_request(callback, args, kwargs, endpoint, data,
                                             rate_limit_args)


def not_delivered(error: NetworkError) -> bool:
    """Whether a failed send surely left no message in the chat, so that sending it again
    cannot show it twice: Telegram answered with an HTTP error (5xx), or the request never
    reached it (no connection, no free connection). A read timeout or a connection dropped
    mid-request may have delivered it: those are not retried."""
    if isinstance(error, BadRequest):
        return False
    cause = error.__cause__
    if cause is None or isinstance(cause, TelegramError):  # PTB's mapping of an HTTP status
        return not isinstance(error, TimedOut)
    return isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


async def deliver(send: Callable[[], Awaitable[Message]]) -> Message:
    """`send()`, tried again with backoff while it fails in a way that delivered nothing.

    The rate limiter already waits out 429s (RetryAfter); this covers Telegram's 5xx. On
    the real Bot API a 5xx most likely means the message was not sent; if it was, the
    retry shows it twice, which beats losing an answer.
    """
    for attempt in range(SEND_RETRIES + 1):
        try:
            return await send()
        except NetworkError as exc:
            if attempt == SEND_RETRIES or not not_delivered(exc):
                raise
            delay = SEND_BACKOFF_S * 2**attempt
            log.warning("Telegram did not take a message (%s); trying again in %.1f s",
                        exc.message, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


def plain_entities(text: str) -> list[MessageEntity] | None:
    """Code entities over the link-like spans of a plain-text message, as `render.inert`
    sets them in HTML: Telegram links neither."""
    return [MessageEntity(MessageEntity.CODE, offset, length)
            for offset, length in render.link_like_spans(text)] or None


async def send_html(bot: Bot, chat_id: int, messages: list[str],
                    reply_to: int | None = None) -> None:
    """Send HTML messages without link previews; HTML Telegram can't parse goes as plain text."""
    for number, text in enumerate(messages):
        reply = (ReplyParameters(reply_to, allow_sending_without_reply=True)
                 if reply_to is not None and number == 0 else None)
        try:
            await deliver(partial(bot.send_message, chat_id, text, parse_mode=ParseMode.HTML,
                                  link_preview_options=NO_PREVIEW, reply_parameters=reply))
        except BadRequest as exc:
            if "can't parse entities" not in exc.message.lower():
                raise
            log.warning("Telegram refused our HTML (%s); resending as plain text", exc.message)
            plain = render.visible_text(text)
            await deliver(partial(bot.send_message, chat_id, plain,
                                  entities=plain_entities(plain),
                                  link_preview_options=NO_PREVIEW, reply_parameters=reply))


async def say(bot: Bot, message: Message, text: str) -> None:
    """Answer `message` with one line of our own text."""
    await send_html(bot, message.chat_id, [render.escape(text)], reply_to=message.message_id)


@contextlib.asynccontextmanager
async def typing(bot: Bot, chat_id: int) -> AsyncIterator[None]:
    """Show "typing…" in the chat while the body runs (a failed action is no failure)."""

    async def send() -> None:
        try:
            await bot.send_chat_action(chat_id, ChatAction.TYPING)
        except TelegramError as exc:
            log.debug("typing action failed: %s", exc)

    async def keep_typing() -> None:
        while True:
            await asyncio.sleep(TYPING_REFRESH_S)
            await send()

    await send()
    refresher = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher


def _cut_utf16(text: str, start: int, end: int) -> str:
    """`text` without the UTF-16 span [start, end) (Telegram's entity offsets)."""
    data = text.encode("utf-16-le")
    return (data[: 2 * start] + data[2 * end :]).decode("utf-16-le")


def question_of(message: Message, bot: Bot, *, addressed: bool) -> str | None:
    """The question in a message with the bot's command and @mentions cut out; None when a
    group message is neither to the bot (mention, reply to it) nor `addressed` already."""
    text = message.text or ""
    ours: list[MessageEntity] = []
    for entity in message.entities:
        if entity.type == MessageEntity.MENTION:
            if message.parse_entity(entity).lower() == f"@{bot.username}".lower():
                ours.append(entity)
        elif entity.type == MessageEntity.TEXT_MENTION:
            if entity.user is not None and entity.user.id == bot.id:
                ours.append(entity)
        elif entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            ours.append(entity)
    replied = message.reply_to_message
    author = replied.from_user if replied is not None else None
    to_bot = author is not None and author.id == bot.id
    if not (addressed or to_bot or any(e.type != MessageEntity.BOT_COMMAND for e in ours)):
        return None
    for entity in sorted(ours, key=lambda e: e.offset, reverse=True):
        text = _cut_utf16(text, entity.offset, entity.offset + entity.length)
    return " ".join(text.split())


class DossierBot:
    """The handlers, sharing one Dossier and one access policy."""

    def __init__(self, dossier: Dossier) -> None:
        self.dossier = dossier
        self.policy = AccessPolicy(dossier.settings.telegram)

    # ---- the gate and the commands -------------------------------------------------------

    async def gate(self, update: Update, context: Context) -> None:
        """Stop updates from outside the allowlist, with one polite refusal per chat."""
        chat, user, message = update.effective_chat, update.effective_user, update.message
        if chat is None or self.policy.is_allowed(user.id if user else None, chat.id):
            return
        addressed = message is not None and (
            chat.type == ChatType.PRIVATE
            or (message.text or "").startswith("/")
            or question_of(message, context.bot, addressed=False) is not None
        )
        if message is not None and addressed and self.policy.first_refusal(chat.id):
            await say(context.bot, message, prompts.TG_NOT_ALLOWED)
        log.info("chat %s, user %s: not on the allowlist", chat.id, user.id if user else None)
        raise ApplicationHandlerStop

    async def start(self, update: Update, context: Context) -> None:
        """Greet, say what the bot knows and how to ask."""
        await self._help(update, context, greeting=True)

    async def help(self, update: Update, context: Context) -> None:
        """Say what the bot knows and how to ask."""
        await self._help(update, context, greeting=False)

    async def articles(self, update: Update, context: Context) -> None:
        """List every indexed article, linked when it has a URL."""
        records = await asyncio.to_thread(lambda: list(self.dossier.store.records().values()))
        assert update.message is not None
        await send_html(context.bot, update.message.chat_id, render.render_articles(records),
                        reply_to=update.message.message_id)

    async def reset(self, update: Update, context: Context) -> None:
        """Forget this chat's conversation history."""
        if context.chat_data is not None:
            context.chat_data.pop(CONVERSATION_KEY, None)
        assert update.message is not None
        await say(context.bot, update.message, prompts.TG_RESET_DONE)

    async def ask(self, update: Update, context: Context) -> None:
        """Answer the question after /ask (private chats and groups)."""
        assert update.message is not None
        question = question_of(update.message, context.bot, addressed=True) or ""
        if not question:
            await say(context.bot, update.message, prompts.TG_ASK_USAGE)
            return
        await self._answer(update, context, question)

    # ---- messages ------------------------------------------------------------------------

    async def private_text(self, update: Update, context: Context) -> None:
        """In a private chat every text is a question."""
        assert update.message is not None
        await self._answer(update, context, question_of(update.message, context.bot,
                                                        addressed=True) or "")

    async def group_text(self, update: Update, context: Context) -> None:
        """In a group, answer only messages that mention the bot or reply to it."""
        assert update.message is not None
        question = question_of(update.message, context.bot, addressed=False)
        if question is not None:
            await self._answer(update, context, question)

    async def document(self, update: Update, context: Context) -> None:
        """Add an admin's document to the corpus, index it and report what changed."""
        message, user = update.message, update.effective_user
        assert message is not None and message.document is not None
        document, settings = message.document, self.policy.settings
        if not self.policy.is_admin(user.id if user else None):
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
        await send_html(context.bot, message.chat_id,
                        [render.render_ingest(added.report, added.name, added.kept)],
                        reply_to=message.message_id)

    async def unknown_command(self, update: Update, context: Context) -> None:
        """Point a private chat's unknown /command at /help."""
        assert update.message is not None
        await say(context.bot, update.message, prompts.TG_UNKNOWN_COMMAND)

    async def on_error(self, update: object, context: Context) -> None:
        """Log a failed update with its id and context; tell the user one friendly line."""
        error = context.error
        if not isinstance(update, Update):
            log.error("Telegram error outside an update: %r", error, exc_info=error)
            return
        chat, user = update.effective_chat, update.effective_user
        log.error("update %s failed (chat %s, user %s): %r", update.update_id,
                  chat.id if chat else None, user.id if user else None, error, exc_info=error)
        if chat is None or isinstance(error, Forbidden):
            return
        line = render.error_line(error)
        try:
            await deliver(partial(context.bot.send_message, chat.id, line,
                                  entities=plain_entities(line), link_preview_options=NO_PREVIEW))
        except TelegramError as exc:
            log.warning("could not tell chat %s about the error: %r", chat.id, exc)

    async def post_init(self, application: App) -> None:
        """Register the command list and load the model and index before serving."""
        protect_token_in_logs(application.bot.token)
        await application.bot.set_my_commands(
            [BotCommand(name, text) for name, text in prompts.TG_COMMANDS.items()]
        )
        try:
            count = await asyncio.to_thread(self._warm_up)
            log.info("@%s is ready: %d article(s) indexed", application.bot.username, count)
        except Exception as exc:  # e.g. the store is down: each question tries again
            log.warning("not ready yet (%r); each question will try again", exc, exc_info=exc)

    # ---- the work (sync parts run in worker threads) -------------------------------------

    async def _help(self, update: Update, context: Context, *, greeting: bool) -> None:
        records = await asyncio.to_thread(lambda: list(self.dossier.store.records().values()))
        assert update.message is not None
        text = render.render_help(records, context.bot.username, greeting=greeting)
        await send_html(context.bot, update.message.chat_id, [text],
                        reply_to=update.message.message_id)

    async def _answer(self, update: Update, context: Context, question: str) -> None:
        message, user = update.message, update.effective_user
        assert message is not None and context.chat_data is not None
        verdict = self.policy.check_question(user.id if user else message.chat_id, question)
        if not verdict.allowed:
            refusal = render.refusal(verdict, question, self.dossier.settings.telegram)
            if refusal:
                await say(context.bot, message, refusal)
            return
        state = context.chat_data.get(CONVERSATION_KEY)
        send_pages = partial(send_html, context.bot, message.chat_id,
                             reply_to=message.message_id)
        # With an LLM the answer is shown as it grows, one verified sentence at a time.
        live = (LiveAnswer(context.bot, message.chat_id, message.message_id)
                if self.dossier.settings.llm.provider != "none" else None)
        try:
            async with typing(context.bot, message.chat_id):
                answer, new_state = await asyncio.to_thread(
                    self._ask, state, question, live.on_progress if live else None
                )
        finally:
            if live is not None:
                await live.close()
        context.chat_data[CONVERSATION_KEY] = new_state
        if live is not None:
            await live.finish(answer, send_pages)
        else:
            await send_pages(render.render_answer(answer))

    def _ask(self, state: list[dict[str, Any]] | None, question: str,
             on_progress: ProgressCallback | None = None,
             ) -> tuple[Answer, list[dict[str, Any]]]:
        conversation = Conversation.from_state(
            self.dossier.answerer, state, history_turns=self.dossier.settings.chat.history_turns
        )
        answer = conversation.ask(question, on_progress=on_progress)
        return answer, conversation.to_state()

    def _warm_up(self) -> int:
        self.dossier.embedder.encode(["warm up"])
        _ = self.dossier.answerer  # built once here, not by two worker threads at once
        return len(self.dossier.store.records())


def build_application(dossier: Dossier, token: str, *,
                      persistence_path: Path | None = None) -> App:
    """The whole Telegram bot: builder settings, persistence, handlers and error handler."""
    settings = dossier.settings
    path = persistence_path or settings.data_dir / "telegram.pickle"
    path.parent.mkdir(parents=True, exist_ok=True)
    persistence: PicklePersistence[Any, Any, Any] = PicklePersistence(
        path,
        store_data=PersistenceInput(bot_data=False, user_data=False, callback_data=False),
        update_interval=PERSISTENCE_INTERVAL_S,
    )
    protect_token_in_logs(token)  # before the builder: the bot logs its URLs when made
    handlers = DossierBot(dossier)
    application: App = (
        ApplicationBuilder()
        .token(token)
        .base_url(settings.telegram.api_base_url)
        .base_file_url(settings.telegram.file_base_url)
        .rate_limiter(MessageRateLimiter(max_retries=RETRY_AFTER_RETRIES))
        .defaults(Defaults(link_preview_options=NO_PREVIEW))  # every message, errors too
        .persistence(persistence)
        .concurrent_updates(ChatOrderedUpdateProcessor(MAX_CONCURRENT_UPDATES))
        .post_init(handlers.post_init)
        .build()
    )
    new = filters.UpdateType.MESSAGE
    private, groups = filters.ChatType.PRIVATE, filters.ChatType.GROUPS
    application.add_handler(TypeHandler(Update, handlers.gate), group=-1)
    for name in ("start", "help", "articles", "reset", "ask"):
        application.add_handler(CommandHandler(name, getattr(handlers, name), filters=new))
    application.add_handler(MessageHandler(new & private & filters.Document.ALL,
                                           handlers.document))
    application.add_handler(MessageHandler(new & private & filters.TEXT & ~filters.COMMAND,
                                           handlers.private_text))
    application.add_handler(MessageHandler(new & groups & filters.TEXT & ~filters.COMMAND,
                                           handlers.group_text))
    application.add_handler(MessageHandler(new & private & filters.COMMAND,
                                           handlers.unknown_command))
    application.add_error_handler(handlers.on_error)
    return application


def run(dossier: Dossier) -> None:
    """Serve Telegram until SIGINT/SIGTERM: long polling, or a webhook when one is set."""
    token = telegram_token()
    if not token:
        raise DossierError("TELEGRAM_BOT_TOKEN is not set: get a token from @BotFather")
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            level=logging.INFO)
    protect_token_in_logs(token)
    telegram = dossier.settings.telegram
    application = build_application(dossier, token)
    try:
        # run_polling / run_webhook stop on SIGINT, SIGTERM and SIGABRT, finish the updates
        # in hand, then shut down, which writes the persistence file.
        if not telegram.webhook_url:
            application.run_polling(allowed_updates=ALLOWED_UPDATES)
            return
        if importlib.util.find_spec("tornado") is None:
            raise DossierError("webhook mode needs python-telegram-bot[webhooks] installed")
        application.run_webhook(
            listen=telegram.webhook_listen,
            port=telegram.webhook_port,
            url_path=urlsplit(telegram.webhook_url).path.lstrip("/"),
            webhook_url=telegram.webhook_url,
            secret_token=webhook_secret(token),
            allowed_updates=ALLOWED_UPDATES,
        )
    except InvalidToken:
        raise DossierError("Telegram rejected TELEGRAM_BOT_TOKEN: check the token") from None

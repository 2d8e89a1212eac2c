"""The Telegram front end: thin handlers over the core, wired in one builder, and `run`."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from telegram import BotCommand, BotCommandScopeChat, Message, Update
from telegram.constants import ChatType
from telegram.error import Forbidden, InvalidToken, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    PersistenceInput,
    TypeHandler,
    filters,
)

from bot import language, prompts
from bot.answer import ProgressCallback
from bot.chat import Conversation
from bot.errors import DossierError
from bot.factory import Dossier
from bot.logs import configure_logging, log_value
from bot.models import Answer
from bot.settings import telegram_token
from bot.telegram import render
from bot.telegram.access import AccessPolicy, protect_token_in_logs, webhook_secret
from bot.telegram.admin import Admin
from bot.telegram.delivery import (
    NO_PREVIEW,
    deliver,
    plain_entities,
    replace_messages,
    say,
    send_html,
    typing,
)
from bot.telegram.flow import ChatOrderedUpdateProcessor, MessageRateLimiter
from bot.telegram.pages import (
    ARTICLES_DATA,
    SOURCES_DATA,
    Pages,
    remember_sources,
    sources_keyboard,
)
from bot.telegram.persistence import OneWritePicklePersistence
from bot.telegram.questions import ASK_COMMAND, command_of, question_of
from bot.telegram.streaming import LiveAnswer

log = logging.getLogger(__name__)

App = Application[Any, Any, Any, Any, Any, Any]
Context = ContextTypes.DEFAULT_TYPE

CONVERSATION_KEY = "conversation"  # chat_data key of the persisted Conversation state
ANSWERS_KEY = "answers"  # chat_data: question message id -> ids of the messages answering it
ANSWERS_KEPT = 100  # questions per chat whose edit still edits their answer
ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]
MAX_CONCURRENT_UPDATES = 256  # waiting updates are cheap; the worker threads bound the CPU
# Connections to the Bot API. httpx's pool checks every connection it holds each time a
# request starts or ends (a system call each): with python-telegram-bot's 256, that was a
# fifth of the event loop's time under load. Telegram takes about 30 messages a second
# from a bot, which a few keep-alive connections carry; a request waits for a free one
# (up to POOL_TIMEOUT_S) rather than fail.
CONNECTION_POOL_SIZE = 8
POOL_TIMEOUT_S = 30.0
RETRY_AFTER_RETRIES = 5
PERSISTENCE_INTERVAL_S = 30.0


class DossierBot:
    """The handlers, sharing one Dossier and one access policy."""

    def __init__(self, dossier: Dossier, clock: Callable[[], float] = time.monotonic) -> None:
        self.dossier = dossier
        self.policy = AccessPolicy(dossier.settings.telegram, clock)
        self.pages = Pages(dossier)
        self.admin = Admin(dossier, self.policy, self.caption)
        self._notes: set[asyncio.Task[None]] = set()  # "n questions not answered", pending
        # Extractive answers are CPU work under one GIL: as many threads as cores keep the
        # cores busy, and more only take the GIL from the event loop that sends the replies.
        # An LLM answer mostly waits on the model server, so more of them run at once.
        threads = (os.cpu_count() or 2) if dossier.settings.llm.provider == "none" else 8
        self._answering = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="answer")

    # ---- the gate and the commands -------------------------------------------------------

    async def gate(self, update: Update, context: Context) -> None:
        """Stop updates from outside the allowlist, with one polite refusal per chat (per
        person in a group the bot serves for others)."""
        chat, user, message = update.effective_chat, update.effective_user, update.message
        user_id = user.id if user else None
        if chat is None or self.policy.is_allowed(user_id, chat.id):
            return
        private = chat.type == ChatType.PRIVATE
        addressed = message is not None and (
            private or command_of(message, context.bot) is not None
            or question_of(message, context.bot, addressed=False) is not None
        )
        serves_others = not private and bool(self.policy.settings.allowed_user_ids)
        if message is not None and addressed and self.policy.first_refusal(
                chat.id, user_id if serves_others else None):
            await say(context.bot, message,
                      prompts.TG_NOT_ALLOWED_USER if serves_others else prompts.TG_NOT_ALLOWED)
        if update.callback_query is not None:
            await update.callback_query.answer(prompts.TG_NOT_ALLOWED)
        log.info("chat %s, user %s: not on the allowlist", chat.id, user_id)
        raise ApplicationHandlerStop

    async def start(self, update: Update, context: Context) -> None:
        """Greet, say what the bot knows and how to ask."""
        await self._help(update, context, greeting=True)

    async def help(self, update: Update, context: Context) -> None:
        """Say what the bot knows and how to ask."""
        await self._help(update, context, greeting=False)

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
            usage = prompts.TG_MENTION_USAGE.format(bot=f"@{context.bot.username}")
            await self._answer(update, context, question, usage=usage)

    async def caption(self, update: Update, context: Context) -> bool:
        """A caption (photo, file) is a question, in a group only when to the bot; returns
        whether there was one to answer."""
        message = update.effective_message
        if message is None or not message.caption:
            return False
        private = message.chat.type == ChatType.PRIVATE
        addressed = private or command_of(message, context.bot) == ASK_COMMAND
        question = question_of(message, context.bot, addressed=addressed)
        if not question:
            return False
        await self._answer(update, context, question)
        return True

    async def not_text(self, update: Update, context: Context) -> None:
        """Stickers, voice, photos without a caption…: one line on what the bot reads."""
        assert update.message is not None
        await say(context.bot, update.message, prompts.TG_NOT_TEXT)

    async def edited(self, update: Update, context: Context) -> None:
        """An edited question is answered again, in place of the earlier answer."""
        message = update.edited_message
        assert message is not None
        command = command_of(message, context.bot)
        if command is not None and command != ASK_COMMAND:
            return
        addressed = message.chat.type == ChatType.PRIVATE or command == ASK_COMMAND
        question = question_of(message, context.bot, addressed=addressed)
        if question:
            await self._answer(update, context, question)

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
        """Register the command lists and load the model and index before serving."""
        protect_token_in_logs(application.bot.token)
        commands = [BotCommand(name, text) for name, text in prompts.TG_COMMANDS.items()]
        await application.bot.set_my_commands(commands)
        admin_commands = commands + [BotCommand(name, text)
                                     for name, text in prompts.TG_ADMIN_COMMANDS.items()]
        for admin in self.policy.settings.admin_user_ids:
            try:  # only works once the admin has started a chat with the bot
                await application.bot.set_my_commands(admin_commands, BotCommandScopeChat(admin))
            except TelegramError as exc:
                log.info("no admin commands for %s yet: %s", admin, exc)
        try:
            count = await asyncio.to_thread(self._warm_up)
            log.info("@%s is ready: %d article(s) indexed", application.bot.username, count)
        except Exception as exc:  # e.g. the store is down: each question tries again
            log.warning("not ready yet (%r); each question will try again", exc, exc_info=exc)

    async def post_shutdown(self, application: App) -> None:
        """Drop the "not answered" notes still waiting for their time; let the answering
        threads go once their answers are done."""
        for note in list(self._notes):
            note.cancel()
        self._answering.shutdown(wait=False)

    # ---- the work (sync parts run in worker threads) -------------------------------------

    async def _help(self, update: Update, context: Context, *, greeting: bool) -> None:
        records = await asyncio.to_thread(lambda: list(self.dossier.store.records().values()))
        assert update.message is not None
        text = render.render_help(records, context.bot.username, greeting=greeting)
        await send_html(context.bot, update.message.chat_id, [text],
                        reply_to=update.message.message_id)

    async def _answer(self, update: Update, context: Context, question: str,
                      usage: str = prompts.TG_ASK_USAGE) -> None:
        """Answer a question, or say why not; an edited question's answer is edited."""
        message, user = update.effective_message, update.effective_user
        assert message is not None and context.chat_data is not None
        user_id = user.id if user else message.chat_id
        log.info("chat %s, user %s asks %s", message.chat_id, user_id, log_value(question))
        verdict = self.policy.check_question(user_id, question)
        if not verdict.allowed:
            refusal = render.refusal(verdict, question, self.dossier.settings.telegram, usage)
            if refusal:
                await say(context.bot, message, refusal)
            if verdict.refusal == "rate_limited" and verdict.notify:
                self._note_unanswered_later(context, message, user_id, verdict.wait_s)
            return
        await self._say_unanswered(context, message, user_id)
        state = context.chat_data.get(CONVERSATION_KEY)
        # With an LLM the answer is shown as it grows, one verified sentence at a time.
        live = (LiveAnswer(context.bot, message.chat_id, message.message_id)
                if self.dossier.settings.llm.provider != "none" else None)
        started = threading.Event()  # set by the worker thread: no wake-up of the loop

        def ask() -> tuple[Answer, list[dict[str, Any]]]:
            started.set()
            return self._ask(state, question, live.on_progress if live else None)

        try:
            async with typing(context.bot, message.chat_id, working=started.is_set):
                answer, new_state = await asyncio.get_running_loop().run_in_executor(
                    self._answering, ask)
        finally:
            if live is not None:
                await live.close()
        context.chat_data[CONVERSATION_KEY] = new_state
        answers: dict[int, list[int]] = context.chat_data.setdefault(ANSWERS_KEY, {})
        earlier = answers.get(message.message_id, [])
        if live is not None:  # the message that grew with the model becomes the answer
            earlier = [*await live.handed_over(), *earlier]
        shown = await replace_messages(
            context.bot, message.chat_id, earlier,
            render.render_answer(answer), reply_to=message.message_id,
            keyboard=sources_keyboard(answer),
        )
        answers[message.message_id] = shown
        for old in list(answers)[:-ANSWERS_KEPT]:
            del answers[old]
        remember_sources(context.chat_data, shown[-1], answer)

    async def _say_unanswered(self, context: Context, message: Message, user_id: int) -> None:
        count = self.policy.take_unanswered(user_id)
        if count:
            await say(context.bot, message, render.not_answered(count))

    def _note_unanswered_later(self, context: Context, message: Message, user_id: int,
                               wait_s: int) -> None:
        """When the user may ask again, say how many questions went unanswered meanwhile
        (unless a new question has said it first)."""

        async def note() -> None:
            await asyncio.sleep(wait_s)
            await self._say_unanswered(context, message, user_id)

        task = asyncio.create_task(note())
        self._notes.add(task)
        task.add_done_callback(self._notes.discard)

    def _ask(self, state: list[dict[str, Any]] | None, question: str,
             on_progress: ProgressCallback | None = None,
             ) -> tuple[Answer, list[dict[str, Any]]]:
        conversation = Conversation.from_state(
            self.dossier.answerer, state, history_turns=self.dossier.settings.chat.history_turns
        )
        answer = conversation.ask(question, on_progress=on_progress)
        return answer, conversation.to_state()

    def _warm_up(self) -> int:
        self.dossier.embedder.encode_question("warm up")
        _ = self.dossier.answerer  # built once here, not by two worker threads at once
        language.load()  # a "not covered" answer checks the question's language
        return len(self.dossier.store.records())


def build_application(dossier: Dossier, token: str, *, persistence_path: Path | None = None,
                      clock: Callable[[], float] = time.monotonic) -> App:
    """The whole Telegram bot: builder settings, persistence, handlers and error handler
    (`clock` times the rate limit)."""
    settings = dossier.settings
    path = persistence_path or settings.data_dir / "telegram.pickle"
    path.parent.mkdir(parents=True, exist_ok=True)
    persistence = OneWritePicklePersistence(
        path,
        store_data=PersistenceInput(bot_data=False, user_data=False, callback_data=False),
        update_interval=PERSISTENCE_INTERVAL_S,
    )
    protect_token_in_logs(token)  # before the builder: the bot logs its URLs when made
    handlers = DossierBot(dossier, clock)
    application: App = (
        ApplicationBuilder()
        .token(token)
        .base_url(settings.telegram.api_base_url)
        .base_file_url(settings.telegram.file_base_url)
        .rate_limiter(MessageRateLimiter(settings.telegram.messages_per_second,
                                         max_retries=RETRY_AFTER_RETRIES,
                                         paid_broadcast=settings.telegram.paid_broadcast))
        .connection_pool_size(CONNECTION_POOL_SIZE)
        .pool_timeout(POOL_TIMEOUT_S)
        .defaults(Defaults(link_preview_options=NO_PREVIEW))  # every message, errors too
        .persistence(persistence)
        .concurrent_updates(ChatOrderedUpdateProcessor(MAX_CONCURRENT_UPDATES))
        .post_init(handlers.post_init)
        .post_shutdown(handlers.post_shutdown)
        .build()
    )
    new, edited = filters.UpdateType.MESSAGE, filters.UpdateType.EDITED_MESSAGE
    private, groups = filters.ChatType.PRIVATE, filters.ChatType.GROUPS
    text = filters.TEXT & ~filters.COMMAND
    commands = {"start": handlers.start, "help": handlers.help, "reset": handlers.reset,
                "ask": handlers.ask, "articles": handlers.pages.articles,
                "uploads": handlers.admin.uploads, "remove": handlers.admin.remove}
    application.add_handler(TypeHandler(Update, handlers.gate), group=-1)
    for name, callback in commands.items():
        application.add_handler(CommandHandler(name, callback, filters=new))
    application.add_handlers([
        MessageHandler(new & private & filters.Document.ALL, handlers.admin.document),
        MessageHandler(new & private & text, handlers.private_text),
        MessageHandler(new & groups & text, handlers.group_text),
        MessageHandler(new & filters.CAPTION, handlers.caption),
        MessageHandler(new & private & filters.COMMAND, handlers.unknown_command),
        MessageHandler(new & private, handlers.not_text),
        MessageHandler(edited & (filters.TEXT | filters.CAPTION), handlers.edited),
        CallbackQueryHandler(handlers.pages.turn_page, pattern=f"^{ARTICLES_DATA}"),
        CallbackQueryHandler(handlers.pages.sources, pattern=f"^{SOURCES_DATA}$"),
    ])
    application.add_error_handler(handlers.on_error)
    return application


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The bot's event loop: uvloop where it is installed. Every request to Telegram runs on
    this loop, under the GIL the answering threads need too; uvloop spends less of it on
    each."""
    try:
        import uvloop
    except ImportError:  # e.g. Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(dossier: Dossier) -> None:
    """Serve Telegram until SIGINT/SIGTERM: long polling, or a webhook when one is set."""
    token = telegram_token()
    if not token:
        raise DossierError("TELEGRAM_BOT_TOKEN is not set: get a token from @BotFather")
    configure_logging(dossier.settings.log.format, dossier.settings.log.level)
    protect_token_in_logs(token)
    telegram = dossier.settings.telegram
    application = build_application(dossier, token)
    asyncio.set_event_loop(new_event_loop())  # run_polling / run_webhook run on it
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

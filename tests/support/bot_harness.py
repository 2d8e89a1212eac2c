"""Shared by the Telegram tests: a Dossier on the test server, the real bot driven by the
test's loop, asking and reading its replies, and a sample upload."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from bot.factory import Dossier
from bot.settings import load_settings
from bot.telegram.app import ALLOWED_UPDATES, build_application
from index.embeddings import SentenceEmbeddings
from tests.support import SEED
from tests.support.telegram_server import DEFAULT_GROUP_ID, SentMessage, TelegramTestServer

# A short article an admin uploads in the ingest-by-chat tests.
SALMON = """---
title: Salmon farms return to the Faroe fjords
author: Test Desk
---
The Faroe Islands approved twelve new salmon farms in the northern fjords this spring.
Local fishermen worry that sea lice from the pens will spread to the wild sea trout.
The fisheries ministry promised monthly inspections of every farm, starting in June.
"""


@contextlib.asynccontextmanager
async def running_bot(dossier: Dossier, server: TelegramTestServer, persistence: Path,
                      clock: Callable[[], float] = time.monotonic) -> AsyncIterator[Any]:
    """What run_polling does, minus signal handling: the test's loop drives the bot."""
    app = build_application(dossier, server.token, persistence_path=persistence, clock=clock)
    assert app.post_init is not None and app.updater is not None
    await app.initialize()
    await app.post_init(app)
    await app.start()
    await app.updater.start_polling(poll_interval=0, timeout=1,
                                    allowed_updates=ALLOWED_UPDATES)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


def telegram_dossier(index: tuple[Path, Path], embedder: SentenceEmbeddings,
                     server: TelegramTestServer, **telegram: Any) -> Dossier:
    """A Dossier over (corpus, data dir) whose Telegram settings point at the test server."""
    corpus, data = index
    settings = load_settings(data_dir=data, corpus={"path": corpus}, telegram={
        "api_base_url": server.base_url, "file_base_url": server.base_file_url, **telegram,
    })
    return Dossier(settings, embedder=embedder)


async def settle(server: TelegramTestServer) -> None:
    """Wait until the bot has fetched everything queued (stop() then finishes the work)."""
    await server.wait_until_async(lambda: not server.pending_updates(), timeout=10)


def blockquote_bodies(sent: SentMessage) -> list[str]:
    """The quotes of an answer as Telegram shows them (each blockquote minus its header)."""
    data = (sent.text or "").encode("utf-16-le")
    quotes = [data[2 * e["offset"] : 2 * (e["offset"] + e["length"])].decode("utf-16-le")
              for e in sent.entities if e["type"] == "blockquote"]
    return [q.split("\n", 1)[1] for q in quotes]


def replies_to(message_id: int) -> Callable[[SentMessage], bool]:
    def predicate(sent: SentMessage) -> bool:
        return sent.reply_to_message_id == message_id
    return predicate


async def ask(server: TelegramTestServer, text: str, *, user: int,
              timeout: float = 15) -> SentMessage:
    """A user asks in private; the bot's reply to it."""
    question = server.add_private_message(text, user_id=user)["message"]["message_id"]
    (reply,) = await server.wait_for_async(replies_to(question), chat_id=user, timeout=timeout)
    return reply


def ingest_corpus(folder: Path, embedder: SentenceEmbeddings,
                  articles: dict[str, str] | None = None) -> tuple[Path, Path]:
    """A corpus of the seed article (plus `articles`, name -> text) ingested into a data dir
    beside it: (corpus, data dir)."""
    corpus, data = folder / "corpus", folder / "data"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    for name, text in (articles or {}).items():
        (corpus / name).write_text(text, encoding="utf-8")
    dossier = Dossier(load_settings(data_dir=data, corpus={"path": corpus}), embedder=embedder)
    dossier.ingest()
    return corpus, data


@contextlib.contextmanager
def server_with(*users: int, group: int = DEFAULT_GROUP_ID) -> Iterator[TelegramTestServer]:
    """A running test server that knows these users and one group."""
    with TelegramTestServer() as server:
        for user in users:
            server.add_user(user)
        server.add_group(group)
        yield server


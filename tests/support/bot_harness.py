"""Shared by the Telegram tests: the real bot driven by the test's loop, and a sample upload."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bot.factory import Dossier
from bot.settings import load_settings
from bot.telegram.app import build_application
from index.embeddings import SentenceEmbeddings
from tests.support import SEED
from tests.support.telegram_server import TelegramTestServer

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
async def running_bot(dossier: Dossier, server: TelegramTestServer,
                      persistence: Path) -> AsyncIterator[Any]:
    """What run_polling does, minus signal handling: the test's loop drives the bot."""
    app = build_application(dossier, server.token, persistence_path=persistence)
    assert app.post_init is not None and app.updater is not None
    await app.initialize()
    await app.post_init(app)
    await app.start()
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


def ingested_seed(folder: Path, embedder: SentenceEmbeddings) -> tuple[Path, Path]:
    """A corpus folder holding the seed article and a data dir with it indexed."""
    corpus, data = folder / "corpus", folder / "data"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    dossier = Dossier(load_settings(data_dir=data, corpus={"path": corpus}), embedder=embedder)
    assert dossier.ingestor().run([corpus], corpus_root=corpus).added == 1
    return corpus, data

"""The chats' data file: one write after each persistence run, however many chats changed."""

from __future__ import annotations

import asyncio
import pickle
from pathlib import Path

from telegram import Bot
from telegram.ext import PersistenceInput

from bot.telegram.persistence import OneWritePicklePersistence

CHATS_ONLY = PersistenceInput(bot_data=False, user_data=False, callback_data=False)


class CountingPersistence(OneWritePicklePersistence):
    """Counts the writes of the file (each is a whole file of every chat)."""

    writes = 0

    def _dump_singlefile(self) -> None:
        self.writes += 1
        super()._dump_singlefile()


def stored(path: Path) -> dict[int, dict[str, object]]:
    with path.open("rb") as file:
        chats: dict[int, dict[str, object]] = pickle.load(file)["chat_data"]
    return chats


async def a_persistence_run(persistence: OneWritePicklePersistence,
                            changed: dict[int, dict[str, object]]) -> None:
    """What Application does every `update_interval`: every changed chat at once."""
    await asyncio.gather(*(persistence.update_chat_data(chat, data)
                           for chat, data in changed.items()))
    for _ in range(3):  # let the write that follows the run happen
        await asyncio.sleep(0)


async def test_a_run_with_many_changed_chats_writes_the_file_once(tmp_path: Path) -> None:
    path = tmp_path / "telegram.pickle"
    persistence = CountingPersistence(path, store_data=CHATS_ONLY, update_interval=30)
    persistence.set_bot(Bot("123:abc"))

    await a_persistence_run(persistence, {chat: {"turns": [chat]} for chat in range(200)})
    assert persistence.writes == 1
    assert stored(path) == {chat: {"turns": [chat]} for chat in range(200)}

    await a_persistence_run(persistence, {7: {"turns": ["new"]}})
    await persistence.drop_chat_data(8)
    await persistence.flush()  # shutdown: written now
    chats = stored(path)
    assert chats[7] == {"turns": ["new"]} and 8 not in chats and len(chats) == 199


async def test_shutdown_right_after_a_run_writes_what_it_handed_over(tmp_path: Path) -> None:
    path = tmp_path / "telegram.pickle"
    persistence = OneWritePicklePersistence(path, store_data=CHATS_ONLY, update_interval=30)
    persistence.set_bot(Bot("123:abc"))
    await persistence.update_chat_data(1, {"turns": ["kept"]})
    await persistence.flush()  # before the write that follows the run had its turn
    assert stored(path) == {1: {"turns": ["kept"]}}

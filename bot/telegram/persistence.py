"""The chats' data kept across restarts in one pickle file, written once per persistence run."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from telegram.ext import PersistenceInput, PicklePersistence


class OneWritePicklePersistence(PicklePersistence[Any, Any, Any]):
    """PicklePersistence writing its file once after each run of the Application's
    persistence updates, not once per changed chat.

    PicklePersistence (on_flush=False) rewrites the whole file for every chat that changed
    since the last run: with a thousand busy chats that is a thousand writes of a file that
    holds them all, every `update_interval`, on the event loop that also sends the answers.
    Here the chats are stored in memory as the run hands them over, and one write follows
    the run; shutdown still writes the file (`flush`).
    """

    def __init__(self, filepath: Path, *, store_data: PersistenceInput,
                 update_interval: float) -> None:
        super().__init__(filepath, store_data=store_data, single_file=True, on_flush=True,
                         update_interval=update_interval)
        self._write: asyncio.Task[None] | None = None

    async def update_chat_data(self, chat_id: int, data: Any) -> None:
        await super().update_chat_data(chat_id, data)
        self._write_after_this_run()

    async def drop_chat_data(self, chat_id: int) -> None:
        await super().drop_chat_data(chat_id)
        self._write_after_this_run()

    async def flush(self) -> None:
        """Write the file now (at shutdown), instead of the write still waiting."""
        if self._write is not None and not self._write.done():
            self._write.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._write
        await super().flush()

    def _write_after_this_run(self) -> None:
        if self._write is None or self._write.done():
            self._write = asyncio.get_running_loop().create_task(self._write_file())

    async def _write_file(self) -> None:
        # The run hands every changed chat over in tasks started together: they all go
        # before this one, which was started by the first of them.
        await asyncio.sleep(0)
        await PicklePersistence.flush(self)

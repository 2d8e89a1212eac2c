"""What tests see of the test server: calls, sent messages, actions, and waiting for them."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import Callable
from typing import TypeVar

from tests.support.telegram_server.records import ApiCall, ChatAction, SentMessage
from tests.support.telegram_server.state import ServerState
from tests.support.telegram_server.text import JSONDict

_T = TypeVar("_T")


class Observation(ServerState):
    """Snapshots of what happened, and ``wait_for*`` to wait for it (sync and async)."""


    def calls(self, method: str | None = None) -> list[ApiCall]:
        """All API calls received, oldest first (``method`` filters, case-insensitively)."""
        with self._lock:
            return [
                copy.deepcopy(c)
                for c in self._calls
                if method is None or c.method.lower() == method.lower()
            ]

    def sent_messages(
        self, chat_id: int | None = None, *, include_deleted: bool = True
    ) -> list[SentMessage]:
        """Messages the bot sent successfully, oldest first, with their current state."""
        with self._lock:
            return self._sent_snapshot(chat_id, include_deleted)

    def last_message(self, chat_id: int | None = None) -> SentMessage | None:
        messages = self.sent_messages(chat_id)
        return messages[-1] if messages else None

    def chat_actions(self, chat_id: int | None = None) -> list[ChatAction]:
        with self._lock:
            return [
                copy.deepcopy(a) for a in self._actions if chat_id is None or a.chat_id == chat_id
            ]

    def callback_answers(self) -> list[JSONDict]:
        with self._lock:
            return copy.deepcopy(self._callback_answers)

    def commands(self, scope: JSONDict | None = None, language_code: str = "") -> list[JSONDict]:
        """The command list set for a scope (default scope unless given)."""
        with self._lock:
            key = self._commands_key({"scope": scope, "language_code": language_code})
            return copy.deepcopy(self._commands.get(key, []))

    def webhook_info(self) -> JSONDict:
        with self._lock:
            info: JSONDict = {
                "url": self._webhook["url"],
                "has_custom_certificate": False,
                "pending_update_count": len(self._updates),
            }
            if self._webhook["url"]:
                for key in ("max_connections", "allowed_updates", "ip_address"):
                    if key in self._webhook:
                        info[key] = copy.deepcopy(self._webhook[key])
            return info

    def pending_updates(self) -> list[JSONDict]:
        """Updates queued and not yet confirmed by a getUpdates offset."""
        with self._lock:
            return copy.deepcopy(self._updates)

    def _sent_snapshot(self, chat_id: int | None, include_deleted: bool) -> list[SentMessage]:
        return [
            copy.deepcopy(m)
            for m in self._sent
            if (chat_id is None or m.chat_id == chat_id) and (include_deleted or not m.deleted)
        ]


    def wait_for(
        self,
        condition: int | Callable[[SentMessage], bool] = 1,
        *,
        chat_id: int | None = None,
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[SentMessage]:
        """Block until the bot has sent enough messages; returns them (snapshots).

        ``condition`` is a number of messages, or a predicate on one message that ``count``
        messages must satisfy (edits count: predicates see each message's current text).
        Raises TimeoutError listing what was sent and which calls failed. For async tests use
        ``await wait_for_async(...)``: blocking the loop the bot runs on would stall it.
        """
        return self._wait_sync(self._messages_check(condition, chat_id, count), timeout)

    async def wait_for_async(
        self,
        condition: int | Callable[[SentMessage], bool] = 1,
        *,
        chat_id: int | None = None,
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[SentMessage]:
        """Awaitable ``wait_for`` for async tests (works from any event loop)."""
        return await self._wait_async(self._messages_check(condition, chat_id, count), timeout)

    def wait_for_calls(self, method: str, count: int = 1, *, timeout: float = 5.0) -> list[ApiCall]:
        """Block until ``method`` was called ``count`` times; returns those calls."""
        return self._wait_sync(self._calls_check(method, count), timeout)

    async def wait_for_calls_async(
        self, method: str, count: int = 1, *, timeout: float = 5.0
    ) -> list[ApiCall]:
        return await self._wait_async(self._calls_check(method, count), timeout)

    def wait_until(self, predicate: Callable[[], bool], *, timeout: float = 5.0) -> None:
        """Block until ``predicate()`` (which may call inspection methods) becomes true."""
        self._wait_sync(self._predicate_check(predicate), timeout)

    async def wait_until_async(
        self, predicate: Callable[[], bool], *, timeout: float = 5.0
    ) -> None:
        await self._wait_async(self._predicate_check(predicate), timeout)

    def _messages_check(
        self,
        condition: int | Callable[[SentMessage], bool],
        chat_id: int | None,
        count: int,
    ) -> tuple[Callable[[], list[SentMessage] | None], str]:
        if isinstance(condition, int):
            needed, predicate = condition, None
            what = f"{needed} sent message(s)"
        else:
            needed, predicate = count, condition
            what = f"{needed} sent message(s) matching {getattr(condition, '__name__', 'it')}"
        if chat_id is not None:
            what += f" in chat {chat_id}"

        def check() -> list[SentMessage] | None:
            messages = [
                m
                for m in self._sent
                if (chat_id is None or m.chat_id == chat_id) and (predicate is None or predicate(m))
            ]
            return copy.deepcopy(messages) if len(messages) >= needed else None

        return check, what

    def _calls_check(
        self, method: str, count: int
    ) -> tuple[Callable[[], list[ApiCall] | None], str]:
        def check() -> list[ApiCall] | None:
            found = [c for c in self._calls if c.method.lower() == method.lower()]
            return copy.deepcopy(found) if len(found) >= count else None

        return check, f"{count} {method} call(s)"

    @staticmethod
    def _predicate_check(predicate: Callable[[], bool]) -> tuple[Callable[[], bool | None], str]:
        def check() -> bool | None:
            return True if predicate() else None

        return check, f"predicate {getattr(predicate, '__name__', '')}"

    def _timeout_report(self, what: str, timeout: float) -> str:
        with self._lock:
            sent = [(m.chat_id, m.message_id, (m.text or m.caption or "")[:80]) for m in self._sent]
            failed = [
                (c.method, c.status, c.description)
                for c in self._calls
                if c.status is not None and c.status != 200
            ][-5:]
        return (
            f"timed out after {timeout}s waiting for {what}; sent so far: {sent}; "
            f"last failed API calls: {failed}"
        )

    def _wait_sync(self, spec: tuple[Callable[[], _T | None], str], timeout: float) -> _T:
        check, what = spec
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "blocking wait called from a running event loop; use the *_async variant"
            )
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = check()
                if result is not None:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(self._timeout_report(what, timeout))
                self._changed.wait(remaining)

    async def _wait_async(self, spec: tuple[Callable[[], _T | None], str], timeout: float) -> _T:
        check, what = spec
        loop = asyncio.get_running_loop()
        waiter = (loop, asyncio.Event())
        with self._lock:
            self._async_waiters.add(waiter)
        try:
            deadline = loop.time() + timeout
            while True:
                waiter[1].clear()  # before checking, so a change in between is not lost
                with self._lock:
                    result = check()
                if result is not None:
                    return result
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError(self._timeout_report(what, timeout))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter[1].wait(), remaining)
        finally:
            with self._lock:
                self._async_waiters.discard(waiter)

"""The test server's state, one lock over all of it, and the bookkeeping every part shares."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import mimetypes
import secrets
import threading
import time

from aiohttp import web

from tests.support.telegram_server.records import (
    DEFAULT_EXCLUDED_UPDATES,
    DEFAULT_USER_ID,
    TOKEN_RE,
    ApiCall,
    ChatAction,
    ChatState,
    Fault,
    Poller,
    SentMessage,
    StoredFile,
    logger,
)
from tests.support.telegram_server.text import JSONDict


class ServerState:
    """Users, chats, messages, queued updates, calls and files, guarded by one lock: the
    server's loop changes them while tests read them from their own threads and loops."""

    def __init__(
        self,
        token: str | None = None,
        *,
        bot_username: str = "dossier_test_bot",
        bot_first_name: str = "Dossier Test",
        seed: int = 0,
        first_update_id: int = 100_000,
    ) -> None:
        """All the state of one Bot API server (no bot token is ever shared between two)."""
        if token is None:
            token = f"7000000001:{secrets.token_urlsafe(27)[:35]}"
        if not TOKEN_RE.fullmatch(token):
            raise ValueError("token must look like '<bot id>:<secret>'")
        self._token = token
        self._seed = seed
        self._bot_user: JSONDict = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }

        # One re-entrant lock guards all state: handlers run on the server loop while tests
        # call in from their own threads and loops. _changed wakes every kind of waiter.
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._async_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

        self._next_update_id = first_update_id
        self._updates: list[JSONDict] = []
        self._allowed_updates: frozenset[str] | None = None  # None: the default set
        self._pollers: list[Poller] = []
        self._webhook: JSONDict = {"url": ""}
        self._chats: dict[int, ChatState] = {}
        self._users: dict[int, JSONDict] = {}
        self._calls: list[ApiCall] = []
        self._sent: list[SentMessage] = []
        self._sent_index: dict[tuple[int, int], SentMessage] = {}
        self._actions: list[ChatAction] = []
        self._callback_queries: dict[str, JSONDict] = {}
        self._callback_answers: list[JSONDict] = []
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._faults: list[Fault] = []
        self._counter = itertools.count(1)

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None


    @property
    def token(self) -> str:
        return self._token

    @property
    def bot_user(self) -> JSONDict:
        return dict(self._bot_user)

    @property
    def bot_username(self) -> str:
        return str(self._bot_user["username"])


    def _notify(self) -> None:
        """Wake sync and async waiters; call with the lock held after every state change."""
        self._changed.notify_all()
        for loop, event in list(self._async_waiters):
            with contextlib.suppress(RuntimeError):  # the waiter's loop is already closed
                loop.call_soon_threadsafe(event.set)

    def _record_call(
        self,
        method: str,
        params: JSONDict,
        http_method: str,
        status: int | None = None,
        description: str | None = None,
    ) -> ApiCall:
        call = ApiCall(method, params, time.time(), http_method, status, description)
        with self._lock:
            self._calls.append(call)
            self._notify()
        return call

    def _finish_call(
        self, call: ApiCall, status: int, description: str | None, *, injected: bool = False
    ) -> None:
        with self._lock:
            call.status = status
            call.description = description
            call.injected = injected
            self._notify()

    def _wake_pollers(self, reason: str = "update") -> None:
        # Runs on the server loop (futures are not thread-safe).
        with self._lock:
            pollers = list(self._pollers)
        for poller in pollers:
            if not poller.future.done():
                poller.future.set_result(reason)

    def _enqueue(self, payload: JSONDict) -> JSONDict:
        update_type = next(iter(payload))
        update = {"update_id": self._next_update_id, **copy.deepcopy(payload)}
        self._next_update_id += 1
        allowed = self._allowed_updates
        # allowed_updates only affects updates created after it was set, as documented.
        if (allowed is None and update_type in DEFAULT_EXCLUDED_UPDATES) or (
            allowed is not None and update_type not in allowed
        ):
            logger.debug("%s update dropped by allowed_updates", update_type)
            return update
        self._updates.append(update)
        self._notify()
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the server loop has already stopped
                self._loop.call_soon_threadsafe(self._wake_pollers)
        return copy.deepcopy(update)

    def _new_message(
        self, state: ChatState, sender: JSONDict, *, reply_to: JSONDict | None = None
    ) -> JSONDict:
        message: JSONDict = {
            "message_id": state.next_message_id,
            "from": copy.deepcopy(sender),
            "chat": copy.deepcopy(state.chat),
            "date": int(time.time()),
        }
        state.next_message_id += 1
        if reply_to is not None:
            # Docs: a reply_to_message never contains a further reply_to_message.
            nested = copy.deepcopy(reply_to)
            nested.pop("reply_to_message", None)
            message["reply_to_message"] = nested
        state.messages[message["message_id"]] = message
        return message

    def _store_file(
        self,
        content: bytes,
        file_name: str | None,
        mime_type: str | None,
        file_size: int,
    ) -> StoredFile:
        number = next(self._counter)
        stored = StoredFile(
            file_id=f"BQACAgIAAxkBAAI{number:06d}{secrets.token_urlsafe(24)}",
            file_unique_id=f"AgAD{number:04d}{secrets.token_urlsafe(6)}",
            content=content,
            file_size=file_size,
            file_name=file_name,
            mime_type=mime_type or (mimetypes.guess_type(file_name or "")[0]),
        )
        self._files[stored.file_id] = stored
        return stored

    def _ensure_user(
        self,
        user_id: int,
        first_name: str | None,
        username: str | None,
        last_name: str | None,
        language_code: str | None,
    ) -> JSONDict:
        user = self._users.get(user_id)
        if user is None:
            default_name = "Alice" if user_id == DEFAULT_USER_ID else f"User{user_id}"
            user = {"id": user_id, "is_bot": False, "first_name": first_name or default_name}
            if username or user_id == DEFAULT_USER_ID:
                user["username"] = username or "alice"
            if last_name:
                user["last_name"] = last_name
            user["language_code"] = language_code or "en"
            self._users[user_id] = user
        else:
            for key, value in (
                ("first_name", first_name),
                ("username", username),
                ("last_name", last_name),
                ("language_code", language_code),
            ):
                if value is not None:
                    user[key] = value
        return user

    def _private_chat(self, user: JSONDict) -> ChatState:
        state = self._chats.get(user["id"])
        if state is None:
            chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
            for key in ("last_name", "username"):
                if key in user:
                    chat[key] = user[key]
            state = self._chats[user["id"]] = ChatState(chat)
        return state

    def _group_chat(
        self, chat_id: int, title: str, chat_type: str, username: str | None
    ) -> ChatState:
        if chat_type not in ("group", "supergroup"):
            raise ValueError("chat_type must be 'group' or 'supergroup'")
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        state = self._chats.get(chat_id)
        if state is None:
            chat: JSONDict = {"id": chat_id, "type": chat_type, "title": title}
            if username:
                chat["username"] = username
            state = self._chats[chat_id] = ChatState(chat)
        return state

    @staticmethod
    def _commands_key(params: JSONDict) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

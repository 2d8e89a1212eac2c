"""The user side of the test server: people write, edit, send files and media, press
buttons; each becomes the update Telegram would queue for the bot."""

from __future__ import annotations

import copy
import time

from tests.support.telegram_server.records import (
    DEFAULT_GROUP_ID,
    DEFAULT_USER_ID,
    ChatState,
    document_dict,
)
from tests.support.telegram_server.state import ServerState
from tests.support.telegram_server.text import JSONDict, detect_entities

# What a client sends for each kind of media (Bot API: PhotoSize, Sticker, Voice, Video,
# Location); file ids are made unique per message.
_MEDIA: dict[str, JSONDict | list[JSONDict]] = {
    "photo": [
        {"file_id": "s", "file_unique_id": "s", "width": 90, "height": 60, "file_size": 1200},
        {"file_id": "m", "file_unique_id": "m", "width": 800, "height": 533, "file_size": 52000},
    ],
    "sticker": {"file_id": "k", "file_unique_id": "k", "type": "regular", "width": 512,
                "height": 512, "is_animated": False, "is_video": False, "emoji": "👍"},
    "voice": {"file_id": "v", "file_unique_id": "v", "duration": 3, "mime_type": "audio/ogg",
              "file_size": 9000},
    "video": {"file_id": "d", "file_unique_id": "d", "width": 640, "height": 360,
              "duration": 5, "file_size": 300000},
    "location": {"latitude": 62.01, "longitude": -6.77},
}


class UserSide(ServerState):
    """``add_*``: what users do, queued as updates."""


    def add_user(
        self,
        user_id: int = DEFAULT_USER_ID,
        *,
        first_name: str | None = None,
        username: str | None = None,
        last_name: str | None = None,
        language_code: str | None = "en",
    ) -> JSONDict:
        """Register (or update) a user who has started the bot; returns the private Chat."""
        with self._lock:
            user = self._ensure_user(user_id, first_name, username, last_name, language_code)
            return copy.deepcopy(self._private_chat(user).chat)

    def add_group(
        self,
        chat_id: int = DEFAULT_GROUP_ID,
        *,
        title: str = "Dossier Test Group",
        chat_type: str = "supergroup",
        username: str | None = None,
    ) -> JSONDict:
        """Register a group / supergroup the bot is a member of; returns the Chat."""
        with self._lock:
            return copy.deepcopy(self._group_chat(chat_id, title, chat_type, username).chat)

    def add_private_message(
        self,
        text: str,
        *,
        user_id: int = DEFAULT_USER_ID,
        first_name: str | None = None,
        username: str | None = None,
        entities: list[JSONDict] | None = None,
        reply_to_message_id: int | None = None,
    ) -> JSONDict:
        """A user writes ``text`` to the bot in private; returns the queued Update."""
        with self._lock:
            user = self._ensure_user(user_id, first_name, username, None, None)
            state = self._private_chat(user)
            message = self._user_message(state, user, text, entities, reply_to_message_id)
            return self._enqueue({"message": message})

    def add_group_message(
        self,
        text: str,
        *,
        chat_id: int = DEFAULT_GROUP_ID,
        chat_type: str = "supergroup",
        title: str = "Dossier Test Group",
        user_id: int = DEFAULT_USER_ID,
        first_name: str | None = None,
        username: str | None = None,
        entities: list[JSONDict] | None = None,
        reply_to_message_id: int | None = None,
    ) -> JSONDict:
        """A user writes ``text`` in a group, e.g. "/ask@<bot> ..." or "@<bot> ...".

        bot_command / mention / url entities are added as Telegram does (group privacy is
        off: the bot sees every message, and filters them itself). Returns the Update.
        """
        with self._lock:
            user = self._ensure_user(user_id, first_name, username, None, None)
            state = self._group_chat(chat_id, title, chat_type, None)
            message = self._user_message(state, user, text, entities, reply_to_message_id)
            return self._enqueue({"message": message})

    def add_reply(
        self,
        text: str,
        *,
        chat_id: int | None = None,
        reply_to_message_id: int | None = None,
        user_id: int = DEFAULT_USER_ID,
    ) -> JSONDict:
        """A user replies to a message (default: the bot's latest one in the chat).

        ``chat_id`` defaults to the user's private chat. reply_to_message is the stored message.
        """
        with self._lock:
            user, state = self._sender_and_chat(user_id, chat_id)
            if reply_to_message_id is None:
                reply_to_message_id = self._last_bot_message_id(state)
            message = self._user_message(state, user, text, None, reply_to_message_id)
            return self._enqueue({"message": message})

    def add_document(
        self,
        content: bytes,
        *,
        file_name: str = "article.pdf",
        mime_type: str | None = None,
        file_size: int | None = None,
        caption: str | None = None,
        chat_id: int | None = None,
        user_id: int = DEFAULT_USER_ID,
    ) -> JSONDict:
        """A user sends a file; its bytes are downloadable via getFile + the file route.

        ``file_size`` may claim more than ``len(content)`` to test "file is too big".
        ``chat_id`` defaults to the user's private chat.
        """
        with self._lock:
            user, state = self._sender_and_chat(user_id, chat_id)
            stored = self._store_file(
                content, file_name, mime_type, len(content) if file_size is None else file_size
            )
            message = self._new_message(state, user)
            message["document"] = document_dict(stored)
            _set_caption(message, caption)
            return self._enqueue({"message": message})

    def add_media(
        self,
        kind: str,
        *,
        caption: str | None = None,
        chat_id: int | None = None,
        user_id: int = DEFAULT_USER_ID,
    ) -> JSONDict:
        """A user sends a photo, sticker, voice message, video or location (``kind``), with
        an optional caption (not for stickers, voice… as in Telegram's clients: only photo
        and video). ``chat_id`` defaults to the user's private chat."""
        if kind not in _MEDIA:
            raise ValueError(f"kind must be one of {sorted(_MEDIA)}")
        if caption and kind not in ("photo", "video"):
            raise ValueError(f"a {kind} has no caption")
        with self._lock:
            user, state = self._sender_and_chat(user_id, chat_id)
            message = self._new_message(state, user)
            number = next(self._counter)
            message[kind] = copy.deepcopy(_MEDIA[kind])
            for part in message[kind] if isinstance(message[kind], list) else [message[kind]]:
                if "file_id" in part:
                    part["file_id"] = f"{kind}-{number}-{part['file_id']}"
                    part["file_unique_id"] = f"{kind}{number}{part['file_unique_id']}"
            _set_caption(message, caption)
            return self._enqueue({"message": message})

    def add_callback_query(
        self,
        *,
        chat_id: int | None = None,
        message_id: int | None = None,
        data: str | None = None,
        button_text: str | None = None,
        user_id: int = DEFAULT_USER_ID,
    ) -> JSONDict:
        """A user presses an inline button of a bot message (default: the latest with one).

        Pick the button by ``button_text`` or ``data``; like a real client, only buttons that
        exist on the message can be pressed. ``chat_id`` defaults to the user's private chat.
        """
        with self._lock:
            user, state = self._sender_and_chat(user_id, chat_id)
            if message_id is None:
                message_id = next(
                    (
                        m["message_id"]
                        for m in reversed(state.messages.values())
                        if m.get("reply_markup") and m["from"]["id"] == self._bot_user["id"]
                    ),
                    None,
                )
            message = state.messages.get(message_id) if message_id is not None else None
            if message is None or not message.get("reply_markup"):
                raise ValueError("no bot message with an inline keyboard to press a button on")
            buttons = [b for row in message["reply_markup"]["inline_keyboard"] for b in row]
            button = next(
                (
                    b
                    for b in buttons
                    if "callback_data" in b
                    and (button_text is None or b.get("text") == button_text)
                    and (data is None or b["callback_data"] == data)
                ),
                None,
            )
            if button is None:
                labels = [(b.get("text"), b.get("callback_data")) for b in buttons]
                raise ValueError(f"no callback button matches; the message has {labels}")
            query_id = str(4_000_000_000_000_000_000 + next(self._counter))
            query = {
                "id": query_id,
                "from": copy.deepcopy(user),
                "message": copy.deepcopy(message),
                "chat_instance": str(abs(hash((state.chat["id"], self._token))) % 10**19),
                "data": button["callback_data"],
            }
            self._callback_queries[query_id] = query
            return self._enqueue({"callback_query": query})

    def add_edited_message(self, chat_id: int, message_id: int, text: str) -> JSONDict:
        """A user edits the text (or the caption) of one of their earlier messages: Telegram
        sends the whole message again as ``edited_message``, with its ``edit_date``."""
        with self._lock:
            state = self._chats.get(chat_id)
            message = state.messages.get(message_id) if state is not None else None
            if message is None or message["from"]["id"] == self._bot_user["id"]:
                raise ValueError("no such user message")
            field = "text" if "text" in message or "caption" not in message else "caption"
            entities_field = "entities" if field == "text" else "caption_entities"
            message[field] = text
            message.pop(entities_field, None)
            entities = detect_entities(text)
            if entities:
                message[entities_field] = entities
            message["edit_date"] = int(time.time())
            return self._enqueue({"edited_message": message})

    def block_bot(self, user_id: int = DEFAULT_USER_ID, blocked: bool = True) -> None:
        """The user blocks the bot: sends to their chat fail with 403 Forbidden."""
        with self._lock:
            user = self._ensure_user(user_id, None, None, None, None)
            self._private_chat(user).blocked = blocked

    def _sender_and_chat(self, user_id: int, chat_id: int | None) -> tuple[JSONDict, ChatState]:
        """The user, and the chat they write in: ``chat_id``, else their private chat."""
        user = self._ensure_user(user_id, None, None, None, None)
        state = self._private_chat(user) if chat_id is None else self._chats.get(chat_id)
        if state is None:
            raise ValueError(f"unknown chat {chat_id}; add_group() or add_user() first")
        return user, state

    def _user_message(
        self,
        state: ChatState,
        user: JSONDict,
        text: str,
        entities: list[JSONDict] | None,
        reply_to_message_id: int | None,
    ) -> JSONDict:
        reply_to = None
        if reply_to_message_id is not None:
            reply_to = state.messages.get(reply_to_message_id)
            if reply_to is None:
                raise ValueError(f"no message {reply_to_message_id} in chat {state.chat['id']}")
        message = self._new_message(state, user, reply_to=reply_to)
        message["text"] = text
        found = detect_entities(text) if entities is None else entities
        if found:
            message["entities"] = copy.deepcopy(found)
        return message

    def _last_bot_message_id(self, state: ChatState) -> int:
        for message in reversed(state.messages.values()):
            if message["from"]["id"] == self._bot_user["id"]:
                return int(message["message_id"])
        raise ValueError(f"the bot has sent nothing to chat {state.chat['id']} yet")


def _set_caption(message: JSONDict, caption: str | None) -> None:
    """A caption with the entities Telegram detects in it (mentions, commands, links)."""
    if caption:
        message["caption"] = caption
        caption_entities = detect_entities(caption)
        if caption_entities:
            message["caption_entities"] = caption_entities

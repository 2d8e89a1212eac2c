"""The Bot API methods the bot calls, as Telegram documents them (https://core.telegram.org/bots/api)."""

from __future__ import annotations

import asyncio
import copy
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tests.support.telegram_server.records import (
    CHAT_ACTIONS,
    MAX_DOWNLOAD_SIZE,
    ApiError,
    ChatAction,
    ChatState,
    Poller,
    Request,
    SentMessage,
    StoredFile,
    allowed_set,
    bad_request,
    check_reply_markup,
    coerce,
    document_dict,
)
from tests.support.telegram_server.state import ServerState
from tests.support.telegram_server.text import (
    MAX_MESSAGE_LENGTH,
    EntityParseError,
    JSONDict,
    render_text,
    utf16_len,
)

Method = Callable[[Request], Awaitable[Any]]


class BotApiMethods(ServerState):
    """getMe, getUpdates, webhooks, messages (send, edit, delete), chat actions, commands,
    callback answers and file downloads."""

    def api_methods(self) -> dict[str, tuple[str, Method]]:
        """The methods by lower-case name (Telegram's names are case-insensitive)."""
        methods: dict[str, Method] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "deleteMessage": self._delete_message,
            "sendChatAction": self._send_chat_action,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "answerCallbackQuery": self._answer_callback_query,
            "getFile": self._get_file,
        }
        return {name.lower(): (name, method) for name, method in methods.items()}


    async def _get_me(self, req: Request) -> JSONDict:
        return {
            **self._bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": True,  # group privacy off: see UserSide
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, req: Request) -> list[JSONDict]:
        params = req.params
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        with self._lock:
            if self._webhook["url"]:
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            if "allowed_updates" in params:
                self._allowed_updates = allowed_set(params["allowed_updates"])
            # Any getUpdates terminates a long poll still waiting (two bot instances).
            for poller in self._pollers:
                if not poller.future.done():
                    poller.future.set_result("conflict")
            self._pollers.clear()
            self._confirm(offset)
            batch = copy.deepcopy(self._updates[:limit])
            if batch or timeout <= 0:
                return batch
            poller = Poller(asyncio.get_running_loop().create_future())
            self._pollers.append(poller)
        try:
            done, _ = await asyncio.wait({poller.future}, timeout=timeout)
        finally:
            with self._lock:
                if poller in self._pollers:
                    self._pollers.remove(poller)
        if done and poller.future.result() == "conflict":
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            )
        with self._lock:
            return copy.deepcopy(self._updates[:limit])

    def _confirm(self, offset: int) -> None:
        # Docs: an update is confirmed once getUpdates is called with an offset higher than its
        # update_id; a negative offset keeps only the last -offset updates.
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]

    async def _set_webhook(self, req: Request) -> bool:
        url = str(req.params.get("url") or "")
        if url and not url.lower().startswith("https://"):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        with self._lock:
            if req.params.get("drop_pending_updates"):
                self._updates.clear()
            if "allowed_updates" in req.params:
                self._allowed_updates = allowed_set(req.params["allowed_updates"])
            self._webhook = {
                "url": url,
                **{k: v for k, v in req.params.items() if k not in ("url", "certificate")},
            }
            self._notify()
        return True

    async def _delete_webhook(self, req: Request) -> bool:
        with self._lock:
            if req.params.get("drop_pending_updates"):
                self._updates.clear()
            self._webhook = {"url": ""}
            self._notify()
        return True

    async def _get_webhook_info(self, req: Request) -> JSONDict:
        return self.webhook_info()

    async def _send_message(self, req: Request) -> JSONDict:
        params = req.params
        with self._lock:
            state = self._resolve_chat(params.get("chat_id"))
            source, text, entities = self._message_text(params)
            markup = check_reply_markup(params.get("reply_markup"))
            reply_to = self._resolve_reply(state, params)
            message = self._new_message(state, self._bot_user, reply_to=reply_to)
            message["text"] = text
            if entities:
                message["entities"] = entities
            if markup is not None and "inline_keyboard" in markup:
                message["reply_markup"] = markup
            if params.get("link_preview_options") is not None:
                message["link_preview_options"] = params["link_preview_options"]
            self._record_sent("sendMessage", state, message, params, source=source)
            return copy.deepcopy(message)

    async def _edit_message_text(self, req: Request) -> JSONDict | bool:
        params = req.params
        with self._lock:
            state, message = self._resolve_editable(params)
            if "text" not in message:
                raise bad_request("there is no text in the message to edit")
            source, text, entities = self._message_text(params)
            markup = check_reply_markup(params.get("reply_markup"))
            # Omitting reply_markup removes an inline keyboard, as on Telegram.
            new_markup = markup if markup is not None and "inline_keyboard" in markup else None
            if (
                text == message.get("text")
                and entities == message.get("entities", [])
                and new_markup == message.get("reply_markup")
            ):
                raise bad_request(
                    "message is not modified: specified new message content and reply markup "
                    "are exactly the same as a current content and reply markup of the message"
                )
            message["text"] = text
            message.pop("entities", None)
            if entities:
                message["entities"] = entities
            message.pop("reply_markup", None)
            if new_markup is not None:
                message["reply_markup"] = new_markup
            message["edit_date"] = int(time.time())
            sent = self._sent_index.get((state.chat["id"], message["message_id"]))
            if sent is not None:
                sent.history.append(sent.text)
                sent.text = text
                sent.source_text = source
                sent.parse_mode = params.get("parse_mode")
                sent.entities = copy.deepcopy(entities)
                sent.reply_markup = copy.deepcopy(markup)
                sent.message = copy.deepcopy(message)
            self._notify()
            return copy.deepcopy(message)

    def _resolve_editable(self, params: JSONDict) -> tuple[ChatState, JSONDict]:
        if params.get("inline_message_id"):
            raise bad_request("message to edit not found")  # no inline mode here
        state = self._resolve_chat(params.get("chat_id"))
        message_id = params.get("message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        message = state.messages.get(message_id)
        if message is None:
            raise bad_request("message to edit not found")
        if message.get("from", {}).get("id") != self._bot_user["id"]:
            raise bad_request("message can't be edited")
        return state, message

    async def _delete_message(self, req: Request) -> bool:
        with self._lock:
            state = self._resolve_chat(req.params.get("chat_id"))
            message = state.messages.pop(req.params.get("message_id") or 0, None)
            if message is None:
                raise bad_request("message to delete not found")
            sent = self._sent_index.get((state.chat["id"], message["message_id"]))
            if sent is not None:
                sent.deleted = True
            self._notify()
        return True

    async def _send_chat_action(self, req: Request) -> bool:
        with self._lock:
            state = self._resolve_chat(req.params.get("chat_id"))
            action = req.params.get("action")
            if action not in CHAT_ACTIONS:
                raise bad_request("wrong parameter action in request")
            self._actions.append(
                ChatAction(
                    state.chat["id"], action, time.time(), req.params.get("message_thread_id")
                )
            )
            self._notify()
        return True

    async def _set_my_commands(self, req: Request) -> bool:
        commands = req.params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse bot commands JSON object")
        for command in commands:
            name = command.get("command") if isinstance(command, dict) else None
            description = command.get("description") if isinstance(command, dict) else None
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise bad_request("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        with self._lock:
            self._commands[self._commands_key(req.params)] = [
                {"command": c["command"], "description": c["description"]} for c in commands
            ]
            self._notify()
        return True

    async def _get_my_commands(self, req: Request) -> list[JSONDict]:
        with self._lock:
            return copy.deepcopy(self._commands.get(self._commands_key(req.params), []))

    async def _answer_callback_query(self, req: Request) -> bool:
        query_id = str(req.params.get("callback_query_id") or "")
        with self._lock:
            if self._callback_queries.pop(query_id, None) is None:
                # Unknown ids and second answers to the same query both get this.
                raise bad_request(
                    "query is too old and response timeout expired or query ID is invalid"
                )
            self._callback_answers.append({"callback_query_id": query_id, **req.params})
            self._notify()
        return True

    async def _get_file(self, req: Request) -> JSONDict:
        file_id = str(req.params.get("file_id") or "")
        with self._lock:
            stored = self._files.get(file_id)
            if stored is None:
                raise bad_request("invalid file_id")
            if stored.file_size > MAX_DOWNLOAD_SIZE:
                raise bad_request("file is too big")
            if stored.file_path is None:
                suffix = ""
                if stored.file_name and "." in stored.file_name:
                    suffix = "." + stored.file_name.rsplit(".", 1)[1]
                stored.file_path = f"documents/file_{next(self._counter)}{suffix}"
                self._files_by_path[stored.file_path] = stored
            return {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_size": stored.file_size,
                "file_path": stored.file_path,
            }


    def _message_text(self, params: JSONDict) -> tuple[str, str, list[JSONDict]]:
        """The text as sent, and as Telegram stores it with its entities; 400 when empty
        or too long."""
        source = params.get("text")
        if source is None or source == "":
            raise bad_request("message text is empty")
        source = str(source)
        text, entities = self._render(source, params.get("parse_mode"), params.get("entities"))
        if not text:
            raise bad_request("message text is empty")
        if utf16_len(text) > MAX_MESSAGE_LENGTH:
            raise bad_request("message is too long")
        return source, text, entities

    def _render(self, source: str, parse_mode: Any, entities: Any) -> tuple[str, list[JSONDict]]:
        if entities is not None and not isinstance(entities, list):
            raise bad_request("can't parse entities JSON object")
        try:
            return render_text(
                source,
                str(parse_mode) if parse_mode else None,
                entities,
            )
        except EntityParseError as exc:
            raise bad_request(f"can't parse entities: {exc}") from None
        except ValueError:
            raise bad_request("unsupported parse_mode") from None

    def _resolve_chat(self, chat_id: Any, *, for_sending: bool = True) -> ChatState:
        if chat_id is None or chat_id == "":
            raise bad_request("chat_id is empty")
        state: ChatState | None = None
        if isinstance(chat_id, int):
            state = self._chats.get(chat_id)
        elif isinstance(chat_id, str) and chat_id.startswith("@"):
            wanted = chat_id[1:].lower()
            state = next(
                (
                    s
                    for s in self._chats.values()
                    if s.chat["type"] != "private"
                    and str(s.chat.get("username", "")).lower() == wanted
                ),
                None,
            )
        if state is None:
            raise bad_request("chat not found")
        if for_sending and state.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return state

    def _resolve_reply(self, state: ChatState, params: JSONDict) -> JSONDict | None:
        reply = params.get("reply_parameters")
        if reply is None and params.get("reply_to_message_id") is not None:
            reply = {
                "message_id": params["reply_to_message_id"],
                "allow_sending_without_reply": params.get("allow_sending_without_reply", False),
            }
        if reply is None:
            return None
        if not isinstance(reply, dict) or "message_id" not in reply:
            raise bad_request("can't parse reply parameters JSON object")
        target = state
        if reply.get("chat_id") not in (None, state.chat["id"]):
            target = self._resolve_chat(coerce("chat_id", reply["chat_id"]), for_sending=False)
        message = target.messages.get(coerce("message_id", reply["message_id"]))
        if message is None:
            if reply.get("allow_sending_without_reply"):
                return None
            raise bad_request("message to be replied not found")
        return message

    def _record_sent(
        self,
        method: str,
        state: ChatState,
        message: JSONDict,
        params: JSONDict,
        *,
        source: Any,
        document: StoredFile | None = None,
    ) -> None:
        consumed = {
            "chat_id",
            "text",
            "caption",
            "parse_mode",
            "entities",
            "caption_entities",
            "reply_markup",
            "document",
        }
        sent = SentMessage(
            chat_id=state.chat["id"],
            message_id=message["message_id"],
            method=method,
            text=message.get("text"),
            source_text=None if source is None else str(source),
            parse_mode=params.get("parse_mode"),
            entities=copy.deepcopy(message.get("entities") or message.get("caption_entities", [])),
            reply_markup=copy.deepcopy(params.get("reply_markup")),
            options={k: copy.deepcopy(v) for k, v in params.items() if k not in consumed},
            date=message["date"],
            reply_to_message_id=message.get("reply_to_message", {}).get("message_id"),
            caption=message.get("caption"),
            document=document_dict(document) if document is not None else None,
            message=copy.deepcopy(message),
        )
        self._sent.append(sent)
        self._sent_index[(sent.chat_id, sent.message_id)] = sent
        self._notify()

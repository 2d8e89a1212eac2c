"""The Bot API's wire rules (parameter types, keyboards, limits) and the records the test
server keeps and hands to tests."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from dataclasses import dataclass, field
from typing import Any

from tests.support.telegram_server.text import JSONDict, normalize_url, words

# Only method names and status codes are ever logged: the bot token is part of every URL path.
logger = logging.getLogger("tests.support.telegram_server")

MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024  # getFile refuses bigger files ("file is too big")
MAX_UPLOAD_SIZE = 50 * 1024 * 1024  # multipart uploads a bot may make
MAX_CALLBACK_DATA_BYTES = 64

DEFAULT_USER_ID = 1001
DEFAULT_GROUP_ID = -1001000000001

TOKEN_RE = re.compile(r"\d+:[A-Za-z0-9_-]+")

# getUpdates without allowed_updates delivers every type except these three (Bot API docs).
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
CHAT_ACTIONS = words(
    "typing upload_photo record_video upload_video record_voice upload_voice "
    "upload_document choose_sticker find_location record_video_note upload_video_note"
)
_INLINE_BUTTON_ACTIONS = words(
    "url callback_data web_app login_url switch_inline_query "
    "switch_inline_query_current_chat switch_inline_query_chosen_chat copy_text "
    "callback_game pay"
)
HTTP_PHRASES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

# Form-encoded requests carry every value as a string (PTB JSON-encodes non-string values into
# form fields), so parameters are coerced by name the way Telegram does before handlers see them.
_INT_PARAMS = words(
    "offset limit message_id reply_to_message_id user_id cache_time message_thread_id "
    "max_connections"
)
_FLOAT_PARAMS = frozenset({"timeout"})
_BOOL_PARAMS = words(
    "disable_web_page_preview disable_notification protect_content "
    "allow_sending_without_reply allow_paid_broadcast drop_pending_updates show_alert "
    "disable_content_type_detection"
)
_JSON_PARAMS = {
    "reply_markup": "reply keyboard markup",
    "link_preview_options": "link preview options",
    "reply_parameters": "reply parameters",
    "entities": "entities",
    "caption_entities": "caption entities",
    "allowed_updates": "allowed updates",
    "commands": "bot commands",
    "scope": "bot command scope",
}


@dataclass
class ApiCall:
    """One Bot API request the server received (snapshot)."""

    method: str  # canonical spelling, e.g. "sendMessage" (as sent for unknown methods)
    params: JSONDict  # coerced: ints are ints, JSON fields decoded; uploads summarised
    time: float  # time.time() on arrival
    http_method: str
    status: int | None = None  # HTTP status answered; None while still in progress
    description: str | None = None  # error description for failed calls
    injected: bool = False  # answered by an injected Fault rather than the method itself


@dataclass
class SentMessage:
    """A message the bot sent, as Telegram stores it (snapshot)."""

    chat_id: int
    message_id: int
    method: str  # "sendMessage" or "sendDocument"
    text: str | None  # the text users see: tags removed, entities decoded, trimmed
    source_text: str | None  # exactly what the bot sent as text / caption
    parse_mode: str | None
    entities: list[JSONDict]
    reply_markup: JSONDict | None
    options: JSONDict  # every other parameter: link_preview_options, reply_parameters, ...
    date: int
    reply_to_message_id: int | None = None
    caption: str | None = None
    document: JSONDict | None = None
    history: list[str | None] = field(default_factory=list)  # earlier texts, before each edit
    deleted: bool = False
    message: JSONDict = field(default_factory=dict)  # the Message object as Telegram returned it


@dataclass
class ChatAction:
    """One sendChatAction call."""

    chat_id: int
    action: str
    time: float
    message_thread_id: int | None = None


@dataclass
class Fault:
    """A failure plan for one method (or "*"), created by TelegramTestServer.inject."""

    method: str
    status: int | None
    retry_after: int | None
    description: str | None
    times: int | None  # how many calls to fail; None = unlimited
    rate: float | None  # probability that a call fails; None = every call
    delay: float
    after: int  # let this many matching calls through first
    disconnect: bool
    rng: random.Random = field(repr=False)
    seen: int = 0
    fired: int = 0

    def active(self) -> bool:
        return self.times is None or self.fired < self.times

    def _decide(self) -> bool:
        if not self.active():
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        if self.rate is not None and self.rng.random() >= self.rate:
            return False
        self.fired += 1
        return True


class ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: JSONDict | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    content: bytes
    file_size: int
    file_name: str | None
    mime_type: str | None
    file_path: str | None = None


@dataclass
class ChatState:
    chat: JSONDict
    next_message_id: int = 1
    messages: dict[int, JSONDict] = field(default_factory=dict)
    blocked: bool = False  # private chats: the user blocked the bot


@dataclass
class Upload:
    filename: str | None
    content_type: str | None
    content: bytes


@dataclass
class Request:
    params: JSONDict
    files: dict[str, Upload]


@dataclass
class Poller:
    future: asyncio.Future[str]


def coerce(name: str, value: Any) -> Any:
    """Give a form-encoded parameter the type Telegram reads it as, or raise a 400."""
    if isinstance(value, str):
        if name == "chat_id":
            return int(value) if re.fullmatch(r"-?\d+", value.strip()) else value
        if name in _INT_PARAMS:
            try:
                return int(value)
            except ValueError:
                raise bad_request(f"invalid {name} specified") from None
        if name in _FLOAT_PARAMS:
            try:
                return float(value)
            except ValueError:
                raise bad_request(f"invalid {name} specified") from None
        if name in _BOOL_PARAMS:
            return value.strip().lower() in ("true", "1")
        if name in _JSON_PARAMS:
            if not value:
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {_JSON_PARAMS[name]} JSON object") from None
    if name in _INT_PARAMS and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def allowed_set(value: Any) -> frozenset[str] | None:
    if not value:
        return None  # an empty list means "the default set"
    if not isinstance(value, list):
        raise bad_request("can't parse allowed updates JSON object")
    return frozenset(str(v) for v in value)


def check_reply_markup(markup: Any) -> JSONDict | None:
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        if not {"keyboard", "remove_keyboard", "force_reply"} & markup.keys():
            raise bad_request("can't parse reply keyboard markup JSON object")
        return markup
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise bad_request("can't parse inline keyboard button: Text must be non-empty")
            if not _INLINE_BUTTON_ACTIONS & button.keys():
                raise bad_request(
                    "can't parse inline keyboard button: "
                    "Text buttons are unallowed in the inline keyboard"
                )
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode("utf-8")) <= (
                MAX_CALLBACK_DATA_BYTES
            ):
                raise bad_request("BUTTON_DATA_INVALID")
            url = button.get("url")
            if url is not None and normalize_url(str(url)) is None:
                raise bad_request("BUTTON_URL_INVALID")
    return markup


def document_dict(stored: StoredFile) -> JSONDict:
    document: JSONDict = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.file_size,
    }
    if stored.file_name:
        document["file_name"] = stored.file_name
    if stored.mime_type:
        document["mime_type"] = stored.mime_type
    return document

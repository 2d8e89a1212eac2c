"""A local Telegram Bot API server for tests: `TelegramTestServer`, and what it records.

server.py   lifecycle and HTTP (routing, auth, parameters, injected faults)
methods.py  the Bot API methods the bot calls
users.py    what users do (messages, edits, files, media, button presses) as updates
observe.py  what tests inspect and wait for
state.py    the shared state under one lock
records.py  wire rules (parameter types, keyboards, limits) and the records kept
text.py     Telegram's text handling: HTML entities and their errors, UTF-16 lengths
"""

from tests.support.telegram_server.records import (
    DEFAULT_GROUP_ID,
    DEFAULT_USER_ID,
    MAX_DOWNLOAD_SIZE,
    ApiCall,
    ChatAction,
    Fault,
    SentMessage,
)
from tests.support.telegram_server.server import TelegramTestServer
from tests.support.telegram_server.text import (
    MAX_CAPTION_LENGTH,
    MAX_MESSAGE_LENGTH,
    EntityParseError,
    parse_html,
    render_text,
    utf16_len,
)

__all__ = [
    "DEFAULT_GROUP_ID",
    "DEFAULT_USER_ID",
    "MAX_CAPTION_LENGTH",
    "MAX_DOWNLOAD_SIZE",
    "MAX_MESSAGE_LENGTH",
    "ApiCall",
    "ChatAction",
    "EntityParseError",
    "Fault",
    "SentMessage",
    "TelegramTestServer",
    "parse_html",
    "render_text",
    "utf16_len",
]

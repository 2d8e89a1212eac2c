"""A local Telegram Bot API server that real python-telegram-bot clients can be tested against."""

# Telegram itself is unreachable from the test machines, and mocking PTB's Bot object would
# skip exactly the parts that break in production: serialisation, HTTP error mapping, long
# polling, HTML parse errors and flood control. This module speaks the documented Bot API
# (https://core.telegram.org/bots/api) over real HTTP on 127.0.0.1 instead, so the unmodified
# `telegram.ext.Application` can run against it, in-process or in a subprocess:
#
#     with TelegramTestServer() as server:
#         app = (ApplicationBuilder().token(server.token).base_url(server.base_url)
#                .base_file_url(server.base_file_url).build())
#
# Parsing rules and error texts follow Telegram's server (tdlib's text parsers) where they are
# known; where Telegram is lenient about something its documentation forbids (a bare "&" in HTML)
# the server is strict by default, so that tests catch formatting bugs early.

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import logging
import mimetypes
import random
import re
import secrets
import socket
import string
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

from aiohttp import web

__all__ = [
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
    "parse_markdown",
    "parse_markdown_v2",
    "render_text",
    "utf16_len",
]

JSONDict = dict[str, Any]
_T = TypeVar("_T")

# Only method names and status codes are ever logged: the bot token is part of every URL path.
logger = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 4096  # UTF-16 code units of the text left after entity parsing
MAX_CAPTION_LENGTH = 1024
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024  # getFile refuses bigger files ("file is too big")
MAX_UPLOAD_SIZE = 50 * 1024 * 1024  # multipart uploads a bot may make
MAX_CALLBACK_DATA_BYTES = 64

DEFAULT_USER_ID = 1001
DEFAULT_GROUP_ID = -1001000000001


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_TOKEN_RE = re.compile(r"\d+:[A-Za-z0-9_-]+")
_SPACE = frozenset(" \t\r\n\v\f")

# getUpdates without allowed_updates delivers every type except these three (Bot API docs).
_DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_CHAT_ACTIONS = _words(
    "typing upload_photo record_video upload_video record_voice upload_voice "
    "upload_document choose_sticker find_location record_video_note upload_video_note"
)
_INLINE_BUTTON_ACTIONS = _words(
    "url callback_data web_app login_url switch_inline_query "
    "switch_inline_query_current_chat switch_inline_query_chosen_chat copy_text "
    "callback_game pay"
)
_HTTP_PHRASES = {
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
_INT_PARAMS = _words(
    "offset limit message_id reply_to_message_id user_id cache_time message_thread_id "
    "max_connections"
)
_FLOAT_PARAMS = frozenset({"timeout"})
_BOOL_PARAMS = _words(
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


# --------------------------------------------------------------------------------------------
# Text: UTF-16 lengths, parse modes and automatically detected entities
# --------------------------------------------------------------------------------------------


class EntityParseError(ValueError):
    """A parse-mode error; the message is the detail after "can't parse entities: "."""


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit of Telegram's offsets and limits."""
    return len(text.encode("utf-16-le")) // 2


def _u16(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def _byte_offset(text: str, index: int) -> int:
    # Telegram reports parse errors at UTF-8 byte offsets of the text the bot sent.
    return len(text[:index].encode("utf-8"))


class _TextBuilder:
    """The parsed text under construction plus the entities found so far."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0  # UTF-16 length of the text so far
        self.entities: list[JSONDict] = []

    def add(self, chunk: str) -> None:
        self.parts.append(chunk)
        self.pos += utf16_len(chunk)

    def mark(self) -> int:
        return len(self.parts)

    def since(self, mark: int) -> str:
        return "".join(self.parts[mark:])

    def entity(self, type_: str, offset: int, end: int | None = None, **extra: Any) -> None:
        length = (self.pos if end is None else end) - offset
        if length > 0:  # Telegram drops empty entities instead of failing
            self.entities.append({"type": type_, "offset": offset, "length": length, **extra})

    def result(self) -> tuple[str, list[JSONDict]]:
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), self.entities


_URL_WITH_SCHEME = re.compile(r"(?i)(https?|tg|ton|ftp)://[^\s]+")
_BARE_DOMAIN = re.compile(
    r"(?i)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)*\.[a-z]{2,}(?:[/?#]\S*)?"
)


def _normalize_url(url: str) -> str | None:
    """The URL Telegram would keep for a text link, or None when it would drop the link."""
    url = url.strip()
    if _URL_WITH_SCHEME.fullmatch(url):
        return url
    if _BARE_DOMAIN.fullmatch(url):
        return f"http://{url}"
    return None


# --- HTML -----------------------------------------------------------------------------------

# tg-time (date_time entities) joined the supported tags recently; PTB 22.7+ parses them.
_HTML_TAGS = _words(
    "a b strong i em u ins s strike del span tg-spoiler code pre blockquote tg-emoji tg-time"
)
_HTML_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
    "tg-time": "date_time",
}
_NAMED_HTML_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_DATE_TIME_FORMAT = re.compile(r"r|w?[dD]?[tT]?")


def _decode_html_entity(text: str, pos: int, *, strict: bool) -> tuple[str, int] | None:
    """Decode the character reference at ``text[pos] == "&"``: (character, next index)."""
    n = len(text)
    end = pos + 1
    if end < n and text[end] == "#":
        end += 1
        is_hex = end < n and text[end] in "xX"
        if is_hex:
            end += 1
        digits_start = end
        alphabet = string.hexdigits if is_hex else string.digits
        while end < n and text[end] in alphabet:
            end += 1
        if end == digits_start or end - pos >= 10:
            return None
        code = int(text[digits_start:end], 16 if is_hex else 10)
        if code == 0 or code >= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None
        char = chr(code)
    else:
        while end < n and text[end].isascii() and text[end].isalpha():
            end += 1
        named = _NAMED_HTML_ENTITIES.get(text[pos + 1 : end])
        if named is None:
            return None
        char = named
    if end < n and text[end] == ";":
        return char, end + 1
    # Telegram also decodes "&lt" without the semicolon; the documented form has one.
    return None if strict else (char, end)


@dataclass
class _OpenTag:
    name: str
    attrs: dict[str, str]
    offset: int
    mark: int


def _parse_html_start_tag(source: str, begin: int) -> tuple[str, dict[str, str], int]:
    """Parse ``<name attr="v" ...>`` starting at ``begin``; returns name, attributes, next index."""
    n = len(source)
    where = _byte_offset(source, begin)
    i = begin + 1
    while i < n and source[i] not in _SPACE and source[i] != ">":
        i += 1
    if i >= n:
        raise EntityParseError(f"Unclosed start tag at byte offset {where}")
    name = source[begin + 1 : i].lower()
    if name not in _HTML_TAGS:
        raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {where}')
    attrs: dict[str, str] = {}
    while True:
        while i < n and source[i] in _SPACE:
            i += 1
        if i >= n:
            raise EntityParseError(f'Unclosed start tag "{name}" at byte offset {where}')
        if source[i] == ">":
            return name, attrs, i + 1
        attr_start = i
        while i < n and source[i] not in _SPACE and source[i] not in "=>":
            i += 1
        attr = source[attr_start:i].lower()
        if not attr:
            raise EntityParseError(
                f'Empty attribute name in the tag "{name}" at byte offset {where}'
            )
        while i < n and source[i] in _SPACE:
            i += 1
        if i < n and source[i] != "=":
            # The only value-less attribute Telegram knows is <blockquote expandable>.
            if name == "blockquote" and attr == "expandable":
                attrs[attr] = ""
                continue
            raise EntityParseError(
                "Expected equal sign in declaration of an attribute of the tag "
                f'"{name}" at byte offset {where}'
            )
        i += 1
        while i < n and source[i] in _SPACE:
            i += 1
        if i >= n:
            raise EntityParseError(f'Unclosed start tag "{name}" at byte offset {where}')
        if source[i] in "'\"":
            quote = source[i]
            i += 1
            value: list[str] = []
            while i < n and source[i] != quote:
                decoded = _decode_html_entity(source, i, strict=False) if source[i] == "&" else None
                if decoded is not None:
                    value.append(decoded[0])
                    i = decoded[1]
                else:
                    value.append(source[i])
                    i += 1
            if i >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {where}")
            i += 1
            attrs.setdefault(attr, "".join(value))
        else:
            token_start = i
            while i < n and ((source[i].isascii() and source[i].isalnum()) or source[i] in ".-"):
                i += 1
            if i < n and source[i] not in _SPACE and source[i] != ">":
                where_token = _byte_offset(source, token_start)
                raise EntityParseError(f"Unexpected end of name token at byte offset {where_token}")
            attrs.setdefault(attr, source[token_start:i].lower())


def _check_html_tag(name: str, attrs: dict[str, str], where: int) -> None:
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {where}')
    if name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
        raise EntityParseError("Invalid custom emoji identifier specified")
    if name == "tg-time":
        if not attrs.get("unix", "").isdigit():
            raise EntityParseError(f'Tag "tg-time" must have a valid "unix" at byte offset {where}')
        if not _DATE_TIME_FORMAT.fullmatch(attrs.get("format", "")):
            raise EntityParseError(f'Invalid "format" of tag "tg-time" at byte offset {where}')


def _close_html_tag(out: _TextBuilder, tag: _OpenTag) -> None:
    extra: dict[str, Any] = {}
    type_ = _HTML_TYPES[tag.name]
    if tag.name == "pre":
        # <pre><code class="language-x">...</code></pre> is one pre entity with a language.
        last = out.entities[-1] if out.entities else None
        if (
            last is not None
            and last["type"] == "code"
            and last["offset"] == tag.offset
            and last["offset"] + last["length"] == out.pos
        ):
            out.entities.pop()
            if last.get("_language"):
                extra["language"] = last["_language"]
    elif tag.name == "code":
        css_class = tag.attrs.get("class", "")
        if css_class.startswith("language-") and len(css_class) > len("language-"):
            extra["_language"] = css_class[len("language-") :]
    elif tag.name == "a":
        url = _normalize_url(tag.attrs.get("href") or out.since(tag.mark))
        if url is None:
            return  # Telegram silently drops links whose URL it can't use
        extra["url"] = url
    elif tag.name == "blockquote" and "expandable" in tag.attrs:
        type_ = "expandable_blockquote"
    elif tag.name == "tg-emoji":
        extra["custom_emoji_id"] = tag.attrs["emoji-id"]
    elif tag.name == "tg-time":
        extra["unix_time"] = int(tag.attrs["unix"])
        if tag.attrs.get("format"):
            extra["date_time_format"] = tag.attrs["format"]
    out.entity(type_, tag.offset, **extra)


def parse_html(source: str, *, strict: bool = True) -> tuple[str, list[JSONDict]]:
    """Parse Telegram's HTML parse mode into (text, entities), raising EntityParseError.

    With ``strict`` (the default) every "&" must start one of the documented entities (&lt;
    &gt; &amp; &quot; or a numeric one, with its semicolon) as the Bot API docs require; Telegram
    itself passes an unmatched "&" through literally, which ``strict=False`` reproduces.
    """
    out = _TextBuilder()
    stack: list[_OpenTag] = []
    n = len(source)
    i = 0
    while i < n:
        char = source[i]
        if char == "&":
            decoded = _decode_html_entity(source, i, strict=strict)
            if decoded is not None:
                out.add(decoded[0])
                i = decoded[1]
                continue
            if strict:
                raise EntityParseError(
                    f'Unescaped "&" or unsupported HTML entity at byte offset '
                    f"{_byte_offset(source, i)}; only &lt; &gt; &amp; &quot; and numeric "
                    "entities are supported"
                )
        if char != "<":
            out.add(char)
            i += 1
            continue
        where = _byte_offset(source, i)
        if i + 1 < n and source[i + 1] == "/":
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {where}")
            name_start = i = i + 2
            while i < n and source[i] not in _SPACE and source[i] != ">":
                i += 1
            end_name = source[name_start:i].lower()
            while i < n and source[i] in _SPACE:
                i += 1
            if i >= n or source[i] != ">":
                raise EntityParseError(f"Unclosed end tag at byte offset {where}")
            i += 1
            tag = stack.pop()
            if end_name and end_name != tag.name:
                raise EntityParseError(
                    f'Unmatched end tag at byte offset {where}, expected "</{tag.name}>", '
                    f'found "</{end_name}>"'
                )
            _close_html_tag(out, tag)
            continue
        name, attrs, i = _parse_html_start_tag(source, i)
        _check_html_tag(name, attrs, where)
        stack.append(_OpenTag(name, attrs, out.pos, out.mark()))
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    text, entities = out.result()
    for entity in entities:
        entity.pop("_language", None)  # a standalone <code> can't carry a language
    return text, entities


# --- MarkdownV2 -----------------------------------------------------------------------------

_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MD_TYPE_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}
_CUSTOM_EMOJI_URL = re.compile(r"tg://emoji\?id=(\d+)")


@dataclass
class _MdOpen:
    kind: str
    offset: int
    where: int  # byte offset of the opening marker, for error messages
    mark: int
    language: str = ""


def _reserved(char: str) -> EntityParseError:
    return EntityParseError(
        f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
    )


def _skip_one_newline(source: str, i: int) -> int:
    # Telegram drops one line break right after the opening ``` (and its language).
    if i < len(source) and source[i] in "\r\n":
        if i + 1 < len(source) and source[i + 1] in "\r\n" and source[i] != source[i + 1]:
            return i + 2
        return i + 1
    return i


def _md_closes(kind: str, source: str, i: int) -> bool:
    char = source[i]
    if kind == "bold":
        return char == "*"
    if kind == "italic":
        return char == "_" and not source.startswith("__", i)
    if kind == "underline":
        return source.startswith("__", i)
    if kind == "strikethrough":
        return char == "~"
    if kind == "spoiler":
        return source.startswith("||", i)
    if kind == "code":
        return char == "`"
    if kind == "pre":
        return source.startswith("```", i)
    return char == "]"  # text_link, custom_emoji


def _md_read_url(source: str, i: int) -> tuple[str, int]:
    """Read a "(url)" body starting after "(": returns url and the index of ")" or len."""
    url: list[str] = []
    while i < len(source) and source[i] != ")":
        if source[i] == "\\" and i + 1 < len(source) and 0 < ord(source[i + 1]) <= 126:
            url.append(source[i + 1])
            i += 2
            continue
        url.append(source[i])
        i += 1
    return "".join(url), i


def parse_markdown_v2(source: str) -> tuple[str, list[JSONDict]]:
    """Parse Telegram's MarkdownV2 parse mode into (text, entities), raising EntityParseError."""
    out = _TextBuilder()
    stack: list[_MdOpen] = []
    quote: _MdOpen | None = None
    n = len(source)
    i = 0
    while i < n:
        char = source[i]
        in_code = bool(stack) and stack[-1].kind in ("code", "pre")
        if not in_code and (i == 0 or source[i - 1] == "\n"):
            # ">" lines form one quotation; "**>" (an empty bold, then ">") starts a new one.
            marker = 3 if source.startswith("**>", i) else 1 if char == ">" else 0
            if quote is not None and marker != 1:  # it ended with the previous line's "\n"
                out.entity(quote.kind, quote.offset, out.pos - 1)
                quote = None
            if marker:
                if quote is None:
                    quote = _MdOpen("blockquote", out.pos, _byte_offset(source, i), out.mark())
                i += marker
                continue
        if char == "\\" and i + 1 < n and 0 < ord(source[i + 1]) <= 126:
            out.add(source[i + 1])
            i += 2
            continue
        if char != "`" and (in_code or char not in _MDV2_RESERVED):
            out.add(char)
            i += 1
            continue
        if (
            quote is not None
            and source.startswith("||", i)
            and (i + 2 == n or source[i + 2] == "\n")
            and not (stack and stack[-1].kind == "spoiler")
        ):
            # "||" ending a quoted line marks the quotation as expandable.
            out.entity("expandable_blockquote", quote.offset)
            quote = None
            i += 2
            continue
        if stack and _md_closes(stack[-1].kind, source, i):
            entity = stack.pop()
            extra: dict[str, Any] = {}
            keep = True
            if entity.kind in ("underline", "spoiler"):
                i += 1
            elif entity.kind == "pre":
                i += 2
                if entity.language:
                    extra["language"] = entity.language
            elif entity.kind == "text_link":
                if source.startswith("(", i + 1):
                    url_start = i + 2
                    url, i = _md_read_url(source, url_start)
                    if i >= n:
                        where = _byte_offset(source, url_start)
                        raise EntityParseError(f"Can't find end of a URL at byte offset {where}")
                else:
                    url = out.since(entity.mark)
                normalized = _normalize_url(url)
                keep = normalized is not None
                extra["url"] = normalized
            elif entity.kind == "custom_emoji":
                if not source.startswith("(", i + 1):
                    raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
                url_start = i + 2
                url, i = _md_read_url(source, url_start)
                if i >= n:
                    where = _byte_offset(source, url_start)
                    raise EntityParseError(
                        f"Can't find end of a custom emoji URL at byte offset {where}"
                    )
                match = _CUSTOM_EMOJI_URL.fullmatch(url)
                if match is None:
                    raise EntityParseError("Invalid custom emoji URL specified")
                extra["custom_emoji_id"] = match.group(1)
            if keep:
                out.entity(entity.kind, entity.offset, **extra)
            i += 1
            continue
        where = _byte_offset(source, i)
        language = ""
        if char == "_":
            kind = "underline" if source.startswith("__", i) else "italic"
            i += 2 if kind == "underline" else 1
        elif char == "*":
            kind, i = "bold", i + 1
        elif char == "~":
            kind, i = "strikethrough", i + 1
        elif char == "|" and source.startswith("||", i):
            kind, i = "spoiler", i + 2
        elif char == "[":
            kind, i = "text_link", i + 1
        elif char == "!" and source.startswith("![", i):
            kind, i = "custom_emoji", i + 2
        elif char == "`" and source.startswith("```", i):
            kind = "pre"
            i += 3
            lang_end = i
            while lang_end < n and source[lang_end] not in _SPACE and source[lang_end] != "`":
                lang_end += 1
            if i != lang_end and lang_end < n and source[lang_end] != "`":
                language, i = source[i:lang_end], lang_end
            i = _skip_one_newline(source, i)
        elif char == "`":
            kind, i = "code", i + 1
        else:
            raise _reserved(char)
        stack.append(_MdOpen(kind, out.pos, where, out.mark(), language))
    if quote is not None:
        out.entity(quote.kind, quote.offset)
    if stack:
        name = _MD_TYPE_NAMES[stack[-1].kind]
        if stack[-1].kind == "pre" and stack[-1].language:
            name = "PreCode"
        raise EntityParseError(f"Can't find end of {name} entity at byte offset {stack[-1].where}")
    return out.result()


# --- legacy Markdown ------------------------------------------------------------------------


def parse_markdown(source: str) -> tuple[str, list[JSONDict]]:
    """Parse Telegram's legacy Markdown parse mode into (text, entities)."""
    out = _TextBuilder()
    n = len(source)
    i = 0
    while i < n:
        char = source[i]
        if char == "\\" and i + 1 < n and source[i + 1] in "_*`[":
            out.add(source[i + 1])
            i += 2
            continue
        if char not in "_*`[":
            out.add(char)
            i += 1
            continue
        begin = i
        end_char = "]" if char == "[" else char
        is_pre = char == "`" and source.startswith("```", i)
        language = ""
        i += 1
        if is_pre:
            i += 2
            lang_end = i
            while lang_end < n and source[lang_end] not in _SPACE and source[lang_end] != "`":
                lang_end += 1
            if i != lang_end and lang_end < n and source[lang_end] != "`":
                language, i = source[i:lang_end], lang_end
            i = _skip_one_newline(source, i)
        offset, mark = out.pos, out.mark()
        while i < n and (source[i] != end_char or (is_pre and not source.startswith("```", i))):
            out.add(source[i])
            i += 1
        if i >= n:
            raise EntityParseError(
                "Can't find end of the entity starting at byte offset "
                f"{_byte_offset(source, begin)}"
            )
        if char == "_":
            out.entity("italic", offset)
        elif char == "*":
            out.entity("bold", offset)
        elif is_pre:
            if language:
                out.entity("pre", offset, language=language)
            else:
                out.entity("pre", offset)
        elif char == "`":
            out.entity("code", offset)
        else:
            url = out.since(mark)
            if source.startswith("(", i + 1):
                url_chars: list[str] = []
                i += 2
                while i < n and source[i] != ")":
                    url_chars.append(source[i])
                    i += 1
                url = "".join(url_chars)
            normalized = _normalize_url(url)
            if normalized is not None:
                out.entity("text_link", offset, url=normalized)
        i += 3 if is_pre else 1
    return out.result()


# --- entities Telegram finds by itself, trimming, and the public entry point ----------------

_AUTO_ENTITY_PATTERNS = (
    ("url", re.compile(r"(?i)\bhttps?://[^\s<>\"]+")),
    ("bot_command", re.compile(r"(?<![\w/@])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")),
    ("mention", re.compile(r"(?<![\w@/])@[A-Za-z0-9_]{3,32}(?![\w@])")),
)
# Automatic entities never appear inside these.
_OPAQUE_ENTITIES = frozenset({"code", "pre", "text_link", "custom_emoji", "url", "date_time"})


def detect_entities(text: str, existing: list[JSONDict] | None = None) -> list[JSONDict]:
    """Return ``existing`` plus the url / bot_command / mention entities Telegram adds itself."""
    prefix = [0]
    for char in text:
        prefix.append(prefix[-1] + _u16(char))
    taken = [
        (e["offset"], e["offset"] + e["length"])
        for e in existing or []
        if e["type"] in _OPAQUE_ENTITIES
    ]
    found: list[JSONDict] = []
    for type_, pattern in _AUTO_ENTITY_PATTERNS:
        for match in pattern.finditer(text):
            value = match.group()
            if type_ == "url":
                value = value.rstrip(".,;:!?'")
                if value.endswith(")") and value.count("(") < value.count(")"):
                    value = value[:-1]
            start = prefix[match.start()]
            end = prefix[match.start() + len(value)]
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            taken.append((start, end))
            found.append({"type": type_, "offset": start, "length": end - start})
    merged = [*(existing or []), *found]
    merged.sort(key=lambda e: (e["offset"], -e["length"]))
    return merged


def _trim(text: str, entities: list[JSONDict]) -> tuple[str, list[JSONDict]]:
    # Telegram strips leading and trailing whitespace from message texts and captions.
    stripped = text.strip(" \t\r\n\v\f")
    if not stripped:
        return "", []
    lead = utf16_len(text[: len(text) - len(text.lstrip(" \t\r\n\v\f"))])
    size = utf16_len(stripped)
    kept: list[JSONDict] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, size)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


def render_text(
    text: str,
    parse_mode: str | None = None,
    entities: list[JSONDict] | None = None,
    *,
    strict_html: bool = True,
) -> tuple[str, list[JSONDict]]:
    """Turn what a bot sends into the (text, entities) Telegram stores, as sendMessage does.

    Explicit ``entities`` win over ``parse_mode`` as in Telegram. Raises EntityParseError for
    malformed markup and ValueError("unsupported parse_mode") for unknown parse modes.
    """
    if entities is not None:
        plain, found = text, [dict(e) for e in entities]
    elif not parse_mode:
        plain, found = text, []
    elif parse_mode.lower() == "html":
        plain, found = parse_html(text, strict=strict_html)
    elif parse_mode.lower() == "markdownv2":
        plain, found = parse_markdown_v2(text)
    elif parse_mode.lower() == "markdown":
        plain, found = parse_markdown(text)
    else:
        raise ValueError("unsupported parse_mode")
    plain, found = _trim(plain, found)
    return plain, detect_entities(plain, found)


# --------------------------------------------------------------------------------------------
# Records handed to tests
# --------------------------------------------------------------------------------------------


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


class _ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: JSONDict | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def _bad_request(detail: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {detail}")


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    content: bytes
    file_size: int
    file_name: str | None
    mime_type: str | None
    file_path: str | None = None


@dataclass
class _ChatState:
    chat: JSONDict
    next_message_id: int = 1
    messages: dict[int, JSONDict] = field(default_factory=dict)
    blocked: bool = False  # private chats: the user blocked the bot


@dataclass
class _Upload:
    filename: str | None
    content_type: str | None
    content: bytes


@dataclass
class _Request:
    params: JSONDict
    files: dict[str, _Upload]


@dataclass
class _Poller:
    future: asyncio.Future[str]


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class TelegramTestServer:
    """A Telegram Bot API server on 127.0.0.1 running in its own thread and event loop.

    Bot side: point python-telegram-bot at ``base_url`` / ``base_file_url``. User side:
    ``add_*`` methods queue the updates Telegram would produce. Inspection: ``calls``,
    ``sent_messages``, ``chat_actions``, ``wait_for`` / ``wait_for_async``. Faults: ``inject``.
    Every public method is thread-safe and non-blocking unless it says it waits.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        bot_username: str = "dossier_test_bot",
        bot_first_name: str = "Dossier Test",
        privacy_mode: bool = False,
        strict_html: bool = True,
        seed: int = 0,
        first_update_id: int = 100_000,
    ) -> None:
        """Create a stopped server; ``start()`` (or ``with``) runs it.

        ``privacy_mode`` mimics BotFather's group privacy: group messages that neither start
        with "/" nor mention the bot nor reply to it are stored but not delivered. It is off by
        default so tests exercise the bot's own filtering. ``strict_html``: see parse_html.
        """
        if token is None:
            token = f"7000000001:{secrets.token_urlsafe(27)[:35]}"
        if not _TOKEN_RE.fullmatch(token):
            raise ValueError("token must look like '<bot id>:<secret>'")
        self._token = token
        self.strict_html = strict_html
        self.privacy_mode = privacy_mode
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
        self._pollers: list[_Poller] = []
        self._webhook: JSONDict = {"url": ""}
        self._chats: dict[int, _ChatState] = {}
        self._users: dict[int, JSONDict] = {}
        self._member_status: dict[tuple[int, int], str] = {}
        self._calls: list[ApiCall] = []
        self._sent: list[SentMessage] = []
        self._sent_index: dict[tuple[int, int], SentMessage] = {}
        self._actions: list[ChatAction] = []
        self._callback_queries: dict[str, JSONDict] = {}
        self._callback_answers: list[JSONDict] = []
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._faults: list[Fault] = []
        self._counter = itertools.count(1)

        self._handlers: dict[str, tuple[str, Callable[[_Request], Awaitable[Any]]]] = {}
        for name, handler in (
            ("getMe", self._get_me),
            ("getUpdates", self._get_updates),
            ("setWebhook", self._set_webhook),
            ("deleteWebhook", self._delete_webhook),
            ("getWebhookInfo", self._get_webhook_info),
            ("sendMessage", self._send_message),
            ("editMessageText", self._edit_message_text),
            ("editMessageReplyMarkup", self._edit_message_reply_markup),
            ("deleteMessage", self._delete_message),
            ("sendChatAction", self._send_chat_action),
            ("sendDocument", self._send_document),
            ("setMyCommands", self._set_my_commands),
            ("getMyCommands", self._get_my_commands),
            ("deleteMyCommands", self._delete_my_commands),
            ("answerCallbackQuery", self._answer_callback_query),
            ("getFile", self._get_file),
            ("getChat", self._get_chat),
            ("getChatMember", self._get_chat_member),
            ("close", self._close),
            ("logOut", self._log_out),
        ):
            self._handlers[name.lower()] = (name, handler)

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # ---- lifecycle ---------------------------------------------------------------------

    @property
    def token(self) -> str:
        return self._token

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``; only valid once started."""
        if self._port is None:
            raise RuntimeError("the server is not running; call start() first")
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)`` / ``Bot(base_url=...)``."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url(...)`` / ``Bot(base_file_url=...)``."""
        return f"{self.url}/file/bot"

    @property
    def bot_user(self) -> JSONDict:
        return dict(self._bot_user)

    @property
    def bot_username(self) -> str:
        return str(self._bot_user["username"])

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Self:
        """Start serving on a free port of 127.0.0.1 in a background thread."""
        if self.running:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._serve, args=(ready, failure), name="telegram-test-server", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the Telegram test server did not start within 10 s")
        if failure:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError("the Telegram test server failed to start") from failure[0]
        logger.info("Telegram test server listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving; pending long polls are answered with an empty result first."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
        self._thread = None
        self._loop = None
        self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        # start()/stop() block for a moment; keep the caller's loop free meanwhile.
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.stop)

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _startup(self) -> None:
        app = web.Application(client_max_size=MAX_UPLOAD_SIZE + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        # access_log=None: aiohttp's access log would print the token-bearing URL path.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def _shutdown(self) -> None:
        self._wake_pollers("shutdown")
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- HTTP layer --------------------------------------------------------------------

    @staticmethod
    def _json(status: int, payload: JSONDict) -> web.Response:
        return web.json_response(payload, status=status)

    @classmethod
    def _error(
        cls, status: int, description: str, parameters: JSONDict | None = None
    ) -> web.Response:
        payload: JSONDict = {"ok": False, "error_code": status, "description": description}
        if parameters:
            payload["parameters"] = parameters
        return cls._json(status, payload)

    def _auth_error(self, token: str) -> web.Response | None:
        if token == self._token:
            return None
        # Telegram: a well-formed but wrong token is 401, a malformed one 404.
        if _TOKEN_RE.fullmatch(token):
            return self._error(401, "Unauthorized")
        return self._error(404, "Not Found")

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        denied = self._auth_error(request.match_info["token"])
        if denied is not None:
            logger.info("Bot API request with a wrong token refused")
            return denied
        raw_method = request.match_info["method"]
        entry = self._handlers.get(raw_method.lower())
        if entry is None:
            self._record_call(raw_method, {}, request.method, status=404, description="Not Found")
            logger.info("unknown Bot API method %r", raw_method[:64])
            return self._error(404, "Not Found")
        name, handler = entry
        try:
            params, files = await self._read_params(request)
        except _ApiError as exc:
            self._record_call(name, {}, request.method, exc.status, exc.description)
            return self._error(exc.status, exc.description)
        summary = {**params}
        for key, upload in files.items():
            summary[key] = {
                "filename": upload.filename,
                "content_type": upload.content_type,
                "size": len(upload.content),
            }
        call = self._record_call(name, summary, request.method)
        fault = self._pick_fault(name)
        try:
            if fault is not None and fault.delay:
                await asyncio.sleep(fault.delay)
            if fault is not None and fault.disconnect:
                self._finish_call(call, 0, "connection dropped", injected=True)
                logger.debug("%s: injected disconnect", name)
                if request.transport is not None:
                    request.transport.close()
                return web.Response(status=500)  # never reaches the closed connection
            if fault is not None and fault.status is not None:
                description, parameters = self._fault_reply(fault)
                self._finish_call(call, fault.status, description, injected=True)
                logger.debug("%s -> %d (injected)", name, fault.status)
                return self._error(fault.status, description, parameters)
            result = await handler(_Request(params, files))
        except _ApiError as exc:
            self._finish_call(call, exc.status, exc.description)
            logger.debug("%s -> %d", name, exc.status)
            return self._error(exc.status, exc.description, exc.parameters)
        except Exception:
            logger.exception("internal error while handling %s", name)
            self._finish_call(call, 500, "Internal Server Error")
            return self._error(500, "Internal Server Error")
        self._finish_call(call, 200, None)
        logger.debug("%s -> 200", name)
        return self._json(200, {"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        denied = self._auth_error(request.match_info["token"])
        if denied is not None:
            return denied
        with self._lock:
            stored = self._files_by_path.get(request.match_info["path"])
        if stored is None:
            return self._error(404, "Not Found")
        logger.debug("file download -> 200")
        return web.Response(
            body=stored.content, content_type=stored.mime_type or "application/octet-stream"
        )

    @staticmethod
    async def _read_params(request: web.Request) -> tuple[JSONDict, dict[str, _Upload]]:
        params: JSONDict = dict(request.query)
        files: dict[str, _Upload] = {}
        if request.body_exists:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise _bad_request("can't parse JSON object") from None
                if not isinstance(body, dict):
                    raise _bad_request("JSON object expected")
                params.update(body)
            elif request.content_type in (
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            ):
                try:
                    form = await request.post()
                except web.HTTPRequestEntityTooLarge:
                    raise _ApiError(413, "Request Entity Too Large") from None
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = _Upload(value.filename, value.content_type, value.file.read())
                    elif isinstance(value, bytes | bytearray):
                        params[key] = bytes(value).decode("utf-8", "replace")
                    else:
                        params[key] = value
        return {key: _coerce(key, value) for key, value in params.items()}, files

    # ---- bookkeeping -------------------------------------------------------------------

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

    def _pick_fault(self, method: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method in ("*", method.lower()) and fault._decide():
                    return fault
        return None

    @staticmethod
    def _fault_reply(fault: Fault) -> tuple[str, JSONDict | None]:
        status = fault.status or 500
        if status == 429:
            retry_after = fault.retry_after if fault.retry_after is not None else 1
            description = fault.description or f"Too Many Requests: retry after {retry_after}"
            return description, {"retry_after": retry_after}
        description = fault.description or _HTTP_PHRASES.get(status, "Error")
        return description, None

    # ---- Bot API methods ---------------------------------------------------------------

    async def _get_me(self, req: _Request) -> JSONDict:
        return {
            **self._bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, req: _Request) -> list[JSONDict]:
        params = req.params
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        with self._lock:
            if self._webhook["url"]:
                raise _ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            if "allowed_updates" in params:
                self._allowed_updates = _allowed_set(params["allowed_updates"])
            # Any getUpdates terminates a long poll still waiting (two bot instances).
            for poller in self._pollers:
                if not poller.future.done():
                    poller.future.set_result("conflict")
            self._pollers.clear()
            self._confirm(offset)
            batch = copy.deepcopy(self._updates[:limit])
            if batch or timeout <= 0:
                return batch
            poller = _Poller(asyncio.get_running_loop().create_future())
            self._pollers.append(poller)
        try:
            done, _ = await asyncio.wait({poller.future}, timeout=timeout)
        finally:
            with self._lock:
                if poller in self._pollers:
                    self._pollers.remove(poller)
        if done and poller.future.result() == "conflict":
            raise _ApiError(
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

    def _wake_pollers(self, reason: str = "update") -> None:
        # Runs on the server loop (futures are not thread-safe).
        with self._lock:
            pollers = list(self._pollers)
        for poller in pollers:
            if not poller.future.done():
                poller.future.set_result(reason)

    async def _set_webhook(self, req: _Request) -> bool:
        url = str(req.params.get("url") or "")
        if url and not url.lower().startswith("https://"):
            raise _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        with self._lock:
            if req.params.get("drop_pending_updates"):
                self._updates.clear()
            if "allowed_updates" in req.params:
                self._allowed_updates = _allowed_set(req.params["allowed_updates"])
            self._webhook = {
                "url": url,
                **{k: v for k, v in req.params.items() if k not in ("url", "certificate")},
            }
            self._notify()
        return True

    async def _delete_webhook(self, req: _Request) -> bool:
        with self._lock:
            if req.params.get("drop_pending_updates"):
                self._updates.clear()
            self._webhook = {"url": ""}
            self._notify()
        return True

    async def _get_webhook_info(self, req: _Request) -> JSONDict:
        return self.webhook_info()

    async def _send_message(self, req: _Request) -> JSONDict:
        params = req.params
        with self._lock:
            state = self._resolve_chat(params.get("chat_id"))
            source = params.get("text")
            if source is None or source == "":
                raise _bad_request("message text is empty")
            source = str(source)
            text, entities = self._render(source, params.get("parse_mode"), params.get("entities"))
            if not text:
                raise _bad_request("message text is empty")
            if utf16_len(text) > MAX_MESSAGE_LENGTH:
                raise _bad_request("message is too long")
            markup = _check_reply_markup(params.get("reply_markup"))
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

    async def _send_document(self, req: _Request) -> JSONDict:
        params = req.params
        with self._lock:
            state = self._resolve_chat(params.get("chat_id"))
            stored = self._document_from_request(req)
            caption_source = params.get("caption")
            caption: str | None = None
            caption_entities: list[JSONDict] = []
            if caption_source:
                caption, caption_entities = self._render(
                    str(caption_source), params.get("parse_mode"), params.get("caption_entities")
                )
                if utf16_len(caption) > MAX_CAPTION_LENGTH:
                    raise _bad_request("message caption is too long")
            markup = _check_reply_markup(params.get("reply_markup"))
            reply_to = self._resolve_reply(state, params)
            message = self._new_message(state, self._bot_user, reply_to=reply_to)
            message["document"] = _document_dict(stored)
            if caption:
                message["caption"] = caption
                if caption_entities:
                    message["caption_entities"] = caption_entities
            if markup is not None and "inline_keyboard" in markup:
                message["reply_markup"] = markup
            self._record_sent(
                "sendDocument", state, message, params, source=caption_source, document=stored
            )
            return copy.deepcopy(message)

    def _document_from_request(self, req: _Request) -> _StoredFile:
        value = req.params.get("document")
        upload = req.files.get("document")
        if isinstance(value, str) and value.startswith("attach://"):
            upload = req.files.get(value[len("attach://") :])
            value = None
        if upload is not None:
            if not upload.content:
                raise _bad_request("file must be non-empty")
            return self._store_file(
                upload.content, upload.filename, upload.content_type, len(upload.content)
            )
        if isinstance(value, str) and value:
            if value in self._files:
                return self._files[value]
            if value.lower().startswith(("http://", "https://")):
                # Telegram would fetch the URL; from the test machine that never works.
                raise _bad_request("failed to get HTTP URL content")
            raise _bad_request("wrong file identifier/HTTP URL specified")
        raise _bad_request("there is no document in the request")

    async def _edit_message_text(self, req: _Request) -> JSONDict | bool:
        params = req.params
        with self._lock:
            state, message = self._resolve_editable(params)
            if "text" not in message:
                raise _bad_request("there is no text in the message to edit")
            source = params.get("text")
            if source is None or source == "":
                raise _bad_request("message text is empty")
            source = str(source)
            text, entities = self._render(source, params.get("parse_mode"), params.get("entities"))
            if not text:
                raise _bad_request("message text is empty")
            if utf16_len(text) > MAX_MESSAGE_LENGTH:
                raise _bad_request("message is too long")
            markup = _check_reply_markup(params.get("reply_markup"))
            # Omitting reply_markup removes an inline keyboard, as on Telegram.
            new_markup = markup if markup is not None and "inline_keyboard" in markup else None
            if (
                text == message.get("text")
                and entities == message.get("entities", [])
                and new_markup == message.get("reply_markup")
            ):
                raise _bad_request(
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

    async def _edit_message_reply_markup(self, req: _Request) -> JSONDict | bool:
        with self._lock:
            state, message = self._resolve_editable(req.params)
            markup = _check_reply_markup(req.params.get("reply_markup"))
            new_markup = markup if markup is not None and "inline_keyboard" in markup else None
            if new_markup == message.get("reply_markup"):
                raise _bad_request(
                    "message is not modified: specified new message content and reply markup "
                    "are exactly the same as a current content and reply markup of the message"
                )
            message.pop("reply_markup", None)
            if new_markup is not None:
                message["reply_markup"] = new_markup
            message["edit_date"] = int(time.time())
            sent = self._sent_index.get((state.chat["id"], message["message_id"]))
            if sent is not None:
                sent.reply_markup = copy.deepcopy(markup)
                sent.message = copy.deepcopy(message)
            self._notify()
            return copy.deepcopy(message)

    def _resolve_editable(self, params: JSONDict) -> tuple[_ChatState, JSONDict]:
        if params.get("inline_message_id"):
            raise _bad_request("message to edit not found")  # no inline mode here
        state = self._resolve_chat(params.get("chat_id"))
        message_id = params.get("message_id")
        if message_id is None:
            raise _bad_request("message identifier is not specified")
        message = state.messages.get(message_id)
        if message is None:
            raise _bad_request("message to edit not found")
        if message.get("from", {}).get("id") != self._bot_user["id"]:
            raise _bad_request("message can't be edited")
        return state, message

    async def _delete_message(self, req: _Request) -> bool:
        with self._lock:
            state = self._resolve_chat(req.params.get("chat_id"))
            message = state.messages.pop(req.params.get("message_id") or 0, None)
            if message is None:
                raise _bad_request("message to delete not found")
            sent = self._sent_index.get((state.chat["id"], message["message_id"]))
            if sent is not None:
                sent.deleted = True
            self._notify()
        return True

    async def _send_chat_action(self, req: _Request) -> bool:
        with self._lock:
            state = self._resolve_chat(req.params.get("chat_id"))
            action = req.params.get("action")
            if action not in _CHAT_ACTIONS:
                raise _bad_request("wrong parameter action in request")
            self._actions.append(
                ChatAction(
                    state.chat["id"], action, time.time(), req.params.get("message_thread_id")
                )
            )
            self._notify()
        return True

    async def _set_my_commands(self, req: _Request) -> bool:
        commands = req.params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad_request("can't parse bot commands JSON object")
        for command in commands:
            name = command.get("command") if isinstance(command, dict) else None
            description = command.get("description") if isinstance(command, dict) else None
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        with self._lock:
            self._commands[self._commands_key(req.params)] = [
                {"command": c["command"], "description": c["description"]} for c in commands
            ]
            self._notify()
        return True

    async def _get_my_commands(self, req: _Request) -> list[JSONDict]:
        with self._lock:
            return copy.deepcopy(self._commands.get(self._commands_key(req.params), []))

    async def _delete_my_commands(self, req: _Request) -> bool:
        with self._lock:
            self._commands.pop(self._commands_key(req.params), None)
            self._notify()
        return True

    @staticmethod
    def _commands_key(params: JSONDict) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    async def _answer_callback_query(self, req: _Request) -> bool:
        query_id = str(req.params.get("callback_query_id") or "")
        with self._lock:
            if self._callback_queries.pop(query_id, None) is None:
                # Unknown ids and second answers to the same query both get this.
                raise _bad_request(
                    "query is too old and response timeout expired or query ID is invalid"
                )
            self._callback_answers.append({"callback_query_id": query_id, **req.params})
            self._notify()
        return True

    async def _get_file(self, req: _Request) -> JSONDict:
        file_id = str(req.params.get("file_id") or "")
        with self._lock:
            stored = self._files.get(file_id)
            if stored is None:
                raise _bad_request("invalid file_id")
            if stored.file_size > MAX_DOWNLOAD_SIZE:
                raise _bad_request("file is too big")
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

    async def _get_chat(self, req: _Request) -> JSONDict:
        with self._lock:
            state = self._resolve_chat(req.params.get("chat_id"), for_sending=False)
            return {
                **copy.deepcopy(state.chat),
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }

    async def _get_chat_member(self, req: _Request) -> JSONDict:
        with self._lock:
            state = self._resolve_chat(req.params.get("chat_id"), for_sending=False)
            user_id = req.params.get("user_id")
            if user_id == self._bot_user["id"]:
                user = self._bot_user
            elif isinstance(user_id, int) and user_id in self._users:
                user = self._users[user_id]
            else:
                raise _bad_request("user not found")
            chat_id = state.chat["id"]
            if state.chat["type"] == "private" and user_id not in (chat_id, self._bot_user["id"]):
                raise _bad_request("member not found")
            status = self._member_status.get((chat_id, user["id"]), "member")
            return _chat_member(status, user)

    async def _close(self, req: _Request) -> bool:
        return True  # recorded in calls() like every request; the server keeps serving

    async def _log_out(self, req: _Request) -> bool:
        return True

    # ---- helpers shared by the methods (call with the lock held) -------------------------

    def _render(self, source: str, parse_mode: Any, entities: Any) -> tuple[str, list[JSONDict]]:
        if entities is not None and not isinstance(entities, list):
            raise _bad_request("can't parse entities JSON object")
        try:
            return render_text(
                source,
                str(parse_mode) if parse_mode else None,
                entities,
                strict_html=self.strict_html,
            )
        except EntityParseError as exc:
            raise _bad_request(f"can't parse entities: {exc}") from None
        except ValueError:
            raise _bad_request("unsupported parse_mode") from None

    def _resolve_chat(self, chat_id: Any, *, for_sending: bool = True) -> _ChatState:
        if chat_id is None or chat_id == "":
            raise _bad_request("chat_id is empty")
        state: _ChatState | None = None
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
            raise _bad_request("chat not found")
        if for_sending and state.blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        return state

    def _resolve_reply(self, state: _ChatState, params: JSONDict) -> JSONDict | None:
        reply = params.get("reply_parameters")
        if reply is None and params.get("reply_to_message_id") is not None:
            reply = {
                "message_id": params["reply_to_message_id"],
                "allow_sending_without_reply": params.get("allow_sending_without_reply", False),
            }
        if reply is None:
            return None
        if not isinstance(reply, dict) or "message_id" not in reply:
            raise _bad_request("can't parse reply parameters JSON object")
        target = state
        if reply.get("chat_id") not in (None, state.chat["id"]):
            target = self._resolve_chat(_coerce("chat_id", reply["chat_id"]), for_sending=False)
        message = target.messages.get(_coerce("message_id", reply["message_id"]))
        if message is None:
            if reply.get("allow_sending_without_reply"):
                return None
            raise _bad_request("message to be replied not found")
        return message

    def _new_message(
        self, state: _ChatState, sender: JSONDict, *, reply_to: JSONDict | None = None
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

    def _record_sent(
        self,
        method: str,
        state: _ChatState,
        message: JSONDict,
        params: JSONDict,
        *,
        source: Any,
        document: _StoredFile | None = None,
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
            document=_document_dict(document) if document is not None else None,
            message=copy.deepcopy(message),
        )
        self._sent.append(sent)
        self._sent_index[(sent.chat_id, sent.message_id)] = sent
        self._notify()

    def _store_file(
        self,
        content: bytes,
        file_name: str | None,
        mime_type: str | None,
        file_size: int,
    ) -> _StoredFile:
        number = next(self._counter)
        stored = _StoredFile(
            file_id=f"BQACAgIAAxkBAAI{number:06d}{secrets.token_urlsafe(24)}",
            file_unique_id=f"AgAD{number:04d}{secrets.token_urlsafe(6)}",
            content=content,
            file_size=file_size,
            file_name=file_name,
            mime_type=mime_type or (mimetypes.guess_type(file_name or "")[0]),
        )
        self._files[stored.file_id] = stored
        return stored

    # ---- user side: producing updates --------------------------------------------------

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

        bot_command / mention / url entities are added as Telegram does. Returns the Update;
        in privacy mode an undeliverable message is stored but not queued and the returned
        dict has no "update_id".
        """
        with self._lock:
            user = self._ensure_user(user_id, first_name, username, None, None)
            state = self._group_chat(chat_id, title, chat_type, None)
            message = self._user_message(state, user, text, entities, reply_to_message_id)
            if self.privacy_mode and not self._privacy_allows(message):
                return {"message": copy.deepcopy(message)}
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
            user = self._ensure_user(user_id, None, None, None, None)
            state = self._private_chat(user) if chat_id is None else self._chats.get(chat_id)
            if state is None:
                raise ValueError(f"unknown chat {chat_id}; add_group() or add_user() first")
            if reply_to_message_id is None:
                reply_to_message_id = self._last_bot_message_id(state)
            message = self._user_message(state, user, text, None, reply_to_message_id)
            if (
                self.privacy_mode
                and state.chat["type"] != "private"
                and not self._privacy_allows(message)
            ):
                return {"message": copy.deepcopy(message)}
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
            user = self._ensure_user(user_id, None, None, None, None)
            state = self._private_chat(user) if chat_id is None else self._chats.get(chat_id)
            if state is None:
                raise ValueError(f"unknown chat {chat_id}; add_group() or add_user() first")
            stored = self._store_file(
                content, file_name, mime_type, len(content) if file_size is None else file_size
            )
            message = self._new_message(state, user)
            message["document"] = _document_dict(stored)
            if caption:
                message["caption"] = caption
                caption_entities = detect_entities(caption)
                if caption_entities:
                    message["caption_entities"] = caption_entities
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
            user = self._ensure_user(user_id, None, None, None, None)
            state = self._private_chat(user) if chat_id is None else self._chats.get(chat_id)
            if state is None:
                raise ValueError(f"unknown chat {chat_id}")
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
        """A user edits one of their earlier text messages."""
        with self._lock:
            state = self._chats.get(chat_id)
            message = state.messages.get(message_id) if state is not None else None
            if message is None or message["from"]["id"] == self._bot_user["id"]:
                raise ValueError("no such user message")
            message["text"] = text
            message.pop("entities", None)
            entities = detect_entities(text)
            if entities:
                message["entities"] = entities
            message["edit_date"] = int(time.time())
            return self._enqueue({"edited_message": message})

    def add_update(self, update: JSONDict) -> JSONDict:
        """Queue any other update payload (without update_id); returns it with its id."""
        with self._lock:
            return self._enqueue(copy.deepcopy(update))

    def block_bot(self, user_id: int = DEFAULT_USER_ID, blocked: bool = True) -> None:
        """The user blocks the bot: sends to their chat fail with 403 Forbidden."""
        with self._lock:
            user = self._ensure_user(user_id, None, None, None, None)
            self._private_chat(user).blocked = blocked

    def set_member_status(self, chat_id: int, user_id: int, status: str) -> None:
        """What getChatMember reports: member, administrator, creator, left or kicked."""
        if status not in ("member", "administrator", "creator", "left", "kicked"):
            raise ValueError(f"unsupported status {status!r}")
        with self._lock:
            self._member_status[(chat_id, user_id)] = status

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

    def _private_chat(self, user: JSONDict) -> _ChatState:
        state = self._chats.get(user["id"])
        if state is None:
            chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
            for key in ("last_name", "username"):
                if key in user:
                    chat[key] = user[key]
            state = self._chats[user["id"]] = _ChatState(chat)
        return state

    def _group_chat(
        self, chat_id: int, title: str, chat_type: str, username: str | None
    ) -> _ChatState:
        if chat_type not in ("group", "supergroup"):
            raise ValueError("chat_type must be 'group' or 'supergroup'")
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        state = self._chats.get(chat_id)
        if state is None:
            chat: JSONDict = {"id": chat_id, "type": chat_type, "title": title}
            if username:
                chat["username"] = username
            state = self._chats[chat_id] = _ChatState(chat)
        return state

    def _user_message(
        self,
        state: _ChatState,
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

    def _last_bot_message_id(self, state: _ChatState) -> int:
        for message in reversed(state.messages.values()):
            if message["from"]["id"] == self._bot_user["id"]:
                return int(message["message_id"])
        raise ValueError(f"the bot has sent nothing to chat {state.chat['id']} yet")

    def _privacy_allows(self, message: JSONDict) -> bool:
        # BotFather: with privacy on, a bot only gets messages that start with "/" or mention it
        # by username, plus replies to its own messages. Commands for other bots are not sent.
        text = message.get("text", "")
        me = self.bot_username.lower()
        reply = message.get("reply_to_message")
        if reply is not None and reply["from"]["id"] == self._bot_user["id"]:
            return True
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            return "@" not in command or command.split("@", 1)[1].lower() == me
        return f"@{me}" in text.lower()

    def _enqueue(self, payload: JSONDict) -> JSONDict:
        update_type = next(iter(payload))
        update = {"update_id": self._next_update_id, **copy.deepcopy(payload)}
        self._next_update_id += 1
        allowed = self._allowed_updates
        # allowed_updates only affects updates created after it was set, as documented.
        if (allowed is None and update_type in _DEFAULT_EXCLUDED_UPDATES) or (
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

    # ---- inspection --------------------------------------------------------------------

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

    def file_content(self, file_id: str) -> bytes:
        with self._lock:
            return self._files[file_id].content

    def _sent_snapshot(self, chat_id: int | None, include_deleted: bool) -> list[SentMessage]:
        return [
            copy.deepcopy(m)
            for m in self._sent
            if (chat_id is None or m.chat_id == chat_id) and (include_deleted or not m.deleted)
        ]

    # ---- waiting -----------------------------------------------------------------------

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

    # ---- fault injection ---------------------------------------------------------------

    def inject(
        self,
        method: str,
        *,
        status: int | None = None,
        retry_after: int | None = None,
        description: str | None = None,
        times: int | None = None,
        rate: float | None = None,
        seed: int | None = None,
        delay: float = 0.0,
        after: int = 0,
        disconnect: bool = False,
    ) -> Fault:
        """Make calls of ``method`` ("*" = any) fail, stall, or drop the connection.

        ``status`` answers with that HTTP error (429 adds ``parameters.retry_after``, default
        1 s; 502 says "Bad Gateway"; ``description`` overrides the text). ``delay`` sleeps
        first: alone it makes a slow but successful call, and a client that times out meanwhile
        still gets its message delivered, as on Telegram. ``disconnect`` closes the connection
        without answering. ``times`` limits how many calls are affected (default 1 without
        ``rate``, unlimited with it); ``rate`` affects that fraction of calls using a
        random.Random(``seed``); ``after`` lets that many calls through first. A failed call
        never has effects, so no message is delivered. Plans are tried in injection order.
        """
        if status is None and not delay and not disconnect:
            raise ValueError("inject needs status=, delay= or disconnect=True")
        if status is not None and not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error code")
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if times is None and rate is None:
            times = 1
        fault = Fault(
            method=method if method == "*" else method.lower(),
            status=status,
            retry_after=retry_after,
            description=description,
            times=times,
            rate=rate,
            delay=delay,
            after=after,
            disconnect=disconnect,
            rng=random.Random(self._seed if seed is None else seed),
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()


# --------------------------------------------------------------------------------------------
# Module helpers
# --------------------------------------------------------------------------------------------


def _coerce(name: str, value: Any) -> Any:
    """Give a form-encoded parameter the type Telegram reads it as, or raise a 400."""
    if isinstance(value, str):
        if name == "chat_id":
            return int(value) if re.fullmatch(r"-?\d+", value.strip()) else value
        if name in _INT_PARAMS:
            try:
                return int(value)
            except ValueError:
                raise _bad_request(f"invalid {name} specified") from None
        if name in _FLOAT_PARAMS:
            try:
                return float(value)
            except ValueError:
                raise _bad_request(f"invalid {name} specified") from None
        if name in _BOOL_PARAMS:
            return value.strip().lower() in ("true", "1")
        if name in _JSON_PARAMS:
            if not value:
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise _bad_request(f"can't parse {_JSON_PARAMS[name]} JSON object") from None
    if name in _INT_PARAMS and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _allowed_set(value: Any) -> frozenset[str] | None:
    if not value:
        return None  # an empty list means "the default set"
    if not isinstance(value, list):
        raise _bad_request("can't parse allowed updates JSON object")
    return frozenset(str(v) for v in value)


def _check_reply_markup(markup: Any) -> JSONDict | None:
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        if not {"keyboard", "remove_keyboard", "force_reply"} & markup.keys():
            raise _bad_request("can't parse reply keyboard markup JSON object")
        return markup
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise _bad_request("can't parse inline keyboard button: Text must be non-empty")
            if not _INLINE_BUTTON_ACTIONS & button.keys():
                raise _bad_request(
                    "can't parse inline keyboard button: "
                    "Text buttons are unallowed in the inline keyboard"
                )
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode("utf-8")) <= (
                MAX_CALLBACK_DATA_BYTES
            ):
                raise _bad_request("BUTTON_DATA_INVALID")
            url = button.get("url")
            if url is not None and _normalize_url(str(url)) is None:
                raise _bad_request("BUTTON_URL_INVALID")
    return markup


def _document_dict(stored: _StoredFile) -> JSONDict:
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


def _chat_member(status: str, user: JSONDict) -> JSONDict:
    member: JSONDict = {"status": status, "user": copy.deepcopy(user)}
    if status == "creator":
        member["is_anonymous"] = False
    elif status == "administrator":
        member.update(
            can_be_edited=False,
            is_anonymous=False,
            can_manage_chat=True,
            can_delete_messages=True,
            can_manage_video_chats=True,
            can_restrict_members=True,
            can_promote_members=False,
            can_change_info=True,
            can_invite_users=True,
            can_post_stories=False,
            can_edit_stories=False,
            can_delete_stories=False,
        )
    elif status == "kicked":
        member["until_date"] = 0
    return member

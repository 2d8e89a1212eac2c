"""What Telegram makes of a message's text: HTML parsed into entities (with its errors),
UTF-16 lengths, and the entities it detects by itself (links, commands, mentions).

Parsing rules and error texts follow Telegram's server (tdlib's text parsers) where they are
known; where Telegram is lenient about something its documentation forbids (a bare "&" in
HTML) the parser is strict by default, so that tests catch formatting bugs early. Only HTML
is parsed: the bot sends nothing else.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

JSONDict = dict[str, Any]

MAX_MESSAGE_LENGTH = 4096  # UTF-16 code units of the text left after entity parsing
MAX_CAPTION_LENGTH = 1024
_SPACE = frozenset(" \t\r\n\v\f")


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


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


def normalize_url(url: str) -> str | None:
    """The URL Telegram would keep for a text link, or None when it would drop the link."""
    url = url.strip()
    if _URL_WITH_SCHEME.fullmatch(url):
        return url
    if _BARE_DOMAIN.fullmatch(url):
        return f"http://{url}"
    return None



# tg-time (date_time entities) joined the supported tags recently; PTB 22.7+ parses them.
_HTML_TAGS = words(
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
        url = normalize_url(tag.attrs.get("href") or out.since(tag.mark))
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
    else:
        raise ValueError("unsupported parse_mode")
    plain, found = _trim(plain, found)
    return plain, detect_entities(plain, found)

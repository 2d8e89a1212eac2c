"""Spotting text in articles that talks to an AI instead of a reader (prompt injection)."""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata

# Phrases that address a model, fake a conversation turn, or try to change its rules.
# News prose almost never contains them; when it does (a story about prompt injection),
# losing that sentence from an answer is the cheaper mistake.
_INSTRUCTION_LIKE = re.compile(
    r"""
    \b(?:ignore|disregard|forget|override)\b[^.!?\n]{0,40}\b(?:instructions?|prompts?|rules?|context)\b
    | \byou\s+are\s+now\b
    | \b(?:developer|jailbreak|god)\s+mode\b
    | \b(?:system\s+prompt|your\s+instructions|new\s+instructions)\b
    | (?:^|[\s>])(?:system|assistant|user|human|ai)\s*:\s
    | <\|?(?:im_start|im_end|system|assistant|user)\|?>
    | \[/?(?:INST|SYS|SYSTEM)\] | <</?SYS>>
    | (?:^|\s)\#{2,}\s*(?:instructions?|system|response|assistant|user|human)\b
    | \b(?:reply|respond|answer)\s+(?:to\s+)?(?:every|each|all)\s+
      (?:questions?|quer(?:y|ies)|requests?|messages?|prompts?)\b
    | \b(?:reply|respond|answer|say|output|print)\s+(?:only\s+)?(?:with\s+)?
      ["'“]?(?:[A-Z0-9]{3,}[-_][A-Z0-9-]+|(?=[A-Z]*\d)(?=\d*[A-Z])[A-Z0-9]{6,}\b)
    """,
    re.IGNORECASE | re.VERBOSE | re.MULTILINE,
)
# The same phrases with spaces and punctuation squeezed out ("Ignorepreviousinstructions",
# "i.g.n.o.r.e previous…"), matched against the letters of a sentence only.
_SQUEEZED = re.compile(
    r"(?:ignore|disregard|forget|override)(?:all|any|the|your|my)?"
    r"(?:previous|prior|above|earlier|preceding|former|original)"
    r"(?:instructions?|prompts?|rules?|context|directions?|guidelines?)"
    r"|systemprompt|developermode|jailbreakmode"
)
# Invisible characters used to hide or split instructions: zero-width and joiners, bidi
# controls, word joiners, variation selectors, fillers, soft hyphen.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e0fff]"
)
# Unicode "tag" characters spell ASCII invisibly (U+E0020-E007E); a model may still read them.
_TAGS = {cp: cp - 0xE0000 for cp in range(0xE0020, 0xE007F)}
# Letters from other scripts that look like Latin ones ("іgnore" with a Cyrillic і).
_LOOKALIKES = str.maketrans(
    "аеорсухіјѕһԁԛԝӏАВЕКМНОРСТХІЈЅοαειıκνρτυχΑΒΕΙΚΜΝΟΡΤΧΥΖ",
    "aeopcyxijshdqwlABEKMHOPCTXIJSoaeiiKvptuxABEIKMNOPTXYZ",
)
# What a chat client turns into a link by itself: URLs of any scheme, www. names, bare
# domains (with a path), e-mail addresses and @usernames. Articles may carry them; an answer
# must never make them clickable, and an LLM's prose must not carry them at all.
LINK_LIKE = re.compile(
    r"""
    \b[a-z][a-z0-9+.-]*://\S+
    | \bwww\d{0,3}\.\S+
    | [\w.+-]+@[\w-]+(?:\.[\w-]+)+
    | \b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}\b(?:/\S*)?
    | (?<![\w@])@[a-z0-9_]{3,32}\b
    """,
    re.IGNORECASE | re.VERBOSE,
)
# Markdown links and images, and HTML tags: markup, never news prose.
_MARKUP = re.compile(r"!?\[[^\]\n]*\]\([^)\n]*\)|<\s*[a-z/!][^>\n]*>", re.IGNORECASE)
# Runs that may be base64 text; short ones are words, not payloads.
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_MAX_DECODES = 4


def revealed(text: str) -> str:
    """What a model reads in `text`: tag characters spelled out, invisible characters gone,
    compatibility forms and look-alike letters folded to plain Latin."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text.translate(_TAGS))
    return _INVISIBLE.sub("", text).translate(_LOOKALIKES)


def _decoded_payloads(text: str) -> list[str]:
    """Printable text hidden in base64 runs of `text` (standard or URL-safe alphabet)."""
    found: list[str] = []
    for match in _BASE64.finditer(text):
        run = match.group()
        if not any(c.isdigit() or c in "+/=_-" for c in run) and run.isalpha() and (
            run.islower() or run.isupper()
        ):
            continue  # a long plain word
        padded = run.rstrip("=") + "=" * (-len(run.rstrip("=")) % 4)
        try:
            data = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
            decoded = data.decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        printable = sum(c.isprintable() or c.isspace() for c in decoded)
        if decoded and printable >= 0.95 * len(decoded):
            found.append(decoded)
        if len(found) >= _MAX_DECODES:
            break
    return found


def is_instruction_like(text: str, *, _depth: int = 0) -> bool:
    """True when a sentence reads as instructions to an AI rather than news, including
    instructions hidden by invisible characters, look-alike letters, squeezed-out spaces or
    base64."""
    plain = revealed(text)
    if _INSTRUCTION_LIKE.search(plain):
        return True
    letters = re.sub(r"[^a-z]", "", unicodedata.normalize("NFKD", plain).lower())
    if _SQUEEZED.search(letters):
        return True
    return _depth == 0 and any(
        is_instruction_like(payload, _depth=1) for payload in _decoded_payloads(plain)
    )


def mask_instructions(text: str, sentences: list[tuple[int, int]], offset: int) -> str:
    """`text` (starting at `offset` in its article) with instruction-like sentences replaced
    by a marker, so an LLM never reads them."""
    pieces: list[str] = []
    cursor = 0
    for start, end in sentences:
        a, b = start - offset, end - offset
        if 0 <= a < b <= len(text) and is_instruction_like(text[a:b]):
            pieces.append(text[cursor:a])
            pieces.append("[text removed]")
            cursor = b
    pieces.append(text[cursor:])
    return "".join(pieces)


def link_or_markup_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of every link-like or markup span of `text`."""
    spans = [m.span() for m in LINK_LIKE.finditer(text)]
    return sorted(spans + [m.span() for m in _MARKUP.finditer(text)])

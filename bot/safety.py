"""Spotting text in articles that talks to an AI instead of a reader (prompt injection)."""

from __future__ import annotations

import re

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
    | \[/?INST\]
    | \b(?:reply|respond|answer|say|output|print)\s+(?:only\s+)?(?:with\s+)?
      ["'“]?[A-Z0-9]{3,}[-_][A-Z0-9-]+
    """,
    re.IGNORECASE | re.VERBOSE | re.MULTILINE,
)
# Invisible characters used to hide instructions from a human reader.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")


def is_instruction_like(text: str) -> bool:
    """True when a sentence reads as instructions to an AI rather than news."""
    return bool(_INSTRUCTION_LIKE.search(_INVISIBLE.sub("", text)))


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

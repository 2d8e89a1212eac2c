"""Read what a model wrote, leniently and as it grows: JSON, a tool call, the text protocol,
or prose with inline quotes ("…" [n]), all into one ParsedReply."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.utils.json import parse_partial_json

from bot.prompts import CANNOT_ANSWER_MARKER

# A quote line of the text protocol: [2] "…", [2]: …, [2] - …
_QUOTE_LINE = re.compile(r"^\s*\[(\d+)\]\s*[:\-]?\s*(.+?)\s*$")
# A quote written inside the prose, straight or curly marks, then its passage marker.
_INLINE_QUOTE = re.compile(r"[\"“]([^\"“”\n]{8,}?)[\"”]\s*\[(\d+)\]")
_LABEL = re.compile(r"^\s*(ANSWER|QUOTES)\s*:\s*", re.IGNORECASE | re.MULTILINE)
_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$")


@dataclass
class ParsedReply:
    """The answer prose and the quotes the model claims (passage number, text) so far.

    `quotes_settled`: every quote the model will give for this answer has been read (they
    came before the prose, or the reply is complete), so a sentence whose quote is still
    missing will not get one later.
    """

    answer: str = ""
    quotes: list[tuple[int, str]] = field(default_factory=list)
    cannot_answer: bool = False
    quotes_settled: bool = False


def reply_text(message: BaseMessage) -> str:
    """A message's text, or the arguments of its first tool call when it made one."""
    if isinstance(message, AIMessageChunk) and message.tool_call_chunks:
        return message.tool_call_chunks[0].get("args") or ""
    tool_calls = getattr(message, "tool_calls", None)
    if tool_calls:
        return json.dumps(tool_calls[0]["args"])
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)


def parse_reply(text: str, *, final: bool = True) -> ParsedReply:
    """What `text` says so far; `final` when the model has finished writing it."""
    stripped = _FENCE.sub("", text.strip())
    if stripped.upper().startswith(CANNOT_ANSWER_MARKER):
        return ParsedReply(cannot_answer=True, quotes_settled=True)
    if stripped.startswith("{"):
        parsed = _parse_json(stripped, final=final)
        if parsed is not None:
            return parsed
    return _parse_text(text, final=final)


def _parse_json(text: str, *, final: bool) -> ParsedReply | None:
    """The `{quotes: [{passage, quote}], answer}` object, complete or cut short."""
    try:
        data = json.loads(text) if final else parse_partial_json(text)
    except ValueError:
        data = parse_partial_json(text)
    if not isinstance(data, dict):
        return None
    answer = data.get("answer")
    answer = answer if isinstance(answer, str) else ""
    found = data.get("quotes")
    items: list[object] = found if isinstance(found, list) else []
    # Quotes first (as the schema orders them): once the answer has begun they are all in.
    answer_after_quotes = '"answer"' in text and text.find('"answer"') > text.find('"quotes"')
    settled = final or answer_after_quotes
    if not settled:
        items = items[:-1]  # the last one may still be growing
    quotes: list[tuple[int, str]] = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("quote"), str):
            try:
                quotes.append((int(item.get("passage", 0)), item["quote"]))
            except (TypeError, ValueError):
                continue
    cannot = CANNOT_ANSWER_MARKER in answer or (final and not answer.strip() and not quotes)
    return ParsedReply(_inline(answer, quotes), quotes, cannot, settled)


def _parse_text(text: str, *, final: bool) -> ParsedReply:
    """The text protocol (ANSWER: / QUOTES: in either order), or plain prose."""
    sections: dict[str, str] = {}
    labels = list(_LABEL.finditer(text))
    for i, label in enumerate(labels):
        end = labels[i + 1].start() if i + 1 < len(labels) else len(text)
        sections.setdefault(label.group(1).upper(), text[label.end() : end])
    if not labels:
        sections["ANSWER"] = text
    elif labels[0].start() > 0 and "ANSWER" not in sections:
        sections["ANSWER"] = text[: labels[0].start()]
    quote_block = sections.get("QUOTES", "")
    quotes_done = final or (
        "QUOTES" in sections and "ANSWER" in sections
        and text.find("QUOTES") < text.find("ANSWER")
    )
    lines = quote_block.splitlines()
    if not quotes_done and not quote_block.endswith("\n"):
        lines = lines[:-1]  # the line being written
    quotes = []
    for line in lines:
        match = _QUOTE_LINE.match(line)
        if match:
            quotes.append((int(match.group(1)), match.group(2)))
    answer = sections.get("ANSWER", "").strip()
    return ParsedReply(_inline(answer, quotes), quotes, False, quotes_done)


def _inline(answer: str, quotes: list[tuple[int, str]]) -> str:
    """Add the quotes written inside the prose to `quotes`; the prose stays as written."""
    for match in _INLINE_QUOTE.finditer(answer):
        claim = (int(match.group(2)), match.group(1))
        if claim not in quotes:
            quotes.append(claim)
    return answer

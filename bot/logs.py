"""Logging that cannot be forged: outside strings escaped, and a JSON-lines format option."""

from __future__ import annotations

import json
import logging
import time
from typing import Any, TextIO

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROLS.update({0x2028: "\\u2028", 0x2029: "\\u2029"})
# In a quoted value the backslash is escaped too, so an escape in the value reads as one.
_IN_VALUE = {**_CONTROLS, ord("\\"): "\\\\", ord('"'): '\\"'}


def log_value(value: object, limit: int = 200) -> str:
    """A string from a user or a file (a name, a question, a caption) as it may be logged:
    quoted, control characters and line breaks escaped, so it cannot start a line of its
    own that looks like ours; long values cut."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return '"' + text.translate(_IN_VALUE) + '"'


class EscapingFormatter(logging.Formatter):
    """The text format, with any control character left in a message escaped too (a
    third-party library's, say); a traceback keeps its own line breaks."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).translate(_CONTROLS)


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the exception, if any.
    JSON escapes every control character, so a record is always exactly one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


class _OwnHandler(logging.StreamHandler):
    """The handler `configure_logging` installs (and may replace)."""


def configure_logging(log_format: str = "text", level: int | str = logging.INFO,
                      stream: TextIO | None = None) -> None:
    """Log to standard error in the chosen format. Other handlers are left alone; a second
    call (the bot after the command line) replaces the first one's handler."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _OwnHandler)]:
        root.removeHandler(handler)
    handler = _OwnHandler(stream)
    handler.setFormatter(JsonLinesFormatter() if log_format == "json"
                         else EscapingFormatter(_FORMAT))
    # On the handler too: a library that sets its own logger to DEBUG (bm25s does) would
    # otherwise reach standard error through it.
    handler.setLevel(level)
    root.addHandler(handler)
    root.setLevel(level)

"""The Telegram bot's guards: allowlists, rate limit, question and file caps, its secrets."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bot.errors import DossierError
from bot.settings import TelegramSettings

RATE_WINDOW_S = 60.0
TRACKED_USERS = 4096  # beyond this many, users who have gone quiet are forgotten
WEBHOOK_SECRET_ENV = "TELEGRAM_WEBHOOK_SECRET"
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
REDACTED = "[bot token]"

Refusal = Literal["empty", "too_long", "rate_limited"]


@dataclass(frozen=True)
class Verdict:
    """Whether a question may be answered; when not, why, and what to tell the user."""

    refusal: Refusal | None = None
    wait_s: int = 0  # rate_limited: seconds until the next question is accepted
    notify: bool = True  # rate_limited: False when the user was already told to wait

    @property
    def allowed(self) -> bool:
        return self.refusal is None


class SlidingWindowLimiter:
    """At most `limit` events per key within any `window_s` seconds."""

    def __init__(self, limit: int, window_s: float = RATE_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._events: dict[int, deque[float]] = {}

    def acquire(self, key: int) -> float:
        """Record an event and return 0.0, or return the seconds to wait (nothing recorded)."""
        now = self.clock()
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window_s:
            events.popleft()
        if len(events) >= self.limit:
            return events[0] + self.window_s - now
        events.append(now)
        if len(self._events) > TRACKED_USERS:
            cutoff = now - self.window_s
            self._events = {k: v for k, v in self._events.items() if v and v[-1] > cutoff}
        return 0.0


class AccessPolicy:
    """The Telegram settings' rules, applied before any work is done.

    Allowlists: when either list is non-empty, a message is served if its sender is an
    allowed user (in any chat) or it comes from an allowed chat (any member); admins always
    are. Others get one polite refusal per chat (per person in a group) for the life of the
    process, then silence.

    Rate limit: the first question over the limit is told how long to wait; the ones after
    it in the same stretch are counted, and `take_unanswered` hands the count over once,
    so the user hears how many went unanswered instead of nothing.
    """

    def __init__(self, settings: TelegramSettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.limiter = SlidingWindowLimiter(settings.questions_per_minute, RATE_WINDOW_S, clock)
        self._refused: set[tuple[int, int | None]] = set()
        self._told_to_wait_until: dict[int, float] = {}
        self._unanswered: dict[int, int] = {}

    @property
    def restricted(self) -> bool:
        return bool(self.settings.allowed_user_ids or self.settings.allowed_chat_ids)

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.settings.admin_user_ids

    def is_allowed(self, user_id: int | None, chat_id: int) -> bool:
        if not self.restricted or self.is_admin(user_id):
            return True
        return (user_id is not None and user_id in self.settings.allowed_user_ids) or (
            chat_id in self.settings.allowed_chat_ids
        )

    def first_refusal(self, chat_id: int, user_id: int | None = None) -> bool:
        """True the first time a chat (or one person in it) is refused, False afterwards."""
        key = (chat_id, user_id)
        if key in self._refused:
            return False
        self._refused.add(key)
        return True

    def take_unanswered(self, user_id: int) -> int:
        """How many of the user's questions went unanswered without a word (once)."""
        return self._unanswered.pop(user_id, 0)

    def check_question(self, user_id: int, question: str) -> Verdict:
        """Empty and over-long questions are refused first; they never count against the limit."""
        if not question.strip():
            return Verdict("empty")
        if len(question) > self.settings.max_question_chars:
            return Verdict("too_long")
        wait = self.limiter.acquire(user_id)
        if wait <= 0:
            self._told_to_wait_until.pop(user_id, None)
            return Verdict()
        now = self.clock()
        # One "please wait" per blocked stretch: repeating it would only add to the flood.
        notify = self._told_to_wait_until.get(user_id, -math.inf) <= now
        if notify:
            self._told_to_wait_until[user_id] = now + wait
        else:
            self._unanswered[user_id] = self._unanswered.get(user_id, 0) + 1
        return Verdict("rate_limited", wait_s=max(1, math.ceil(wait)), notify=notify)

    def document_too_big(self, size: int | None) -> bool:
        return size is not None and size > self.max_document_bytes

    @property
    def max_document_bytes(self) -> int:
        return int(self.settings.max_document_mb * 1024 * 1024)


class RedactToken(logging.Filter):
    """Removes the bot token from a record's message, arguments and traceback text."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.secrets = [token, token.split(":", 1)[-1]]  # the secret half alone, too

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what there is, redacted
            message = f"{record.msg} {record.args}"
        if any(secret in message for secret in self.secrets):
            record.msg, record.args = self._clean(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self._clean(record.stack_info)
        return True


def protect_token_in_logs(token: str) -> None:
    """httpx logs every request URL, which holds the token: quiet it and redact the rest."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactToken) and token in f.secrets for f in handler.filters):
            handler.addFilter(RedactToken(token))


def webhook_secret(token: str) -> str:
    """TELEGRAM_WEBHOOK_SECRET, else a value derived from the token (it is never sent)."""
    secret = os.environ.get(WEBHOOK_SECRET_ENV, "")
    if secret:
        if not _WEBHOOK_SECRET.fullmatch(secret):
            raise DossierError(
                f"{WEBHOOK_SECRET_ENV} may only hold 1-256 of A-Z a-z 0-9 _ -"
            )
        return secret
    return hashlib.sha256(f"dossier-webhook:{token}".encode()).hexdigest()

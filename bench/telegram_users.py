"""The users' side of the Telegram load run: the Bot API test server, its faults, the users'
questions on a schedule, and what they received, in a thread or in a process of its own."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from bot import prompts
from tests.support.telegram_server import TelegramTestServer

FIRST_USER = 500_000
QUESTIONS = [
    "what are the obstacles?",
    "which minerals are they talking about?",
    "why does China matter here?",
    "what is lithium used for?",
    "who confirmed the talks?",
    "what do environmental groups say?",
    "how will the projects be financed?",
    "what about the workforce?",
    "what role does the USMCA play?",
    "what does Mexico bring to the partnership?",
    "what does Canada bring to the partnership?",
    "what happens next?",
]
ERROR_LINES = {prompts.TG_ERROR, prompts.TG_UNAVAILABLE, prompts.TG_NO_INDEX}


@dataclass(frozen=True)
class LoadPlan:
    """Who asks what and when: users arrive evenly over `ramp_s`; each sends its questions
    `gap_s` apart (0 = at once, so that a chat has several questions waiting and its order
    is put to the test); answers are awaited for at most `budget_s`."""

    users: int
    questions_per_user: int = 3
    ramp_s: float = 10.0
    gap_s: float = 0.0
    budget_s: float = 600.0


@dataclass(frozen=True)
class FaultRates:
    """The share of sendMessage calls the test server fails on purpose."""

    rate_5xx: float = 0.05
    rate_429: float = 0.10
    retry_after: int = 1
    seed: int = 7


@dataclass
class LoadResult:
    """What the users saw, and how fast."""

    users: int
    questions_per_user: int
    questions: int
    answered: int
    lost: int
    duplicated: int
    error_replies: int
    chats_out_of_order: int
    seconds: float
    answers_per_s: float
    latency_ms: dict[str, float | None]
    send_attempts: int
    injected_5xx: int
    injected_429: int
    typing_actions: int  # "typing…" requests: the bot's other traffic besides the answers
    finished: bool  # every question answered before the time budget ran out
    server_cpu_s: float | None = None  # the users' side's CPU, when in a process of its own


def inject_faults(server: TelegramTestServer, rate_5xx: float, rate_429: float,
                  retry_after: int, seed: int) -> list[Any]:
    """sendMessage fails with 500 or 502 (half each) at `rate_5xx` and with 429 at `rate_429`
    overall (plans are tried in order, so the later rates are conditional)."""
    faults = []
    half = rate_5xx / 2
    if half > 0:
        faults.append(server.inject("sendMessage", status=500, rate=half, seed=seed))
        faults.append(server.inject("sendMessage", status=502, rate=half / (1 - half),
                                    seed=seed + 1))
    if rate_429 > 0:
        faults.append(server.inject("sendMessage", status=429, retry_after=retry_after,
                                    rate=min(1.0, rate_429 / (1 - rate_5xx)), seed=seed + 2))
    return faults


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (a latency that was measured, never an interpolation)."""
    return float(np.percentile(values, q, method="inverted_cdf")) if values else None


def drive_users(server: TelegramTestServer, plan: LoadPlan) -> LoadResult:
    """Send every user's questions on schedule, wait for the answers (or the budget), and
    count what the users received. Blocks: run it beside the bot, never on its loop."""
    ids = [FIRST_USER + i for i in range(plan.users)]
    for user in ids:
        server.add_user(user)
    schedule = sorted(
        (i * plan.ramp_s / max(plan.users, 1) + k * plan.gap_s, user,
         QUESTIONS[(i * plan.questions_per_user + k) % len(QUESTIONS)])
        for i, user in enumerate(ids) for k in range(plan.questions_per_user)
    )
    asked_at: dict[tuple[int, int], float] = {}
    asked_order: dict[int, list[int]] = defaultdict(list)
    started = time.time()
    finished = False
    for at, user, question in schedule:
        delay = started + at - time.time()
        if delay > 0:
            time.sleep(delay)
        message = server.add_private_message(question, user_id=user)["message"]
        asked_at[(user, message["message_id"])] = time.time()
        asked_order[user].append(message["message_id"])
    deadline = started + plan.budget_s
    while time.time() < deadline:
        replied = {(m.chat_id, m.reply_to_message_id) for m in server.sent_messages()}
        if all(key in replied for key in asked_at):
            finished = True
            break
        time.sleep(min(2.0, 0.2 + len(asked_at) / 2000))
    time.sleep(2.0)  # a late duplicate would arrive now
    return measure(server, asked_at, asked_order, plan, finished)


def measure(server: TelegramTestServer, asked_at: dict[tuple[int, int], float],
            asked_order: dict[int, list[int]], plan: LoadPlan, finished: bool) -> LoadResult:
    """Count what every user received, from the test server's records."""
    answers: dict[tuple[int, int], list[float]] = defaultdict(list)
    attempts = 0
    for call in server.calls("sendMessage"):
        attempts += 1
        reply = call.params.get("reply_parameters") or {}
        if call.status == 200 and reply.get("message_id") is not None:
            answers[(int(call.params["chat_id"]), int(reply["message_id"]))].append(call.time)
    sent = server.sent_messages()
    error_replies = sum(1 for m in sent if (m.text or "") in ERROR_LINES)
    got_order: dict[int, list[int]] = defaultdict(list)
    for m in sent:
        if m.reply_to_message_id is not None:
            got_order[m.chat_id].append(m.reply_to_message_id)
    out_of_order = 0
    for user, order in asked_order.items():
        # Each question's first answer, in the order the chat received them.
        firsts = [i for i in dict.fromkeys(got_order[user]) if i in order]
        out_of_order += firsts != [i for i in order if i in firsts]
    latencies = [(min(answers[key]) - at) * 1000 for key, at in asked_at.items() if answers[key]]
    answered = sum(1 for key in asked_at if answers[key])
    duplicated = sum(1 for key in asked_at if len(answers[key]) > 1)
    first_ask = min(asked_at.values()) if asked_at else 0.0
    last_answer = max((t for key in asked_at for t in answers[key]), default=first_ask)
    seconds = max(last_answer - first_ask, 1e-9)
    faults = [c for c in server.calls("sendMessage") if c.injected]
    return LoadResult(
        users=plan.users,
        questions_per_user=plan.questions_per_user,
        questions=len(asked_at),
        answered=answered,
        lost=len(asked_at) - answered,
        duplicated=duplicated,
        error_replies=error_replies,
        chats_out_of_order=out_of_order,
        seconds=round(seconds, 1),
        answers_per_s=round(answered / seconds, 2),
        latency_ms={name: None if v is None else round(v, 1) for name, v in (
            ("p50", percentile(latencies, 50)), ("p95", percentile(latencies, 95)),
            ("p99", percentile(latencies, 99)), ("max", max(latencies, default=None)))},
        send_attempts=attempts,
        injected_5xx=sum(1 for c in faults if c.status is not None and c.status >= 500),
        injected_429=sum(1 for c in faults if c.status == 429),
        typing_actions=len(server.chat_actions()),
        finished=finished,
    )


def _users_side(conn: Connection, plan: LoadPlan, faults: FaultRates) -> None:
    """Serve the Bot API with faults, say where, wait for "go", drive the users, send back
    what they received (the same code in a thread or in a child process)."""
    try:
        with TelegramTestServer(seed=faults.seed) as server:
            inject_faults(server, faults.rate_5xx, faults.rate_429, faults.retry_after,
                          faults.seed)
            conn.send((server.token, server.base_url, server.base_file_url))
            conn.recv()
            cpu = time.process_time()
            result = drive_users(server, plan)
            if multiprocessing.parent_process() is not None:  # else the bot's CPU too
                result.server_cpu_s = round(time.process_time() - cpu, 1)
            conn.send(asdict(result))
            conn.recv()  # serve until the bot has stopped polling
    except BaseException as exc:  # the bench's side learns why, instead of waiting forever
        conn.send(exc)
        raise


class Users:
    """The test server and the users, in a thread of the bot's process (`process=False`,
    so the server shares the bot's GIL) or in a child process (the bot's CPU alone is
    measured, as against the real Telegram)."""

    def __init__(self, plan: LoadPlan, faults: FaultRates, *, process: bool) -> None:
        self.process = process
        context = multiprocessing.get_context("spawn")  # the bot's threads are not forked
        self._conn, child = context.Pipe()
        target, args = _users_side, (child, plan, faults)
        self._runner: threading.Thread | multiprocessing.process.BaseProcess = (
            context.Process(target=target, args=args, name="telegram-users", daemon=True)
            if process else threading.Thread(target=target, args=args, daemon=True))
        self._runner.start()
        self.token, self.base_url, self.base_file_url = self._receive()

    def run(self) -> LoadResult:
        """Start the users and block until they are done; what they received."""
        self._conn.send("go")
        data = self._receive()
        return LoadResult(**data)

    def _receive(self) -> Any:
        message = self._conn.recv()
        if isinstance(message, BaseException):
            raise RuntimeError("the users' side failed") from message
        return message

    def close(self) -> None:
        """Stop the server once the bot is done with it (and the users' side, if a run
        failed)."""
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._runner.join(10)
        if isinstance(self._runner, multiprocessing.process.BaseProcess) and \
                self._runner.is_alive():
            self._runner.terminate()
            self._runner.join(10)

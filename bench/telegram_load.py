"""Many users at once through the real Telegram Application, with Bot API faults injected.

N simulated users each send their questions to the bot over the Bot API test server
(tests/telegram_server.py, real HTTP on 127.0.0.1); the bot is `build_application` with the
real extractive answerer over the seed article. sendMessage fails with 5xx (500/502) and 429
(retry_after) at the given rates. Reported: answers/s, latency from the user's message to
the bot's answer (p50/p95/p99), lost and duplicated answers, error replies, and whether every
chat got its answers in the order it asked.

    .venv/bin/python -m bench.telegram_load --users 100
    .venv/bin/python -m bench.telegram_load --users 1000 --budget-s 900

The test server runs in this process (its own thread and loop), so its work shares the two
cores with the bot's: the figures are a floor for a bot talking to the real Telegram.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent

from bot import prompts  # noqa: E402
from bot.factory import Dossier  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.telegram.app import build_application  # noqa: E402
from index.embeddings import SentenceEmbeddings  # noqa: E402
from tests.support.telegram_server import TelegramTestServer  # noqa: E402

SEED = ROOT / "corpus" / "mexico-canada-critical-minerals.txt"
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
    finished: bool  # every question answered before the time budget ran out


def ingest_seed(folder: Path, embedder: SentenceEmbeddings | None = None) -> tuple[Path, Path]:
    """The seed article ingested into an embedded Chroma under `folder`."""
    corpus, data = folder / "corpus", folder / "data"
    corpus.mkdir(parents=True, exist_ok=True)
    shutil.copy(SEED, corpus / SEED.name)
    dossier = Dossier(load_settings(data_dir=data, corpus={"path": corpus}), embedder=embedder)
    dossier.ingestor().run([corpus], corpus_root=corpus)
    return corpus, data


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


async def run_load(
    dossier: Dossier,
    server: TelegramTestServer,
    *,
    users: int,
    questions_per_user: int = 3,
    ramp_s: float = 10.0,
    gap_s: float = 0.0,
    budget_s: float = 600.0,
    persistence: Path,
) -> LoadResult:
    """Users arrive evenly over `ramp_s`; each sends its questions `gap_s` apart (0 = at once,
    so that a chat has several questions waiting and its order is put to the test)."""
    ids = [FIRST_USER + i for i in range(users)]
    for user in ids:
        server.add_user(user)
    schedule = sorted(
        (i * ramp_s / max(users, 1) + k * gap_s, user,
         QUESTIONS[(i * questions_per_user + k) % len(QUESTIONS)])
        for i, user in enumerate(ids) for k in range(questions_per_user)
    )
    asked_at: dict[tuple[int, int], float] = {}
    asked_order: dict[int, list[int]] = defaultdict(list)

    app = build_application(dossier, server.token, persistence_path=persistence)
    assert app.post_init is not None and app.updater is not None
    await app.initialize()
    await app.post_init(app)
    await app.start()
    await app.updater.start_polling(poll_interval=0, timeout=1)
    started = time.time()
    finished = False
    try:
        for at, user, question in schedule:
            delay = started + at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            message = server.add_private_message(question, user_id=user)["message"]
            asked_at[(user, message["message_id"])] = time.time()
            asked_order[user].append(message["message_id"])
        deadline = started + budget_s
        while time.time() < deadline:
            replied = {(m.chat_id, m.reply_to_message_id) for m in server.sent_messages()}
            if all(key in replied for key in asked_at):
                finished = True
                break
            await asyncio.sleep(min(2.0, 0.2 + len(asked_at) / 2000))
        await asyncio.sleep(2.0)  # a late duplicate would arrive now
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    return measure(server, asked_at, asked_order, users, questions_per_user, finished)


def measure(server: TelegramTestServer, asked_at: dict[tuple[int, int], float],
            asked_order: dict[int, list[int]], users: int, questions_per_user: int,
            finished: bool) -> LoadResult:
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
        users=users,
        questions_per_user=questions_per_user,
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
        finished=finished,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--questions", type=int, default=3, help="Questions per user.")
    parser.add_argument("--ramp-s", type=float, default=10.0,
                        help="Users arrive evenly over this many seconds.")
    parser.add_argument("--gap-s", type=float, default=0.0,
                        help="Seconds between one user's questions (0: all at once).")
    parser.add_argument("--rate-5xx", type=float, default=0.05)
    parser.add_argument("--rate-429", type=float, default=0.10)
    parser.add_argument("--retry-after", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--budget-s", type=float, default=600.0,
                        help="Stop waiting for answers after this long.")
    args = parser.parse_args()
    # An answer that fails is counted as an error reply; its traceback goes to standard
    # error so the count comes with its cause (delivery retries, WARNING, stay quiet).
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(name)s %(message)s")

    from bench.benchlib import PeakRSS, markdown_table, report  # psutil: only the script needs it

    with tempfile.TemporaryDirectory(prefix="telegram-load-") as folder:
        corpus, data = ingest_seed(Path(folder))
        with TelegramTestServer(seed=args.seed) as server:
            dossier = Dossier(load_settings(data_dir=data, corpus={"path": corpus}, telegram={
                "api_base_url": server.base_url, "file_base_url": server.base_file_url,
                # Each user asks `--questions` questions: the per-user limit is not under test.
                "questions_per_minute": max(10, args.questions),
            }))
            inject_faults(server, args.rate_5xx, args.rate_429, args.retry_after, args.seed)
            cpu = time.process_time()
            with PeakRSS() as memory:
                result = asyncio.run(run_load(
                    dossier, server, users=args.users, questions_per_user=args.questions,
                    ramp_s=args.ramp_s, gap_s=args.gap_s, budget_s=args.budget_s,
                    persistence=Path(folder) / "telegram.pickle"))
            cpu = time.process_time() - cpu
    data_out = {**asdict(result), "ramp_s": args.ramp_s, "gap_s": args.gap_s,
                "rate_5xx": args.rate_5xx, "rate_429": args.rate_429,
                "retry_after_s": args.retry_after, "cpu_s": round(cpu, 1),
                "peak_rss_mb": memory.peak_mb}
    row = {"users × questions": f"{args.users} × {args.questions}",
           "answered": result.answered, "lost": result.lost, "duplicated": result.duplicated,
           "out of order": result.chats_out_of_order, "answers/s": result.answers_per_s,
           "p50 ms": result.latency_ms["p50"], "p99 ms": result.latency_ms["p99"],
           "5xx / 429 injected": f"{result.injected_5xx} / {result.injected_429}",
           "seconds": result.seconds}
    faults = "" if args.rate_5xx or args.rate_429 else "-nofaults"
    report(f"telegram-load-{args.users}-ramp{args.ramp_s:g}{faults}", data_out,
           markdown_table([row], list(row)))


if __name__ == "__main__":
    main()

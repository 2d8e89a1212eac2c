"""Many users at once through the real Telegram Application, with Bot API faults injected.

N simulated users each send their questions to the bot over the Bot API test server
(tests/support/telegram_server, real HTTP on 127.0.0.1); the bot is `build_application` with
the real extractive answerer over the seed article. sendMessage fails with 5xx (500/502) and
429 (retry_after) at the given rates. Reported: answers/s, latency from the user's message to
the bot's answer (p50/p95/p99), lost and duplicated answers, error replies, whether every
chat got its answers in the order it asked, and the bot process's CPU per answer.

    .venv/bin/python -m bench.telegram_load --users 100
    .venv/bin/python -m bench.telegram_load --users 1000 --budget-s 900

The test server and the users run in a process of their own (`--server process`, the
default), so the bot's process does only what it would do against the real Telegram;
`--server thread` runs them in the bot's process, sharing its GIL, as before.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent

from bench.telegram_users import (  # noqa: E402
    FaultRates,
    LoadPlan,
    LoadResult,
    Users,
)
from bot.factory import Dossier  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.telegram.app import build_application, new_event_loop  # noqa: E402
from index.embeddings import SentenceEmbeddings  # noqa: E402

SEED = ROOT / "corpus" / "mexico-canada-critical-minerals.txt"


def ingest_seed(folder: Path, embedder: SentenceEmbeddings | None = None) -> tuple[Path, Path]:
    """The seed article ingested into an embedded Chroma under `folder`."""
    corpus, data = folder / "corpus", folder / "data"
    corpus.mkdir(parents=True, exist_ok=True)
    shutil.copy(SEED, corpus / SEED.name)
    dossier = Dossier(load_settings(data_dir=data, corpus={"path": corpus}), embedder=embedder)
    dossier.ingestor().run([corpus], corpus_root=corpus)
    return corpus, data


async def run_load(dossier: Dossier, token: str, users: Callable[[], LoadResult], *,
                   persistence: Path) -> LoadResult:
    """Serve Telegram with the real Application while `users()` (blocking, in a thread)
    asks its questions and counts the answers."""
    app = build_application(dossier, token, persistence_path=persistence)
    assert app.post_init is not None and app.updater is not None
    await app.initialize()
    await app.post_init(app)
    await app.start()
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        return await asyncio.to_thread(users)
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


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
    parser.add_argument("--server", choices=["process", "thread"], default="process",
                        help="Run the Bot API test server and the users in a process of their "
                             "own, or in a thread of the bot's process (sharing its GIL).")
    parser.add_argument("--messages-per-second", type=float, default=30.0,
                        help="The bot's own overall message limit (telegram.messages_per_second;"
                             " 30 as for Telegram, 0 = none).")
    parser.add_argument("--paid-broadcast", action="store_true",
                        help="Answers go out as Telegram's paid broadcasts (telegram."
                             "paid_broadcast): up to 1000 a second, past the free 30.")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                        help="The bot's event loop: uvloop as `dossier bot` makes it, or "
                             "asyncio's own.")
    args = parser.parse_args()
    # An answer that fails is counted as an error reply; its traceback goes to standard
    # error so the count comes with its cause (delivery retries, WARNING, stay quiet).
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(name)s %(message)s")

    from bench.benchlib import PeakRSS, markdown_table, report  # psutil: only the script needs it

    plan = LoadPlan(users=args.users, questions_per_user=args.questions, ramp_s=args.ramp_s,
                    gap_s=args.gap_s, budget_s=args.budget_s)
    faults = FaultRates(args.rate_5xx, args.rate_429, args.retry_after, args.seed)
    with tempfile.TemporaryDirectory(prefix="telegram-load-") as folder:
        corpus, data = ingest_seed(Path(folder))
        users = Users(plan, faults, process=args.server == "process")
        try:
            dossier = Dossier(load_settings(data_dir=data, corpus={"path": corpus}, telegram={
                "api_base_url": users.base_url, "file_base_url": users.base_file_url,
                # Each user asks `--questions` questions: the per-user limit is not under test.
                "questions_per_minute": max(10, args.questions),
                "messages_per_second": args.messages_per_second,
                "paid_broadcast": args.paid_broadcast,
            }))
            cpu = time.process_time()
            loop = new_event_loop if args.loop == "uvloop" else asyncio.new_event_loop
            with PeakRSS() as memory, asyncio.Runner(loop_factory=loop) as runner:
                result = runner.run(run_load(dossier, users.token, users.run,
                                             persistence=Path(folder) / "telegram.pickle"))
            cpu = time.process_time() - cpu
        finally:
            users.close()
    data_out = {**asdict(result), "server": args.server, "loop": args.loop,
                "messages_per_second": args.messages_per_second,
                "paid_broadcast": args.paid_broadcast, "ramp_s": args.ramp_s,
                "gap_s": args.gap_s, "rate_5xx": args.rate_5xx, "rate_429": args.rate_429,
                "retry_after_s": args.retry_after, "cpu_s": round(cpu, 1),
                "cpu_ms_per_answer": round(1000 * cpu / max(result.answered, 1), 1),
                "peak_rss_mb": memory.peak_mb}
    row = {"users × questions": f"{args.users} × {args.questions}",
           "answered": result.answered, "lost": result.lost, "duplicated": result.duplicated,
           "out of order": result.chats_out_of_order, "answers/s": result.answers_per_s,
           "p50 ms": result.latency_ms["p50"], "p99 ms": result.latency_ms["p99"],
           "5xx / 429 injected": f"{result.injected_5xx} / {result.injected_429}",
           "bot CPU ms per answer": data_out["cpu_ms_per_answer"],
           "seconds": result.seconds}
    no_faults = "" if args.rate_5xx or args.rate_429 else "-nofaults"
    no_faults += f"-{args.messages_per_second:g}mps" + ("-paid" if args.paid_broadcast else "")
    name = f"telegram-load-{args.users}-ramp{args.ramp_s:g}{no_faults}-{args.server}-{args.loop}"
    report(name, data_out, markdown_table([row], list(row)))


if __name__ == "__main__":
    main()

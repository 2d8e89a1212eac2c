"""Webhook mode: only updates carrying the secret are served; two bots share one Chroma index."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.factory import Dossier
from bot.settings import load_settings
from bot.telegram.access import WEBHOOK_SECRET_ENV, webhook_secret
from bot.telegram.app import run
from index.embeddings import SentenceEmbeddings
from tests.support import PROJECT, SEED
from tests.support.bot_harness import SALMON
from tests.support.chroma_server import ChromaServer, free_port
from tests.support.telegram_server import SentMessage, TelegramTestServer

pytestmark = pytest.mark.slow

USER, OTHER, ADMIN = 1001, 1002, 2002
OBSTACLES = "what are the obstacles?"
SEED_QUOTE = "Infrastructure gaps also pose a challenge."
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


# ---- helpers ---------------------------------------------------------------------------------


def post_update(url: str, update: dict[str, Any], secret: str | None) -> int:
    """POST an update as Telegram does (JSON, the secret in its header); the HTTP status."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    with httpx.Client(trust_env=False, timeout=10) as client:  # never through a proxy
        return client.post(url, content=json.dumps(update), headers=headers).status_code


def wait_for_port(port: int, timeout: float = 120.0, alive: Any = None) -> None:
    """Until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"the process serving port {port} has exited")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


def replies_to(message_id: int) -> Any:
    def predicate(sent: SentMessage) -> bool:
        return sent.reply_to_message_id == message_id
    return predicate


@pytest.fixture
def server() -> Iterator[TelegramTestServer]:
    with TelegramTestServer() as srv:
        for user in (USER, OTHER, ADMIN):
            srv.add_user(user)
        yield srv


@pytest.fixture
def fresh_loop() -> Iterator[None]:
    """`run` drives (and closes) the main thread's event loop, as `dossier bot` does."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    yield
    asyncio.set_event_loop(None)


# ---- one bot, in this process, through `run` -------------------------------------------------


def test_only_updates_with_the_secret_token_are_processed(
    tmp_path: Path, embedder: SentenceEmbeddings, server: TelegramTestServer,
    monkeypatch: pytest.MonkeyPatch, fresh_loop: None,
) -> None:
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    port = free_port()
    settings = load_settings(data_dir=data, corpus={"path": corpus}, telegram={
        "api_base_url": server.base_url, "file_base_url": server.base_file_url,
        "webhook_url": "https://bot.example.test/dossier/hook", "webhook_listen": "127.0.0.1",
        "webhook_port": port,
    })
    dossier = Dossier(settings, embedder=embedder)
    assert dossier.ingestor().run([corpus], corpus_root=corpus).added == 1
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", server.token)
    monkeypatch.delenv(WEBHOOK_SECRET_ENV, raising=False)
    secret = webhook_secret(server.token)
    hook = f"http://127.0.0.1:{port}/dossier/hook"
    statuses: dict[str, int] = {}
    ids: dict[str, int] = {}
    failures: list[BaseException] = []

    def telegram_side() -> None:
        try:
            server.wait_for_calls("setWebhook", timeout=120)
            wait_for_port(port)
            for name, user, header in (("missing", USER, None), ("wrong", USER, "not-" + secret),
                                       ("other user, wrong", OTHER, secret[:-1]),
                                       ("right", USER, secret)):
                update = server.add_private_message(OBSTACLES, user_id=user)
                ids[name] = update["message"]["message_id"]
                statuses[name] = post_update(hook, update, header)
            server.wait_for(replies_to(ids["right"]), chat_id=USER, timeout=60)
            time.sleep(1.0)  # room for anything wrongly accepted to be answered too
        except BaseException as exc:
            failures.append(exc)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=telegram_side)
    thread.start()
    run(dossier)  # run_webhook until the SIGTERM
    thread.join(10)
    assert failures == []
    assert statuses == {"missing": 403, "wrong": 403, "other user, wrong": 403, "right": 200}
    (webhook,) = server.calls("setWebhook")
    assert webhook.params["url"] == "https://bot.example.test/dossier/hook"
    assert webhook.params["secret_token"] == secret  # Telegram is told the secret to send
    (reply,) = server.sent_messages()  # the forged updates got no answer, no typing
    assert reply.reply_to_message_id == ids["right"] and SEED_QUOTE in (reply.text or "")
    assert len(server.calls("sendMessage")) == 1
    assert {a.chat_id for a in server.chat_actions()} == {USER}


# ---- two bot processes, one Chroma server ----------------------------------------------------


def _start_bot(name: str, port: int, tmp_path: Path, chroma: ChromaServer, collection: str,
               server: TelegramTestServer) -> tuple[subprocess.Popen[bytes], Path]:
    """`python -m bot.cli bot` in webhook mode on `port`, with its own data dir and corpus."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DOSSIER_") and k != WEBHOOK_SECRET_ENV}
    env.update({
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False",
        "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
        "TELEGRAM_BOT_TOKEN": server.token, WEBHOOK_SECRET_ENV: "shared-webhook-secret",
        "DOSSIER_DATA_DIR": str(tmp_path / f"data-{name}"),
        "DOSSIER_CORPUS__PATH": str(tmp_path / f"corpus-{name}"),
        "DOSSIER_STORE__CHROMA_URL": chroma.url,
        "DOSSIER_STORE__COLLECTION": collection,
        "DOSSIER_TELEGRAM__API_BASE_URL": server.base_url,
        "DOSSIER_TELEGRAM__FILE_BASE_URL": server.base_file_url,
        "DOSSIER_TELEGRAM__WEBHOOK_URL": f"https://{name}.example.test/hook-{name}",
        "DOSSIER_TELEGRAM__WEBHOOK_PORT": str(port),
        "DOSSIER_TELEGRAM__ADMIN_USER_IDS": json.dumps([ADMIN]),
    })
    log = tmp_path / f"bot-{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "bot"], cwd=PROJECT,
                                   env=env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT)
    return process, log


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_two_webhook_bots_answer_from_one_shared_chroma_index(
    tmp_path: Path, embedder: SentenceEmbeddings, server: TelegramTestServer,
    chroma_server: ChromaServer,
) -> None:
    collection = f"webhook-{uuid.uuid4().hex[:8]}"
    corpus = tmp_path / "seed-corpus"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    shared = load_settings(data_dir=tmp_path / "ingest", store={
        "chroma_url": chroma_server.url, "collection": collection})
    assert Dossier(shared, embedder=embedder).ingestor().run(
        [corpus], corpus_root=corpus).added == 1
    ports = {"a": free_port(), "b": free_port()}
    bots = {name: _start_bot(name, port, tmp_path, chroma_server, collection, server)
            for name, port in ports.items()}
    hooks = {name: f"http://127.0.0.1:{port}/hook-{name}" for name, port in ports.items()}
    try:
        for name, port in ports.items():
            process = bots[name][0]
            wait_for_port(port, alive=lambda process=process: process.poll() is None)
        server.wait_for_calls("setWebhook", count=2, timeout=60)

        # A load balancer in front of both: each gets one user's question.
        asked = {}
        for name, user in (("a", USER), ("b", OTHER)):
            update = server.add_private_message(OBSTACLES, user_id=user)
            asked[name] = update["message"]["message_id"]
            assert post_update(hooks[name], update, "shared-webhook-secret") == 200
        answer_a, = server.wait_for(replies_to(asked["a"]), chat_id=USER, timeout=60)
        answer_b, = server.wait_for(replies_to(asked["b"]), chat_id=OTHER, timeout=60)

        # An admin adds an article through bot A; bot B answers from it at once.
        upload = server.add_document(SALMON.encode(), file_name="salmon.md", user_id=ADMIN)
        assert post_update(hooks["a"], upload, "shared-webhook-secret") == 200
        summary, = server.wait_for(1, chat_id=ADMIN, timeout=60)
        question = server.add_private_message(
            "How many salmon farms did the Faroe Islands approve?", user_id=OTHER)
        assert post_update(hooks["b"], question, "shared-webhook-secret") == 200
        salmon, = server.wait_for(replies_to(question["message"]["message_id"]),
                                  chat_id=OTHER, timeout=60)
    except BaseException:
        for process, log in bots.values():
            _stop(process)
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}")
        raise
    finally:
        for process, _ in bots.values():
            _stop(process)
    assert SEED_QUOTE in (answer_a.text or "") and SEED_QUOTE in (answer_b.text or "")
    assert summary.text is not None and "1 added" in summary.text
    assert "twelve new salmon farms" in (salmon.text or "")
    assert all(process.returncode == 0 for process, _ in bots.values())
    hooks_set = sorted(c.params["url"] for c in server.calls("setWebhook"))
    assert hooks_set == ["https://a.example.test/hook-a", "https://b.example.test/hook-b"]

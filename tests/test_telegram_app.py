"""The Telegram bot end to end: a real Application over HTTP against the Bot API test server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot import prompts
from bot.errors import DossierError, StoreUnavailable
from bot.factory import Dossier
from bot.models import Answer
from bot.settings import TelegramSettings, load_settings
from bot.telegram.access import AccessPolicy, RedactToken, SlidingWindowLimiter, webhook_secret
from bot.telegram.app import CONVERSATION_KEY, run
from bot.telegram.render import render_answer, visible_text
from bot.uploads import document_extension, safe_document_stem
from index.embeddings import SentenceEmbeddings
from tests.support import SEED
from tests.support.bot_harness import (
    SALMON,
    ask,
    blockquote_bodies,
    ingest_corpus,
    replies_to,
    running_bot,
    server_with,
    settle,
    telegram_dossier,
)
from tests.support.telegram_server import SentMessage, TelegramTestServer

USER, ADMIN, STRANGER = 1001, 2002, 3003
GROUP = -1001000000001
TITLE = "Mexico and Canada Plan Joint Action on Critical Minerals"
OBSTACLES = "what are the obstacles?"
FOLLOW_UP = "which of them worries investors?"
TOKENS: list[str] = []  # every token this module used: none may reach the log


# ---- fixtures and helpers ------------------------------------------------------------------


class _Formatted(logging.Handler):
    """Keeps every record as it would be written, traceback included."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module", autouse=True)
def module_log() -> Iterator[_Formatted]:
    root = logging.getLogger()
    handler, level = _Formatted(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="module")
def seed_index(tmp_path_factory: pytest.TempPathFactory,
               embedder: SentenceEmbeddings) -> tuple[Path, Path]:
    """The seed corpus ingested once for the module; tests only read it."""
    return ingest_corpus(tmp_path_factory.mktemp("telegram"), embedder)


@pytest.fixture(scope="module")
def writable_index(tmp_path_factory: pytest.TempPathFactory,
                   embedder: SentenceEmbeddings) -> tuple[Path, Path]:
    """A second copy for the tests that add documents to the corpus."""
    return ingest_corpus(tmp_path_factory.mktemp("telegram-ingest"), embedder)


@pytest.fixture
def server() -> Iterator[TelegramTestServer]:
    with server_with(USER, ADMIN, STRANGER, group=GROUP) as srv:
        TOKENS.append(srv.token)
        yield srv


def _dossier(index: tuple[Path, Path], embedder: SentenceEmbeddings,
             server: TelegramTestServer, **telegram: Any) -> Dossier:
    return telegram_dossier(index, embedder, server, **telegram)


async def _ask(server: TelegramTestServer, text: str, *, user: int = USER,
               timeout: float = 15) -> SentMessage:
    return await ask(server, text, user=user, timeout=timeout)


# ---- end to end ----------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_private_question_gets_verbatim_quotes_as_html(
    seed_index: tuple[Path, Path], embedder: SentenceEmbeddings, server: TelegramTestServer,
    tmp_path: Path,
) -> None:
    async with running_bot(_dossier(seed_index, embedder, server), server, tmp_path / "p"):
        reply = await _ask(server, OBSTACLES)
    article = SEED.read_text(encoding="utf-8")
    quotes = blockquote_bodies(reply)
    assert reply.parse_mode == "HTML" and "<blockquote>" in (reply.source_text or "")
    assert len(quotes) >= 2 and all(q in article for q in quotes)
    assert any("Infrastructure gaps also pose a challenge." in q for q in quotes)
    assert TITLE in (reply.text or "")
    assert reply.options["link_preview_options"] == {"is_disabled": True}
    assert "typing" in [a.action for a in server.chat_actions(USER)]
    assert {c["command"] for c in server.commands()} == set(prompts.TG_COMMANDS)


@pytest.mark.slow
async def test_in_a_group_only_mentions_replies_and_ask_are_answered(
    seed_index: tuple[Path, Path], embedder: SentenceEmbeddings, server: TelegramTestServer,
    tmp_path: Path,
) -> None:
    bot = server.bot_username
    async with running_bot(_dossier(seed_index, embedder, server), server, tmp_path / "p"):
        ignored = [server.add_group_message(text)["message"]["message_id"]
                   for text in (OBSTACLES, f"@other_bot {OBSTACLES}", "nice weather today")]
        mention = server.add_group_message(f"@{bot} {OBSTACLES}")["message"]["message_id"]
        await server.wait_for_async(replies_to(mention), chat_id=GROUP)
        reply = server.add_reply(FOLLOW_UP, chat_id=GROUP)["message"]["message_id"]
        ask = server.add_group_message(f"/ask@{bot} {OBSTACLES}")["message"]["message_id"]
        await server.wait_for_async(replies_to(ask), chat_id=GROUP)
        await settle(server)
    sent = server.sent_messages(GROUP)
    assert [m.reply_to_message_id for m in sent] == [mention, reply, ask]
    assert all(blockquote_bodies(m) for m in sent)
    assert not set(ignored) & {m.reply_to_message_id for m in sent}


@pytest.mark.slow
async def test_a_follow_up_survives_a_restart_and_reset_forgets_it(
    seed_index: tuple[Path, Path], embedder: SentenceEmbeddings, server: TelegramTestServer,
    tmp_path: Path,
) -> None:
    persistence = tmp_path / "telegram.pickle"
    dossier = _dossier(seed_index, embedder, server)
    async with running_bot(dossier, server, persistence):
        await _ask(server, OBSTACLES)
    assert persistence.is_file()
    async with running_bot(_dossier(seed_index, embedder, server), server, persistence) as app:
        follow_up = await _ask(server, FOLLOW_UP)
        assert any("foreign investors" in q for q in blockquote_bodies(follow_up))
        assert len(app.chat_data[USER][CONVERSATION_KEY]) == 2
        reset = await _ask(server, "/reset")
        assert reset.text == prompts.TG_RESET_DONE
        assert CONVERSATION_KEY not in app.chat_data[USER]
        after_reset = await _ask(server, FOLLOW_UP)
    # After /reset the same words are a fresh question, not a follow-up of the obstacles.
    fresh = dossier.answerer.ask(FOLLOW_UP)
    assert visible_text(render_answer(fresh)[0]) != follow_up.text
    assert after_reset.text == visible_text(render_answer(fresh)[0])
    # A fresh question is remembered only when it was answered.
    with persistence.open("rb") as stored:
        kept = pickle.load(stored)["chat_data"][USER].get(CONVERSATION_KEY, [])
    assert len(kept) == (1 if fresh.answered else 0)


@pytest.mark.slow
async def test_start_help_and_articles_name_the_article(
    seed_index: tuple[Path, Path], embedder: SentenceEmbeddings, server: TelegramTestServer,
    tmp_path: Path,
) -> None:
    async with running_bot(_dossier(seed_index, embedder, server), server, tmp_path / "p"):
        for command in ("/start", "/help", "/articles"):
            server.add_private_message(command)
        messages = await server.wait_for_async(3, chat_id=USER)
        unknown = await _ask(server, "/frobnicate")
    start, help_, articles = (m.text or "" for m in messages)
    assert start.startswith(prompts.TG_GREETING) and not help_.startswith(prompts.TG_GREETING)
    for text in (start, help_):
        assert "I know 1 article:" in text and TITLE in text and f"@{server.bot_username}" in text
    assert f"1. {TITLE} — Fiaz Ahmed" in articles
    assert unknown.text == prompts.TG_UNKNOWN_COMMAND


# ---- access --------------------------------------------------------------------------------


@pytest.mark.slow
async def test_strangers_get_one_polite_refusal_and_no_work(
    seed_index: tuple[Path, Path], embedder: SentenceEmbeddings, server: TelegramTestServer,
    tmp_path: Path,
) -> None:
    dossier = _dossier(seed_index, embedder, server, allowed_user_ids=[USER])
    async with running_bot(dossier, server, tmp_path / "p"):
        for text in (OBSTACLES, "/help", FOLLOW_UP):
            server.add_private_message(text, user_id=STRANGER)
        mention = server.add_group_message(f"@{server.bot_username} {OBSTACLES}",
                                           user_id=STRANGER)["message"]["message_id"]
        server.add_group_message(OBSTACLES, user_id=STRANGER)
        answered = await _ask(server, OBSTACLES)
        await settle(server)
    (refusal,) = server.sent_messages(STRANGER)
    assert refusal.text == prompts.TG_NOT_ALLOWED
    (group_refusal,) = server.sent_messages(GROUP)  # the mention; the chatter stays unanswered
    # The group is served for others: the stranger is told it is about them, not the chat.
    assert group_refusal.text == prompts.TG_NOT_ALLOWED_USER
    assert group_refusal.reply_to_message_id == mention
    assert [a.chat_id for a in server.chat_actions()] == [USER]
    assert blockquote_bodies(answered)


@pytest.mark.slow
async def test_rate_limit_and_length_cap_refuse_before_any_work(
    seed_index: tuple[Path, Path], embedder: SentenceEmbeddings, server: TelegramTestServer,
    tmp_path: Path,
) -> None:
    dossier = _dossier(seed_index, embedder, server, questions_per_minute=2,
                       max_question_chars=60)
    async with running_bot(dossier, server, tmp_path / "p"):
        too_long = await _ask(server, " ".join(["why"] * 20))
        first, second = await _ask(server, OBSTACLES), await _ask(server, "who wrote it?")
        limited = await _ask(server, "and the minerals?")
        server.add_private_message("one more?")  # already told to wait: no second notice
        await settle(server)
    assert too_long.text == prompts.TG_TOO_LONG.format(length=79, limit=60)
    assert blockquote_bodies(first) and second.text
    assert limited.text is not None and limited.text.startswith("You're asking faster")
    assert 55 <= int(limited.text.split("wait ")[1].split(" s")[0]) <= 60
    assert len(server.sent_messages(USER)) == 4
    assert len(server.chat_actions(USER)) == 2  # only the two answered questions


# ---- documents -----------------------------------------------------------------------------


@pytest.mark.slow
async def test_only_admins_add_documents_and_added_ones_are_answerable(
    writable_index: tuple[Path, Path], embedder: SentenceEmbeddings,
    server: TelegramTestServer, tmp_path: Path,
) -> None:
    corpus = writable_index[0]
    dossier = _dossier(writable_index, embedder, server, admin_user_ids=[ADMIN])
    async with running_bot(dossier, server, tmp_path / "p"):
        server.add_document(SALMON.encode(), file_name="salmon.md", user_id=USER)
        (refused,) = await server.wait_for_async(1, chat_id=USER)
        assert server.calls("getFile") == []
        server.add_document(SALMON.encode(), file_name="salmon.md", user_id=ADMIN)
        (summary,) = await server.wait_for_async(1, chat_id=ADMIN, timeout=20)
        answer = await _ask(server, "How many salmon farms did the Faroe Islands approve?",
                            user=ADMIN)
    assert refused.text == prompts.TG_ADMIN_ONLY
    assert summary.text is not None and "1 added" in summary.text
    assert (corpus / "uploads" / "salmon.md").read_bytes() == SALMON.encode()
    assert any("twelve new salmon farms" in q for q in blockquote_bodies(answer))
    assert "Salmon farms return to the Faroe fjords" in (answer.text or "")


@pytest.mark.slow
async def test_hostile_file_names_stay_inside_the_corpus(
    writable_index: tuple[Path, Path], embedder: SentenceEmbeddings,
    server: TelegramTestServer, tmp_path: Path,
) -> None:
    corpus = writable_index[0]
    before = {p.name for p in corpus.iterdir()}
    uploaded_before = {p.name for p in (corpus / "uploads").glob("*")}
    names = ["../../x.txt", "/etc/passwd.txt", "a\x00b.txt", "é" * 300 + ".txt", "....txt",
             "../../x.txt"]
    dossier = _dossier(writable_index, embedder, server, admin_user_ids=[ADMIN])
    async with running_bot(dossier, server, tmp_path / "p"):
        for number, name in enumerate(names):
            text = (f"Harbour report {number}: the port of Vellmar{number} reopened on Monday "
                    f"after storm Quill{number} damaged {number + 3} of its container cranes.\n\n"
                    f"Dock workers in Vellmar{number} returned to the quays the same morning, "
                    "and the harbour master expects full traffic again within two weeks.\n")
            server.add_document(text.encode(), file_name=name, user_id=ADMIN)
        summaries = await server.wait_for_async(len(names), chat_id=ADMIN, timeout=30)
    assert all("1 added" in (s.text or "") for s in summaries[:-1])
    assert "replaced the earlier upload" in (summaries[-1].text or "")
    uploads = corpus / "uploads"
    assert {p.name for p in corpus.iterdir()} == before | {"uploads"}
    assert {p.name for p in uploads.iterdir()} - uploaded_before == {
        "x.txt", "passwd.txt", "a-b.txt", "é" * 40 + ".txt", "document.txt"
    }
    assert all(len(p.name.encode()) <= 100 for p in uploads.iterdir())
    # The second "../../x.txt" replaced the first upload of that name, and nothing else.
    assert "report 5:" in (uploads / "x.txt").read_text()
    assert not (corpus.parent.parent / "x.txt").exists() and not Path("/x.txt").exists()
    assert not Path("/etc/passwd.txt").exists()
    outside = [p for p in corpus.parent.rglob("*.txt") if p.parent not in (corpus, uploads)]
    assert outside == []


@pytest.mark.slow
async def test_an_oversized_document_is_refused_before_download(
    seed_index: tuple[Path, Path], embedder: SentenceEmbeddings, server: TelegramTestServer,
    tmp_path: Path,
) -> None:
    dossier = _dossier(seed_index, embedder, server, admin_user_ids=[ADMIN], max_document_mb=1)
    async with running_bot(dossier, server, tmp_path / "p"):
        server.add_document(b"tiny", file_name="big.pdf", file_size=2 * 1024 * 1024,
                            user_id=ADMIN)
        server.add_document(b"MZ...", file_name="tool.exe", user_id=ADMIN)
        too_big, wrong_type = await server.wait_for_async(2, chat_id=ADMIN)
    assert too_big.text == prompts.TG_DOCUMENT_TOO_BIG.format(size=2.0, limit=1.0)
    assert wrong_type.text == prompts.TG_DOCUMENT_TYPE
    assert server.calls("getFile") == []


# ---- reliability ---------------------------------------------------------------------------


@pytest.mark.slow
async def test_flood_control_429s_still_answer_every_question_once_and_in_order(
    seed_index: tuple[Path, Path], embedder: SentenceEmbeddings, server: TelegramTestServer,
    tmp_path: Path,
) -> None:
    questions = [OBSTACLES, "who wrote the article?", "which minerals matter?",
                 "what does China have to do with it?", "what about workforce?",
                 "how will they finance it?", "what do environmental groups say?",
                 "what is lithium used for?", "who confirmed the talks?", "what is next?"]
    fault = server.inject("sendMessage", status=429, retry_after=1, rate=0.2, seed=3)
    dossier = _dossier(seed_index, embedder, server, questions_per_minute=100)
    async with running_bot(dossier, server, tmp_path / "p"):
        asked = [server.add_private_message(q)["message"]["message_id"] for q in questions]
        await server.wait_for_async(replies_to(asked[-1]), chat_id=USER, timeout=40)
        await settle(server)
    replies = [m.reply_to_message_id for m in server.sent_messages(USER)
               if m.reply_to_message_id is not None]
    assert replies == asked  # each question answered exactly once, in the order asked
    assert fault.fired >= 1


class _GatedAnswerer:
    """The real answerer, except that questions saying "slow" wait for the test's go."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.chat_model, self.go = inner, None, threading.Event()

    def ask(self, question: str, **options: Any) -> Answer:
        if "slow" in str(question):
            assert self.go.wait(10)
        return self.inner.ask(question, **options)


@pytest.mark.slow
async def test_chats_run_in_parallel_while_each_chat_keeps_its_order(
    seed_index: tuple[Path, Path], embedder: SentenceEmbeddings, server: TelegramTestServer,
    tmp_path: Path,
) -> None:
    dossier = _dossier(seed_index, embedder, server)
    gated = _GatedAnswerer(dossier.answerer)
    dossier.__dict__["answerer"] = gated
    async with running_bot(dossier, server, tmp_path / "p"):
        slow = server.add_private_message(f"slow: {OBSTACLES}")["message"]["message_id"]
        after = server.add_private_message(OBSTACLES)["message"]["message_id"]
        other = await _ask(server, OBSTACLES, user=ADMIN)  # not held up by the blocked chat
        assert server.sent_messages(USER) == []
        gated.go.set()
        await server.wait_for_async(2, chat_id=USER)
    assert [m.reply_to_message_id for m in server.sent_messages(USER)] == [slow, after]
    assert blockquote_bodies(other)


@pytest.mark.slow
async def test_html_telegram_rejects_is_resent_as_plain_text(
    seed_index: tuple[Path, Path], embedder: SentenceEmbeddings, server: TelegramTestServer,
    tmp_path: Path,
) -> None:
    server.inject("sendMessage", status=400, times=1,
                  description="Bad Request: can't parse entities: Unsupported start tag")
    async with running_bot(_dossier(seed_index, embedder, server), server, tmp_path / "p"):
        reply = await _ask(server, OBSTACLES)
    assert reply.parse_mode is None and reply.entities == []
    assert "Infrastructure gaps also pose a challenge." in (reply.text or "")
    assert "<blockquote>" not in (reply.text or "")


class _FlakyAnswerer:
    """The real answerer behind a store that is down for the first `failures` questions."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner, self.failures, self.chat_model = inner, failures, None

    def ask(self, question: str, **options: Any) -> Answer:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("cannot reach the Chroma store: connection refused")
        return self.inner.ask(question, **options)


@pytest.mark.slow
async def test_an_unavailable_store_is_one_friendly_line_and_then_recovers(
    seed_index: tuple[Path, Path], embedder: SentenceEmbeddings, server: TelegramTestServer,
    tmp_path: Path, module_log: _Formatted,
) -> None:
    dossier = _dossier(seed_index, embedder, server)
    dossier.__dict__["answerer"] = _FlakyAnswerer(dossier.answerer, failures=1)
    async with running_bot(dossier, server, tmp_path / "p"):
        update = server.add_private_message(OBSTACLES)
        (down,) = await server.wait_for_async(1, chat_id=USER)
        back = await _ask(server, OBSTACLES)
    assert down.text == prompts.TG_UNAVAILABLE
    assert "Infrastructure gaps also pose a challenge." in (back.text or "")
    failure = [line for line in module_log.lines if f"update {update['update_id']} failed" in line]
    assert failure and "StoreUnavailable" in failure[0] and "Traceback" in failure[0]


def test_the_token_filter_redacts_messages_arguments_and_tracebacks() -> None:
    token = "7000000001:AAAAsecretsecretsecretsecretsecret1"
    handler = _Formatted()
    handler.addFilter(RedactToken(token))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    try:
        logger.warning("POST https://api.telegram.org/bot%s/getMe", token)
        logger.warning(f"raw {token}")
        try:
            raise RuntimeError(f"The token `{token}` was rejected by the server.")
        except RuntimeError:
            logger.exception("startup failed")
    finally:
        logger.removeHandler(handler)
    secret = token.split(":")[1]
    assert len(handler.lines) == 3 and "[bot token]" in handler.lines[0]
    assert all(secret not in line for line in handler.lines)
    assert "RuntimeError" in handler.lines[2]


@pytest.mark.slow
def test_run_without_a_token_is_a_one_line_error(seed_index: tuple[Path, Path],
                                                  embedder: SentenceEmbeddings) -> None:
    settings = load_settings(data_dir=seed_index[1])
    with pytest.raises(DossierError, match="TELEGRAM_BOT_TOKEN is not set"):
        run(Dossier(settings, embedder=embedder))


def test_webhook_secret_comes_from_the_env_or_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    derived = webhook_secret("1:abc")
    assert derived == webhook_secret("1:abc") != webhook_secret("1:abd")
    assert "abc" not in derived and len(derived) == 64
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "s3cret_-X")
    assert webhook_secret("1:abc") == "s3cret_-X"
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "bad secret!")
    with pytest.raises(DossierError):
        webhook_secret("1:abc")


@pytest.fixture
def fresh_loop() -> Iterator[None]:
    """`run` drives (and closes) the main thread's event loop, as `dossier bot` does."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    yield
    asyncio.set_event_loop(None)


@pytest.mark.slow
def test_run_polls_then_stops_cleanly_on_sigterm_with_history_saved(
    seed_index: tuple[Path, Path], embedder: SentenceEmbeddings, server: TelegramTestServer,
    monkeypatch: pytest.MonkeyPatch, fresh_loop: None,
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", server.token)
    dossier = _dossier(seed_index, embedder, server)
    pickle_file = seed_index[1] / "telegram.pickle"
    pickle_file.unlink(missing_ok=True)
    replies: list[SentMessage] = []

    def user_then_sigterm() -> None:
        server.wait_for_calls("getUpdates", timeout=30)  # run() is polling: its handlers are set
        server.add_private_message(OBSTACLES)
        with contextlib.suppress(TimeoutError):
            replies.extend(server.wait_for(1, chat_id=USER, timeout=20))
        os.kill(os.getpid(), signal.SIGTERM)

    user = threading.Thread(target=user_then_sigterm)
    user.start()
    run(dossier)  # returns once SIGTERM has stopped it
    user.join(5)
    (reply,) = replies
    assert "Infrastructure gaps also pose a challenge." in (reply.text or "")
    assert server.calls()[-1].method == "getUpdates"  # the last offset was confirmed
    with pickle_file.open("rb") as stored:  # written by the shutdown
        assert pickle.load(stored)["chat_data"][USER][CONVERSATION_KEY][0]["question"] == OBSTACLES


@pytest.mark.slow
def test_a_rejected_token_is_a_one_line_error(
    seed_index: tuple[Path, Path], embedder: SentenceEmbeddings, server: TelegramTestServer,
    monkeypatch: pytest.MonkeyPatch, fresh_loop: None, module_log: _Formatted,
) -> None:
    wrong = server.token.split(":")[0] + ":" + "W" * 35
    TOKENS.append(wrong)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", wrong)
    with pytest.raises(DossierError, match="rejected TELEGRAM_BOT_TOKEN") as caught:
        run(_dossier(seed_index, embedder, server))
    assert wrong not in str(caught.value) and caught.value.__cause__ is None
    # PTB logs the rejection with a traceback that quotes the token: the filter cut it out.
    assert [line for line in module_log.lines
            if "The token `[bot token]` was rejected by the server" in line]


# ---- pure access rules ---------------------------------------------------------------------


def test_sliding_window_limiter_waits_for_the_oldest_question() -> None:
    now = [100.0]
    limiter = SlidingWindowLimiter(2, 60, clock=lambda: now[0])
    assert limiter.acquire(1) == 0 and limiter.acquire(1) == 0
    now[0] = 130.0
    assert limiter.acquire(1) == pytest.approx(30.0) and limiter.acquire(2) == 0
    now[0] = 160.5
    assert limiter.acquire(1) == 0


def test_allowlists_admins_and_refusing_once() -> None:
    policy = AccessPolicy(TelegramSettings(allowed_user_ids=[1], allowed_chat_ids=[-5],
                                           admin_user_ids=[9]))
    assert policy.is_allowed(1, 1) and policy.is_allowed(1, -7)  # an allowed user, anywhere
    assert policy.is_allowed(4, -5)  # anyone in an allowed chat
    assert policy.is_allowed(9, 9) and not policy.is_allowed(4, 4)
    assert policy.first_refusal(4) and not policy.first_refusal(4)
    assert AccessPolicy(TelegramSettings()).is_allowed(4, 4)  # no lists: open


def test_uploaded_names_become_safe_stems() -> None:
    assert safe_document_stem("../../x.txt") == "x"
    assert safe_document_stem("/etc/passwd.txt") == "passwd"
    assert safe_document_stem("..\\..\\win.md") == "win"
    assert safe_document_stem("a\x00b.txt") == "a-b"
    assert safe_document_stem("....txt") == safe_document_stem("..") == "document"
    assert safe_document_stem(None) == "document"
    assert len(safe_document_stem("🙂" * 300 + ".pdf").encode()) <= 80
    assert safe_document_stem("Report: Q3 (final).PDF") == "report-q3-final"
    assert document_extension("story.HTM", None) == ".htm"
    assert document_extension("story.exe", "text/plain") is None
    assert document_extension("story", "text/markdown; charset=utf-8") == ".md"


# Last in the module: it checks what every test above logged.
def test_no_token_ever_reaches_the_log(module_log: _Formatted) -> None:
    assert module_log.lines  # the handler saw the module's logging
    for token in TOKENS:
        secret = token.split(":")[1]
        assert not [line for line in module_log.lines if secret in line]

"""Every message to the bot gets its word: edits, captions, other media, the rate limit, and
the group wording (the real bot over HTTP against the Bot API test server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import prompts
from bot.telegram import render
from index.embeddings import SentenceEmbeddings
from tests.support.bot_harness import (
    blockquote_bodies,
    ingest_corpus,
    replies_to,
    running_bot,
    server_with,
    settle,
    telegram_dossier,
)
from tests.support.telegram_server import DEFAULT_GROUP_ID, SentMessage, TelegramTestServer

USER, STRANGER, OTHER = 1001, 3003, 4004
GROUP = DEFAULT_GROUP_ID
OBSTACLES = "what are the obstacles?"
AUTHOR = "who wrote the article?"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory,
          embedder: SentenceEmbeddings) -> tuple[Path, Path]:
    return ingest_corpus(tmp_path_factory.mktemp("messages"), embedder)


@pytest.fixture
def server() -> Iterator[TelegramTestServer]:
    with server_with(USER, STRANGER, OTHER) as srv:
        yield srv


def _edited(message_id: int) -> object:
    def predicate(sent: SentMessage) -> bool:
        return sent.message_id == message_id and bool(sent.history)
    return predicate


@pytest.mark.slow
async def test_an_edited_question_is_answered_again_by_editing_the_answer(
    index: tuple[Path, Path], embedder: SentenceEmbeddings, server: TelegramTestServer,
    tmp_path: Path,
) -> None:
    dossier = telegram_dossier(index, embedder, server)
    bot = server.bot_username
    async with running_bot(dossier, server, tmp_path / "p"):
        asked = server.add_private_message(OBSTACLES)["message"]["message_id"]
        (first,) = await server.wait_for_async(replies_to(asked), chat_id=USER)
        server.add_edited_message(USER, asked, AUTHOR)
        (edited,) = await server.wait_for_async(_edited(first.message_id), chat_id=USER)
        mention = server.add_group_message(f"@{bot} {AUTHOR}")["message"]["message_id"]
        (in_group,) = await server.wait_for_async(replies_to(mention), chat_id=GROUP)
        server.add_edited_message(GROUP, mention, f"@{bot} {OBSTACLES}")
        (group_edit,) = await server.wait_for_async(_edited(in_group.message_id), chat_id=GROUP)
        chatter = server.add_group_message("nice weather")["message"]["message_id"]
        server.add_edited_message(GROUP, chatter, f"@{bot} {OBSTACLES}")
        (late,) = await server.wait_for_async(replies_to(chatter), chat_id=GROUP)
        await settle(server)
    fresh = render.visible_text(render.render_answer(dossier.answerer.ask(AUTHOR))[0])
    assert edited.history == [first.text] and edited.text == fresh
    assert len(server.sent_messages(USER)) == 1  # the answer was edited, not sent again
    assert group_edit.history == [in_group.text] and blockquote_bodies(group_edit)
    assert blockquote_bodies(late)  # an edit that now asks the bot is answered anew
    assert len(server.sent_messages(GROUP)) == 2


@pytest.mark.slow
async def test_a_caption_is_a_question_and_other_media_get_one_line(
    index: tuple[Path, Path], embedder: SentenceEmbeddings, server: TelegramTestServer,
    tmp_path: Path,
) -> None:
    bot = server.bot_username
    async with running_bot(telegram_dossier(index, embedder, server), server, tmp_path / "p"):
        photo = server.add_media("photo", caption=OBSTACLES)["message"]["message_id"]
        (answer,) = await server.wait_for_async(replies_to(photo), chat_id=USER)
        file = server.add_document(b"%PDF-1.4", file_name="scan.pdf",
                                   caption=OBSTACLES)["message"]["message_id"]
        (file_answer,) = await server.wait_for_async(replies_to(file), chat_id=USER)
        others = [server.add_media(kind)["message"]["message_id"]
                  for kind in ("sticker", "voice", "photo", "location")]
        lines = [(await server.wait_for_async(replies_to(m), chat_id=USER))[0] for m in others]
        group_photo = server.add_media("photo", caption=f"@{bot} {OBSTACLES}",
                                       chat_id=GROUP)["message"]["message_id"]
        (group_answer,) = await server.wait_for_async(replies_to(group_photo), chat_id=GROUP)
        server.add_media("photo", caption="our holiday", chat_id=GROUP)
        server.add_media("sticker", chat_id=GROUP)
        await settle(server)
    assert blockquote_bodies(answer) and blockquote_bodies(file_answer)
    assert blockquote_bodies(group_answer)
    assert [line.text for line in lines] == [prompts.TG_NOT_TEXT] * 4
    assert len(server.sent_messages(GROUP)) == 1  # group chatter and stickers: no reply


@pytest.mark.slow
async def test_questions_over_the_rate_limit_are_counted_and_the_count_is_said(
    index: tuple[Path, Path], embedder: SentenceEmbeddings, server: TelegramTestServer,
    tmp_path: Path,
) -> None:
    now = [1000.0]
    dossier = telegram_dossier(index, embedder, server, questions_per_minute=2)
    async with running_bot(dossier, server, tmp_path / "p", clock=lambda: now[0]):
        asked = [server.add_private_message(f"{OBSTACLES} ({n})")["message"]["message_id"]
                 for n in range(6)]
        # One chat's updates are handled in order: once /help is answered, so are all six.
        marker = server.add_private_message("/help")["message"]["message_id"]
        await server.wait_for_async(replies_to(marker), chat_id=USER)
        replied = {m.reply_to_message_id for m in server.sent_messages(USER)}
        now[0] += 61  # the minute has passed
        again = server.add_private_message(OBSTACLES)["message"]["message_id"]
        note, answer = await server.wait_for_async(replies_to(again), chat_id=USER, count=2)
    wait = server.sent_messages(USER)[2]
    assert replied == {*asked[:3], marker}  # two answers and one "please wait"
    assert (wait.text or "").startswith("You're asking faster")
    assert note.text == render.not_answered(3)  # questions 4, 5 and 6: none lost silently
    assert blockquote_bodies(answer)


@pytest.mark.slow
async def test_group_wording_for_a_bare_mention_and_for_people_not_served(
    index: tuple[Path, Path], embedder: SentenceEmbeddings, server: TelegramTestServer,
    tmp_path: Path,
) -> None:
    bot = f"@{server.bot_username}"
    dossier = telegram_dossier(index, embedder, server, allowed_user_ids=[USER])
    async with running_bot(dossier, server, tmp_path / "p"):
        bare = server.add_group_message(bot)["message"]["message_id"]
        (usage,) = await server.wait_for_async(replies_to(bare), chat_id=GROUP)
        for user in (STRANGER, OTHER, STRANGER):
            server.add_group_message(f"{bot} {OBSTACLES}", user_id=user)
        # One chat's updates are handled in order: once /help is answered, so are those.
        marker = server.add_group_message("/help")["message"]["message_id"]
        await server.wait_for_async(replies_to(marker), chat_id=GROUP)
    refused = [m for m in server.sent_messages(GROUP)
               if m.message_id != usage.message_id and m.reply_to_message_id != marker]
    assert usage.text == prompts.TG_MENTION_USAGE.format(bot=bot)
    assert "command" not in (usage.text or "")
    # One line to each person the bot does not serve here, about them, not the group.
    assert [m.text for m in refused] == [prompts.TG_NOT_ALLOWED_USER] * 2



@pytest.mark.slow
async def test_the_unanswered_count_comes_when_the_user_may_ask_again_unprompted(
    index: tuple[Path, Path], embedder: SentenceEmbeddings, server: TelegramTestServer,
    tmp_path: Path,
) -> None:
    now = [1000.0]
    dossier = telegram_dossier(index, embedder, server, questions_per_minute=2)
    async with running_bot(dossier, server, tmp_path / "p", clock=lambda: now[0]):
        for n in range(2):
            asked = server.add_private_message(f"{OBSTACLES} ({n})")["message"]["message_id"]
            await server.wait_for_async(replies_to(asked), chat_id=USER)
        now[0] += 59  # one second of the minute left
        first_refused = server.add_private_message(AUTHOR)["message"]["message_id"]
        for n in range(2):
            server.add_private_message(f"{AUTHOR} ({n})")
        wait, note = await server.wait_for_async(replies_to(first_refused), chat_id=USER,
                                                 count=2)
    assert wait.text == prompts.TG_RATE_LIMITED.format(seconds=1)
    assert note.text == render.not_answered(2)

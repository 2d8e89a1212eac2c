"""Lists in Telegram: /articles as one message paged in place, an answer's sources behind a
button, and the admins' uploads (/uploads, /remove N), over HTTP against the test server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import prompts
from bot.telegram import render
from index.embeddings import SentenceEmbeddings
from tests.support import SEED
from tests.support.bot_harness import (
    SALMON,
    ingest_corpus,
    replies_to,
    running_bot,
    server_with,
    settle,
    telegram_dossier,
)
from tests.support.fakes import FakeEmbeddings
from tests.support.telegram_server import DEFAULT_GROUP_ID, SentMessage, TelegramTestServer

USER, ADMIN = 1001, 2002
GROUP = DEFAULT_GROUP_ID
TITLE = "Mexico and Canada Plan Joint Action on Critical Minerals"
OBSTACLES = "what are the obstacles?"
# Articles near the seed's subject, so that a question about it draws on several.
NEIGHBOURS = {
    f"minerals-{n}.md": (
        f"---\ntitle: Critical minerals brief {n}\n---\n"
        f"Lithium and copper projects in region {n} face obstacles: permits take years, "
        f"roads and power lines are missing, and skilled workers are scarce.\n\n"
        f"Investors in region {n} say the financing gap is the hardest challenge of all.\n"
    )
    for n in range(1, 5)
}


def _harbour(n: int) -> str:
    return (f"Harbour report {n}: the port of Vellmar{n} reopened on Monday after storm "
            f"Quill{n} damaged {n % 7 + 2} of its container cranes.\n\nDock workers in "
            f"Vellmar{n} returned to the quays the same morning.\n")


@pytest.fixture
def server() -> Iterator[TelegramTestServer]:
    with server_with(USER, ADMIN) as srv:
        yield srv


def _buttons(sent: SentMessage) -> list[str]:
    rows = (sent.reply_markup or {}).get("inline_keyboard", [])
    return [button["text"] for row in rows for button in row]


def _edited_times(message_id: int, times: int) -> object:
    def predicate(sent: SentMessage) -> bool:
        return sent.message_id == message_id and len(sent.history) >= times
    return predicate


@pytest.mark.slow
async def test_articles_is_one_message_paged_in_place_in_private_and_in_groups(
    tmp_path: Path, server: TelegramTestServer
) -> None:
    index = ingest_corpus(tmp_path, FakeEmbeddings(),
                          {f"harbour-{n:03d}.txt": _harbour(n) for n in range(100)})
    dossier = telegram_dossier(index, FakeEmbeddings(), server)
    async with running_bot(dossier, server, tmp_path / "p"):
        asked = server.add_private_message("/articles")["message"]["message_id"]
        (listing,) = await server.wait_for_async(replies_to(asked), chat_id=USER)
        first_page = listing.text
        server.add_callback_query(message_id=listing.message_id, button_text="▶")
        (page_2,) = await server.wait_for_async(_edited_times(listing.message_id, 1))
        page_2_buttons = _buttons(page_2)
        server.add_callback_query(message_id=listing.message_id, button_text="◀")
        (back,) = await server.wait_for_async(_edited_times(listing.message_id, 2))
        command = f"/articles@{server.bot_username}"
        in_group = server.add_group_message(command)["message"]["message_id"]
        (group_listing,) = await server.wait_for_async(replies_to(in_group), chat_id=GROUP)
        server.add_callback_query(chat_id=GROUP, message_id=group_listing.message_id,
                                  button_text="▶")
        (group_page_2,) = await server.wait_for_async(
            _edited_times(group_listing.message_id, 1), chat_id=GROUP)
        await settle(server)
    assert len(server.sent_messages(USER)) == 1 and len(server.sent_messages(GROUP)) == 1
    assert "Articles (101):" in (first_page or "") and "Page 1 of 11" in (first_page or "")
    assert _buttons(listing) == [prompts.TG_PAGE_NEXT]
    assert "11. " in (page_2.text or "") and "Page 2 of 11" in (page_2.text or "")
    assert page_2_buttons == [prompts.TG_PAGE_BACK, prompts.TG_PAGE_NEXT]
    assert back.text == first_page and _buttons(back) == [prompts.TG_PAGE_NEXT]
    assert "Page 2 of 11" in (group_page_2.text or "")
    assert len(server.callback_answers()) == 3  # every press answered: no spinning button


@pytest.mark.slow
async def test_an_answer_with_more_sources_than_it_quotes_has_a_button_listing_them(
    tmp_path: Path, embedder: SentenceEmbeddings, server: TelegramTestServer
) -> None:
    dossier = telegram_dossier(ingest_corpus(tmp_path, embedder, NEIGHBOURS), embedder, server)
    expected = dossier.answerer.ask(OBSTACLES)
    assert expected.unshown_sources  # the corpus is made for it: check it still is
    async with running_bot(dossier, server, tmp_path / "p"):
        asked = server.add_private_message(OBSTACLES)["message"]["message_id"]
        (answer,) = await server.wait_for_async(replies_to(asked), chat_id=USER)
        server.add_callback_query(message_id=answer.message_id)
        (listing,) = await server.wait_for_async(replies_to(answer.message_id), chat_id=USER)
    label = prompts.TG_SOURCES_BUTTON.format(count=len(expected.sources))
    assert _buttons(answer) == [label]
    assert (listing.text or "").startswith(
        prompts.TG_SOURCES_HEADER.format(count=len(expected.sources)))
    assert all(source.title in (listing.text or "") for source in expected.sources)
    assert len(server.callback_answers()) == 1


@pytest.mark.slow
async def test_admins_list_replace_and_remove_uploads_and_the_seed_stays(
    tmp_path: Path, server: TelegramTestServer
) -> None:
    fake = FakeEmbeddings()
    index = ingest_corpus(tmp_path, fake)
    dossier = telegram_dossier(index, fake, server, admin_user_ids=[ADMIN])
    other_text = "Seed banks: Mexico and Canada agreed to share maize and wheat varieties."

    async def admin_says(text: str) -> str:
        asked = server.add_private_message(text, user_id=ADMIN)["message"]["message_id"]
        (reply,) = await server.wait_for_async(replies_to(asked), chat_id=ADMIN, timeout=20)
        return reply.text or ""

    async def admin_uploads(name: str, content: str) -> str:
        sent = server.add_document(content.encode(), file_name=name, user_id=ADMIN)
        asked = sent["message"]["message_id"]
        (reply,) = await server.wait_for_async(replies_to(asked), chat_id=ADMIN, timeout=20)
        return reply.text or ""

    async with running_bot(dossier, server, tmp_path / "p"):
        seed_named = await admin_uploads("mexico-canada-critical-minerals.md", other_text)
        salmon = await admin_uploads("salmon.md", SALMON)
        listed = await admin_says("/uploads")
        replaced = await admin_uploads("salmon.md", SALMON.replace("twelve", "fourteen"))
        removed = await admin_says("/remove 1")
        after = await admin_says("/uploads")
        unknown, usage = await admin_says("/remove 5"), await admin_says("/remove first")
        asked = server.add_private_message("/uploads", user_id=USER)["message"]["message_id"]
        (refused,) = await server.wait_for_async(replies_to(asked), chat_id=USER)
    assert "1 added, 0 updated" in seed_named and "1 added" in salmon
    assert "1. mexico-canada-critical-minerals.md" in listed and "2. salmon.md" in listed
    assert "0 added, 1 updated" in replaced and prompts.TG_INGEST_REPLACED in replaced
    assert removed == prompts.TG_REMOVED.format(name="mexico-canada-critical-minerals.md")
    assert "1. salmon.md" in after and "mexico" not in after
    assert unknown == prompts.TG_REMOVE_UNKNOWN.format(number=5)
    assert usage == prompts.TG_REMOVE_USAGE
    assert refused.text == prompts.TG_ADMIN_COMMAND_ONLY
    records = dossier.store.records()
    assert set(records) == {SEED.name, "uploads/salmon.md"}
    assert records[SEED.name].title == TITLE
    assert render.fits(listed)

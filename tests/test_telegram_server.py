"""Tests of the local Bot API server, driven by python-telegram-bot's real client over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import os
import subprocess
import sys
import threading

import aiohttp
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from tests.support.telegram_server import (
    DEFAULT_USER_ID,
    TelegramTestServer,
    parse_html,
    utf16_len,
)

pytestmark = pytest.mark.slow  # every test here starts the Bot API test server

USER = DEFAULT_USER_ID  # the user the `server` fixture knows


def _seconds(value: int | dtm.timedelta) -> float:
    # RetryAfter.retry_after is an int or a timedelta depending on PTB's PTB_TIMEDELTA switch.
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


# ---- transport, routing, auth --------------------------------------------------------------


async def test_get_me_through_ptb(server: TelegramTestServer, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.is_bot
    assert me.username == server.bot_username
    assert me.id == int(server.token.split(":")[0])
    assert bot.username == server.bot_username  # Bot.initialize() called getMe itself
    assert [c.method for c in server.calls()] == ["getMe", "getMe"]


async def test_wrong_token_is_unauthorized(server: TelegramTestServer) -> None:
    wrong = server.token.split(":")[0] + ":" + "x" * 35
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.base_url}{wrong}/getMe") as resp,
    ):
        assert resp.status == 401
        assert await resp.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    with pytest.raises(InvalidToken):
        async with Bot(wrong, base_url=server.base_url):
            pass


async def test_routing_encodings_and_unknown_methods(server: TelegramTestServer) -> None:
    api = f"{server.base_url}{server.token}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{api}/GETME") as resp:  # names are case-insensitive
            assert (await resp.json())["result"]["username"] == server.bot_username
        async with http.post(f"{api}/sendMessage", json={"chat_id": USER, "text": "json"}) as r:
            assert (await r.json())["result"]["text"] == "json"
        form = {"chat_id": str(USER), "text": "form"}
        async with http.post(f"{api}/sendmessage", data=form) as resp:
            assert (await resp.json())["result"]["chat"]["id"] == USER
        multipart = aiohttp.FormData({"chat_id": str(USER), "text": "multi"})
        multipart.add_field("dummy", b"x", filename="x.bin")  # forces multipart/form-data
        async with http.post(f"{api}/sendMessage", data=multipart) as resp:
            assert (await resp.json())["result"]["message_id"] == 3
        async with http.get(f"{api}/sendMessage?chat_id={USER}&text=query") as resp:
            assert (await resp.json())["result"]["text"] == "query"
        async with http.post(f"{api}/noSuchMethod") as resp:
            assert resp.status == 404
            assert (await resp.json())["description"] == "Not Found"
    assert [m.text for m in server.sent_messages(USER)] == ["json", "form", "multi", "query"]
    assert [m.message_id for m in server.sent_messages(USER)] == [1, 2, 3, 4]


async def test_token_never_logged(
    server: TelegramTestServer, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await bot.send_message(USER, "hi")
    with pytest.raises(BadRequest):
        await bot.send_message(USER, "<b>", parse_mode=ParseMode.HTML)
    async with aiohttp.ClientSession() as http:
        await http.post(f"{server.base_url}{server.token}/nope")
        await http.post(f"{server.base_url}1:bad/getMe")
    ours = ("tests.support.telegram_server", "aiohttp")
    own = [r for r in caplog.records if r.name.startswith(ours)]
    assert any("sendMessage" in r.getMessage() for r in own)
    assert all(server.token not in r.getMessage() for r in own)


# ---- getUpdates --------------------------------------------------------------------------


async def test_get_updates_offset_confirms_and_drops(server: TelegramTestServer, bot: Bot) -> None:
    ids = [server.add_private_message(f"m{i}")["update_id"] for i in range(4)]
    assert ids == sorted(ids) and len(set(ids)) == 4

    first = await bot.get_updates()
    assert [u.update_id for u in first] == ids
    assert [u.message.text for u in first if u.message] == ["m0", "m1", "m2", "m3"]
    # Without a higher offset nothing is confirmed: the same updates come back.
    assert [u.update_id for u in await bot.get_updates(limit=2)] == ids[:2]
    # offset = last seen + 1 confirms everything before it.
    assert [u.update_id for u in await bot.get_updates(offset=ids[1] + 1)] == ids[2:]
    assert [u.update_id for u in await bot.get_updates()] == ids[2:]
    # A negative offset keeps only the last -offset updates and forgets the others.
    assert [u.update_id for u in await bot.get_updates(offset=-1)] == ids[3:]
    assert [u.update_id for u in await bot.get_updates()] == ids[3:]
    assert await bot.get_updates(offset=ids[3] + 1) == ()
    assert server.pending_updates() == []


async def test_long_poll_returns_as_soon_as_an_update_arrives(
    server: TelegramTestServer, bot: Bot
) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    (call,) = await server.wait_for_calls_async("getUpdates")
    assert call.status is None and not poll.done()  # the server holds the request open
    server.add_private_message("wake up")
    updates = await asyncio.wait_for(poll, 9)  # answered by the update, not the timeout
    assert [u.effective_message.text for u in updates if u.effective_message] == ["wake up"]
    assert [c.status for c in server.calls("getUpdates")] == [200]


async def test_long_poll_times_out_empty(server: TelegramTestServer, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=1))
    (call,) = await server.wait_for_calls_async("getUpdates")
    assert call.status is None  # held open, not answered at once
    assert await poll == ()
    (done,) = server.calls("getUpdates")
    assert done.status == 200 and done.params["timeout"] == 1.0


async def test_second_poller_terminates_the_first(server: TelegramTestServer, bot: Bot) -> None:
    # PTB's Bot polls over a one-connection pool, so the second instance needs its own Bot.
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await server.wait_for_calls_async("getUpdates")
    async with Bot(server.token, base_url=server.base_url) as second:
        assert await second.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match=r"(?i)terminated by other getUpdates request"):
        await first


async def test_allowed_updates_and_webhook(server: TelegramTestServer, bot: Bot) -> None:
    await bot.get_updates(allowed_updates=["callback_query"])
    server.add_private_message("filtered out")
    assert await bot.get_updates() == ()

    assert await bot.set_webhook("https://example.com/hook")
    assert (await bot.get_webhook_info()).url == "https://example.com/hook"
    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates()
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert server.webhook_info()["url"] == ""


# ---- sendMessage validation --------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "<b>unclosed",
        "<b>bold <i>crossed</b></i>",
        "<div>unsupported</div>",
        '<span class="x">no spoiler class</span>',
        "AT&T",
        "&nbsp;",
        "1 < 2",
        "stray </b>",
    ],
)
async def test_bad_html_is_rejected(server: TelegramTestServer, bot: Bot, text: str) -> None:
    with pytest.raises(BadRequest, match="an't parse entities"):
        await bot.send_message(USER, text, parse_mode=ParseMode.HTML)
    assert server.sent_messages() == []
    assert server.calls("sendMessage")[0].status == 400


async def test_good_html_becomes_text_and_entities(server: TelegramTestServer, bot: Bot) -> None:
    html = (
        '<b>Bold</b> &lt;tag&gt; &amp; &quot;q&quot; &#x1F600; <a href="https://ex.com/?a=1&b=2">'
        'link</a> <tg-spoiler>s</tg-spoiler> <pre><code class="language-python">x = 1</code></pre>'
        "<blockquote expandable>quote</blockquote>"
    )
    message = await bot.send_message(USER, html, parse_mode=ParseMode.HTML)
    assert message.text == 'Bold <tag> & "q" 😀 link s x = 1quote'
    kinds = {e.type: e for e in message.entities}
    assert kinds["bold"].offset == 0 and kinds["bold"].length == 4
    assert kinds["text_link"].url == "https://ex.com/?a=1&b=2"
    assert kinds["pre"].language == "python"
    assert "code" not in kinds
    assert "expandable_blockquote" in kinds
    sent = server.last_message(USER)
    assert sent is not None and sent.source_text == html and sent.parse_mode == "HTML"


def test_the_html_parser_reports_telegram_errors() -> None:
    assert parse_html("<i>a</i>b") == ("ab", [{"type": "italic", "offset": 0, "length": 1}])
    with pytest.raises(ValueError, match='Unsupported start tag "div" at byte offset 3'):
        parse_html("é <div>")
    with pytest.raises(ValueError, match="Can't find end tag corresponding to start tag"):
        parse_html("<b>open")


async def test_message_length_limit(server: TelegramTestServer, bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(USER, "a" * 4097)
    await bot.send_message(USER, "a" * 4096)
    # Tags and entities don't count: only the text left after parsing does.
    await bot.send_message(USER, "<b>" + "a" * 4096 + "</b>", parse_mode=ParseMode.HTML)
    await bot.send_message(USER, "&amp;" * 4096, parse_mode=ParseMode.HTML)
    # Telegram counts UTF-16 code units: each emoji outside the BMP is two.
    assert utf16_len("😀") == 2
    await bot.send_message(USER, "😀" * 2048)
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(USER, "😀" * 2048 + "a")
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(USER, "<b> </b>", parse_mode=ParseMode.HTML)
    assert len(server.sent_messages(USER)) == 4


async def test_send_message_records_options_and_replies(
    server: TelegramTestServer, bot: Bot
) -> None:
    asked = server.add_private_message("question?")["message"]
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("More", callback_data="more:1")]])
    answer = await bot.send_message(
        USER,
        "answer",
        reply_to_message_id=asked["message_id"],
        reply_markup=keyboard,
        disable_web_page_preview=True,
    )
    assert answer.reply_to_message is not None
    assert answer.reply_to_message.text == "question?"
    assert answer.from_user is not None and answer.from_user.username == server.bot_username
    assert answer.reply_markup == keyboard
    sent = server.last_message(USER)
    assert sent is not None
    assert sent.reply_markup == keyboard.to_dict()
    assert sent.options["link_preview_options"] == {"is_disabled": True}
    assert sent.options["reply_parameters"]["message_id"] == asked["message_id"]
    assert sent.reply_to_message_id == asked["message_id"]
    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_message(USER, "x", reply_to_message_id=999)
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(424242, "nobody")
    server.block_bot(USER)
    with pytest.raises(Forbidden, match="blocked"):
        await bot.send_message(USER, "x")


async def test_edit_callback_action_commands(server: TelegramTestServer, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Sources", callback_data="src")]])
    sent = await bot.send_message(USER, "draft", reply_markup=keyboard)
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("draft", USER, sent.message_id, reply_markup=keyboard)
    edited = await bot.edit_message_text("final", USER, sent.message_id, reply_markup=keyboard)
    assert isinstance(edited, type(sent)) and edited.text == "final"
    record = server.last_message(USER)
    assert record is not None and record.text == "final" and record.history == ["draft"]

    update = server.add_callback_query(button_text="Sources")
    query = Update.de_json(update, bot).callback_query
    assert query is not None and query.data == "src" and query.message is not None
    assert await bot.answer_callback_query(query.id, text="ok")
    with pytest.raises(BadRequest, match=r"(?i)query id is invalid"):
        await bot.answer_callback_query(query.id)
    assert server.callback_answers()[0]["text"] == "ok"

    assert await bot.send_chat_action(USER, "typing")
    assert [a.action for a in server.chat_actions(USER)] == ["typing"]
    with pytest.raises(BadRequest, match=r"(?i)wrong parameter action"):
        await bot.send_chat_action(USER, "dancing")

    await bot.set_my_commands([("ask", "Ask the articles")])
    assert [c.command for c in await bot.get_my_commands()] == ["ask"]
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([("Ask", "uppercase is invalid")])


async def test_group_messages_carry_command_and_mention_entities(
    server: TelegramTestServer, bot: Bot
) -> None:
    name = server.bot_username
    server.add_group_message(f"/ask@{name} who won?")
    server.add_group_message(f"@{name} what happened?", chat_type="supergroup")
    updates = await bot.get_updates()
    command, mention = (u.effective_message for u in updates)
    assert command is not None and mention is not None
    assert command.chat.type == "supergroup"
    assert command.parse_entities(["bot_command"]).popitem()[1] == f"/ask@{name}"
    assert mention.parse_entities(["mention"]).popitem()[1] == f"@{name}"
    assert command.chat.title == "Dossier Test Group"


async def test_media_edits_and_group_buttons_arrive_as_telegram_sends_them(
    server: TelegramTestServer, bot: Bot
) -> None:
    name = server.bot_username
    photo = server.add_media("photo", caption=f"@{name} what is shown?")
    server.add_media("sticker")
    server.add_media("voice")
    asked = server.add_private_message("first wording")["message"]["message_id"]
    server.add_edited_message(USER, asked, "second wording")
    server.add_edited_message(USER, photo["message"]["message_id"], "new caption")
    with pytest.raises(ValueError, match="no caption"):
        server.add_media("sticker", caption="stickers have none")
    updates = await bot.get_updates()
    captioned, sticker, voice, _, edited, recaptioned = updates
    assert captioned.message is not None and len(captioned.message.photo) == 2
    assert captioned.message.caption_entities[0].type == "mention"
    assert captioned.message.text is None
    assert sticker.message is not None and sticker.message.sticker is not None
    assert voice.message is not None and voice.message.voice is not None
    assert edited.edited_message is not None and edited.message is None
    assert edited.edited_message.text == "second wording"
    assert edited.edited_message.message_id == asked and edited.edited_message.edit_date
    assert recaptioned.edited_message is not None
    assert recaptioned.edited_message.caption == "new caption"

    server.add_group_message("hello")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("▶", callback_data="page:2")]])
    group = server.add_group_message("x")["message"]["chat"]["id"]
    sent = await bot.send_message(group, "page 1", reply_markup=keyboard)
    press = server.add_callback_query(chat_id=group, button_text="▶", user_id=USER)
    query = Update.de_json(press, bot).callback_query
    assert query is not None and query.message is not None
    assert query.message.chat.id == group and query.message.message_id == sent.message_id
    assert await bot.delete_message(group, sent.message_id)
    assert server.sent_messages(group)[0].deleted
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(group, sent.message_id)


# ---- faults ------------------------------------------------------------------------------


async def test_injected_429_surfaces_as_retry_after(server: TelegramTestServer, bot: Bot) -> None:
    fault = server.inject("sendMessage", status=429, retry_after=3, times=2)
    for _ in range(2):
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(USER, "hello")
        assert _seconds(caught.value.retry_after) == 3
    await bot.send_message(USER, "hello")
    assert fault.fired == 2
    assert [m.text for m in server.sent_messages(USER)] == ["hello"]  # exactly once
    statuses = [(c.status, c.injected) for c in server.calls("sendMessage")]
    assert statuses == [(429, True), (429, True), (200, False)]


async def test_injected_rate_502_and_delay(server: TelegramTestServer, bot: Bot) -> None:
    server.inject("sendMessage", status=502, rate=0.5, seed=7)
    outcomes = []
    for i in range(20):
        try:
            await bot.send_message(USER, f"m{i}")
            outcomes.append(True)
        except NetworkError as exc:
            assert "Bad Gateway" in str(exc)
            outcomes.append(False)
    assert 0 < outcomes.count(False) < 20
    assert len(server.sent_messages(USER)) == outcomes.count(True)

    server.clear_faults()
    slow = server.inject("getMe", delay=0.5)
    earlier = len(server.calls("getMe"))
    call = asyncio.create_task(bot.get_me())
    held = (await server.wait_for_calls_async("getMe", earlier + 1))[-1]
    assert held.status is None and not call.done()  # delayed, then answered normally
    assert (await call).username == server.bot_username
    assert slow.fired == 1 and server.calls("getMe")[-1].status == 200


# ---- files -------------------------------------------------------------------------------


async def test_document_round_trip_and_size_limit(server: TelegramTestServer, bot: Bot) -> None:
    content = b"%PDF-1.4 fake article\n" * 100
    update = server.add_document(content, file_name="story.pdf", caption="read this")
    (received,) = await bot.get_updates()
    assert received.message is not None and received.message.document is not None
    document = received.message.document
    assert received.update_id == update["update_id"]
    assert document.file_name == "story.pdf" and document.mime_type == "application/pdf"
    assert document.file_size == len(content)

    file = await bot.get_file(document.file_id)
    assert file.file_path is not None and file.file_path.startswith(server.base_file_url)
    assert bytes(await file.download_as_bytearray()) == content

    huge = server.add_document(b"tiny", file_name="huge.pdf", file_size=21 * 1024 * 1024)
    with pytest.raises(BadRequest, match=r"(?i)file is too big"):
        await bot.get_file(huge["message"]["document"]["file_id"])


# ---- waiting and threads -----------------------------------------------------------------


async def test_blocking_wait_for_refuses_running_loop(server: TelegramTestServer) -> None:
    with pytest.raises(RuntimeError, match="_async"):
        server.wait_for(1, timeout=0.1)
    with pytest.raises(TimeoutError, match="sent so far"):
        await server.wait_for_async(1, timeout=0.2)


def test_wait_for_from_a_thread_while_a_bot_sends_from_another_loop(
    server: TelegramTestServer,
) -> None:
    async def send_later() -> None:
        async with Bot(server.token, base_url=server.base_url) as client:
            await asyncio.sleep(0.2)
            await client.send_message(USER, "first")
            await client.send_message(USER, "second")

    sender = threading.Thread(target=asyncio.run, args=(send_later(),))
    sender.start()
    messages = server.wait_for(lambda m: m.text == "second", chat_id=USER, timeout=5)
    sender.join(5)
    assert [m.text for m in messages] == ["second"]
    assert [m.text for m in server.wait_for(2, timeout=1)] == ["first", "second"]


# ---- a real Application ------------------------------------------------------------------


async def test_application_echoes_a_private_message(server: TelegramTestServer) -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        await update.message.reply_text(update.message.text)

    app = (
        ApplicationBuilder()
        .token(server.token)
        .base_url(server.base_url)
        .base_file_url(server.base_file_url)
        .build()
    )
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        server.add_private_message("hello dossier")
        (reply,) = await server.wait_for_async(1, chat_id=USER, timeout=5)
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert reply.text == "hello dossier"
    assert server.pending_updates() == []  # the updater confirmed what it processed
    assert "deleteWebhook" in [c.method for c in server.calls()]


BOT_SCRIPT = """
import os
from telegram.ext import ApplicationBuilder, MessageHandler, filters

async def echo(update, context):
    await update.message.reply_text("echo: " + update.message.text)

url = os.environ["TEST_TG_URL"]
app = (ApplicationBuilder().token(os.environ["TEST_TG_TOKEN"])
       .base_url(url + "/bot").base_file_url(url + "/file/bot").build())
app.add_handler(MessageHandler(filters.TEXT, echo))
app.run_polling(poll_interval=0, timeout=1)
"""


def test_bot_in_a_subprocess(server: TelegramTestServer) -> None:
    env = {**os.environ, "TEST_TG_TOKEN": server.token, "TEST_TG_URL": server.url}
    bot_process = subprocess.Popen(
        [sys.executable, "-c", BOT_SCRIPT], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        server.wait_for_calls("getUpdates", timeout=15)
        server.add_private_message("ping")
        (reply,) = server.wait_for(1, chat_id=USER, timeout=10)
    finally:
        bot_process.terminate()  # run_polling stops gracefully on SIGTERM
        _, stderr = bot_process.communicate(timeout=15)
    assert reply.text == "echo: ping", stderr
    assert server.pending_updates() == []

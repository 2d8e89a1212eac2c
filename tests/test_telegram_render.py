"""Telegram HTML rendering: escaping, safe links, and splits the Bot API test server accepts."""

from __future__ import annotations

import pytest
from telegram import Bot
from telegram.constants import ParseMode

from bot import prompts
from bot.models import Answer, ArticleRef, Citation
from bot.telegram import render
from index.ingest import IngestReport
from index.models import Skipped
from index.store import ArticleRecord
from tests.support.telegram_server import (
    DEFAULT_USER_ID,
    TelegramTestServer,
    parse_html,
    utf16_len,
)

USER = DEFAULT_USER_ID  # the user the `server` fixture knows
HOSTILE = 'Tags <b> & </a> <script>alert("x")</script> a&amp;b 1 < 2 > 0 😀'


def _ref(title: str = "Mexico & Canada <Minerals>", url: str | None = None) -> ArticleRef:
    return ArticleRef("seed", title, "Fiaz Ahmed", None, url, "corpus/seed.txt")


def _citation(n: int, quote: str, *, link: str | None = None, url: str | None = None,
              title: str = "Mexico & Canada <Minerals>") -> Citation:
    return Citation(n, quote, 0, len(quote), _ref(title, url), link=link)


def _sentences(n: int, words: int = 14) -> str:
    return " ".join(
        f"Sentence {i} says {' '.join(['mining'] * words)} & <tag> 😀 ends here." for i in range(n)
    )


def _utf16_slice(text: str, offset: int, length: int) -> str:
    data = text.encode("utf-16-le")
    return data[2 * offset : 2 * (offset + length)].decode("utf-16-le")


def _blockquotes(html_message: str) -> list[str]:
    text, entities = parse_html(html_message)
    return [_utf16_slice(text, e["offset"], e["length"]) for e in entities
            if e["type"] == "blockquote"]


def _bodies(messages: list[str]) -> list[str]:
    """The quote text of every blockquote: what follows its header line."""
    return [quote.split("\n", 1)[1] for m in messages for quote in _blockquotes(m)]


async def _send_all(bot: Bot, server: TelegramTestServer, messages: list[str]) -> list[str]:
    """Send through the real Bot API client; returns the texts as the server parsed them."""
    for message in messages:
        await bot.send_message(USER, message, parse_mode=ParseMode.HTML)
    sent = server.sent_messages(USER)
    assert len(sent) == len(messages)
    return [s.text or "" for s in sent]


@pytest.mark.slow
async def test_a_20000_character_answer_becomes_several_valid_messages(
    server: TelegramTestServer, bot: Bot
) -> None:
    quotes = [f"{HOSTILE} {_sentences(12)} [{n}]" for n in range(1, 13)]
    citations = [
        _citation(n, q, link=f"https://news.example/a?x={n}&y=2#:~:text=Sentence%20{n}")
        for n, q in enumerate(quotes, 1)
    ]
    answer = Answer("q", "The obstacles are many [1] [2] & <varied>.", "extractive", True,
                    citations, note="The language model could not be used (timeout).")
    assert len(answer.text) + sum(len(q) for q in quotes) > 20_000

    messages = render.render_answer(answer)

    assert len(messages) >= 5
    for message in messages:
        text, _ = parse_html(message)  # strict: every tag closed, every & an entity
        assert utf16_len(text) <= 4096 and render.fits(message)
        assert message.count("<blockquote>") == message.count("</blockquote>")
    parsed = await _send_all(bot, server, messages)
    assert [render.visible_text(m).strip() for m in messages] == parsed
    assert _bodies(messages) == quotes  # every quote whole, in order, unescaped
    assert parsed[0].startswith("The obstacles are many [1] [2] & <varied>.")
    assert "</a> <script>alert(\"x\")</script>" in "".join(parsed)
    assert "&lt;script&gt;" in messages[0] and "<script>" not in "".join(messages)
    first = server.sent_messages(USER)[0]
    kinds = [e["type"] for e in first.entities]
    assert "italic" in kinds and "blockquote" in kinds and "bold" in kinds
    links = [e["url"] for m in server.sent_messages(USER) for e in m.entities
             if e["type"] == "text_link"]
    assert links[0] == "https://news.example/a?x=1&y=2#:~:text=Sentence%201"
    assert len(links) == 12


@pytest.mark.slow
async def test_a_quote_longer_than_a_message_is_cut_into_closed_blockquotes(
    server: TelegramTestServer, bot: Bot
) -> None:
    quote = _sentences(100)
    assert len(quote) > 3 * 4096
    answer = Answer("q", "Long [1].", "extractive", True, [_citation(1, quote)])

    messages = render.render_answer(answer)

    assert len(messages) >= 4
    parts = _bodies(messages)
    assert len(parts) == len(messages)  # one part per message, each its own blockquote
    assert all(p.endswith("ends here.") for p in parts)  # cut at sentence boundaries
    assert " ".join(parts) == quote
    headers = [q.split("\n", 1)[0] for m in messages for q in _blockquotes(m)]
    assert headers[0] == "[1] Mexico & Canada <Minerals>"
    assert all(h == f"[1] Mexico & Canada <Minerals> {prompts.TG_QUOTE_CONTINUED}"
               for h in headers[1:])
    await _send_all(bot, server, messages)


@pytest.mark.slow
async def test_a_word_longer_than_a_message_is_cut_safely(
    server: TelegramTestServer, bot: Bot
) -> None:
    word = "&<>" * 3000 + "😀" * 500  # escapes to five times its length; emoji count twice
    messages = render.render_answer(Answer("q", word, "extractive", True, []))
    assert len(messages) > 1
    assert "".join(render.visible_text(m) for m in messages) == word
    await _send_all(bot, server, messages)


@pytest.mark.slow
async def test_only_http_links_become_links_and_titles_are_escaped(
    server: TelegramTestServer, bot: Bot
) -> None:
    citations = [
        _citation(1, "One.", link="javascript:alert(1)", url="https://ok.example/1"),
        _citation(2, "Two.", link="ftp://files.example/2", url="data:text/html,x"),
        _citation(3, "Three.", link='https://ex.example/"><script>', title="<i>T</i>"),
        _citation(4, "Four.", url="http://plain.example/4?a=1&b=2"),
        _citation(5, "Five.", link="https://bad host.example/"),
    ]
    (message,) = render.render_answer(Answer("q", "Answer.", "extractive", True, citations))
    (parsed,) = await _send_all(bot, server, [message])

    urls = [e["url"] for e in server.sent_messages(USER)[0].entities if e["type"] == "text_link"]
    assert urls == [
        "https://ok.example/1",
        'https://ex.example/"><script>',
        "http://plain.example/4?a=1&b=2",
    ]
    assert "javascript" not in message and "ftp:" not in message and "data:" not in message
    assert "[3] <i>T</i>" in parsed  # the title shown literally, not as italics
    assert "bad host" not in message


def test_unanswered_questions_render_as_one_plain_line() -> None:
    answer = Answer("q", prompts.CANNOT_ANSWER, "extractive", False)
    assert render.render_answer(answer) == [render.escape(prompts.CANNOT_ANSWER)]


def _record(n: int, url: str | None = None) -> ArticleRecord:
    return ArticleRecord(f"id-{n}", f"Story {n:03d} <&>", "Ann", "2025-01-02", url,
                         f"corpus/{n}.txt", "c", "t", 3)


@pytest.mark.slow
async def test_help_and_article_lists(server: TelegramTestServer, bot: Bot) -> None:
    records = [_record(n, f"https://news.example/{n}" if n % 2 else "javascript:x")
               for n in range(300)]
    help_text = render.render_help(records, "dossier_bot", greeting=True)
    assert "I know 300 articles:" in help_text and "Story 009 &lt;&amp;&gt;" in help_text
    assert "Story 010" not in help_text and "…and 290 more" in help_text
    assert "@dossier_bot" in help_text and "/ask &lt;question&gt;" in help_text

    pages = render.page_count(len(records))
    listing = [render.render_articles_page(records, page) for page in range(1, pages + 1)]
    assert pages == 30 and all(render.fits(m) for m in listing)
    parsed = await _send_all(bot, server, [help_text, *listing])
    assert "1. Story 000 <&> — Ann, 2025-01-02" in parsed[1] and "Page 1 of 30" in parsed[1]
    assert "300. Story 299" in parsed[-1] and "Page 30 of 30" in parsed[-1]
    assert sum(p.count("Story ") for p in parsed[1:]) == 300
    links = [e for m in server.sent_messages(USER)[1:] for e in m.entities
             if e["type"] == "text_link"]
    assert len(links) == 150 and all(e["url"].startswith("https://") for e in links)


def test_ingest_summary_never_shows_server_paths() -> None:
    report = IngestReport(added=0, passages=12,
                          skipped=[Skipped("/srv/dossier/corpus/a<b>.pdf", "encrypted PDF")])
    text = render.render_ingest(report, "a-b.pdf", kept=False)
    assert "/srv" not in text and "a&lt;b&gt;.pdf: encrypted PDF" in text
    assert prompts.TG_INGEST_NOT_KEPT in text

"""Loading real files from a temporary corpus: formats, encodings, ids, and every bad input."""

from __future__ import annotations

import codecs
import gzip
import io
import json
import os
import random
import shutil
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from index.chunking import chunk_article
from index.encoding import garbled_reason
from index.errors import UnreadableArticle
from index.formats import MAX_HTML_DEPTH, MAX_PARSED_MARKDOWN_CHARS, read_markdown
from index.loaders import (
    SUPPORTED_SUFFIXES,
    article_id,
    iter_articles,
    load_file,
)
from index.models import Article, Skipped
from tests.support.fakes import FakeEmbeddings

SEED = Path(__file__).resolve().parent.parent / "corpus" / "mexico-canada-critical-minerals.txt"
BODY = (
    "The council voted on Tuesday to approve the new bridge across the river, ending a "
    "debate that had lasted for more than three years."
)
BODY_2 = "Construction is expected to begin in the spring, officials said, with work done by 2027."
QUOTE = "“It’s a great day — for everyone,” the mayor said."


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    return folder


def load_folder(folder: Path, **kwargs: int) -> tuple[list[Article], list[Skipped]]:
    items = list(iter_articles([folder], corpus_root=folder, **kwargs))
    articles = [item for item in items if isinstance(item, Article)]
    skipped = [item for item in items if isinstance(item, Skipped)]
    return articles, skipped


def only_article(path: Path) -> Article:
    articles = load_file(path, corpus_root=path.parent)
    assert len(articles) == 1
    return articles[0]


# --- PDF fixtures, written as raw PDF syntax -------------------------------------------


def make_pdf(pages: list[list[str]]) -> bytes:
    """A minimal PDF with one text line per entry on each page (Helvetica, no images)."""
    objects: list[bytes] = [b"", b""]  # catalog and page tree, filled in below
    font = len(objects) + 1
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    kids = []
    for lines in pages:
        ops = ["BT", "/F1 11 Tf", "14 TL", "50 760 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops += [f"({escaped}) Tj", "T*"]
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        content = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (font, content)
        )
        kids.append(len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    refs = " ".join(f"{kid} 0 R" for kid in kids).encode()
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids))
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


PAGE_ONE = ["Bridge Vote Ends Long Debate", BODY]
PAGE_TWO = [BODY_2]


# --- formats -----------------------------------------------------------------------------


def test_seed_text_file(corpus: Path) -> None:
    shutil.copy(SEED, corpus / SEED.name)
    articles, skipped = load_folder(corpus)
    assert skipped == []
    (article,) = articles
    assert article.id == "mexico-canada-critical-minerals.txt"
    assert article.title == "Mexico and Canada Plan Joint Action on Critical Minerals"
    assert article.author == "Fiaz Ahmed"
    assert article.text.startswith("Mexico and Canada are preparing")
    assert article.heading_before(article.text.index("Despite shared goals")) == "Challenges Ahead"
    assert article.path is not None and article.path.endswith(
        "corpus/mexico-canada-critical-minerals.txt"
    )


def test_plain_text_title_falls_back_to_file_name(corpus: Path) -> None:
    path = corpus / "council_bridge-vote.txt"
    path.write_text(f"{BODY}\n{BODY_2}\n", encoding="utf-8")
    article = only_article(path)
    assert article.title == "Council bridge vote"
    assert article.text == f"{BODY}\n\n{BODY_2}"


def test_markdown_with_front_matter(corpus: Path) -> None:
    path = corpus / "bridge.md"
    path.write_text(
        "---\ntitle: Bridge vote ends debate\nauthor: [Jane Roe, John Doe]\n"
        "date: 2024-03-05\nurl: https://example.com/bridge\nsource: Example News\n---\n"
        f"{BODY[:54]}\n{BODY[55:]}\n\n## What happens next\n\n"
        f"Construction is expected to begin in the **spring**, [officials](https://x.y) said.\n",
        encoding="utf-8",
    )
    article = only_article(path)
    assert article.title == "Bridge vote ends debate"
    assert article.author == "Jane Roe, John Doe"
    assert article.published == "2024-03-05"
    assert article.url == "https://example.com/bridge"
    assert article.source == "Example News"
    assert article.text.split("\n\n") == [
        BODY,
        "What happens next",
        "Construction is expected to begin in the spring, officials said.",
    ]
    assert [article.text[s:e] for s, e in article.headings] == ["What happens next"]


def test_markdown_heading_is_title_without_front_matter(corpus: Path) -> None:
    path = corpus / "note.markdown"
    path.write_text(f"# Bridge vote ends debate\n\n{BODY}\n", encoding="utf-8")
    article = only_article(path)
    assert article.title == "Bridge vote ends debate"
    assert article.text == BODY


MARKED_UP = (
    f"# Minerals\n\n{BODY}\n\n"
    "It was _widely_ reported in the [report][1] that prices rose \\*sharply\\*.\n\n"
    "[1]: https://example.com/report\n\n"
    "```python\nprint('tariffs')\n```\n\n"
    "| Country | Share |\n|---|---|\n| Mexico | 12% |\n\n"
    f"{BODY_2}\n"
)


def test_markdown_reader_removes_all_markup() -> None:
    extracted = read_markdown(MARKED_UP)
    assert extracted.title == "Minerals"
    assert [p.text for p in extracted.paragraphs] == [
        BODY,
        "It was widely reported in the report that prices rose *sharply*.",
        "print('tariffs')",
        "Country | Share",
        "Mexico | 12%",
        BODY_2,
    ]


def test_markdown_markup_never_reaches_an_article_or_its_passages(corpus: Path) -> None:
    path = corpus / "markup.md"
    path.write_text(MARKED_UP, encoding="utf-8")
    article = only_article(path)
    assert "It was widely reported in the report that prices rose *sharply*." in article.text
    assert not any(mark in article.text for mark in ("_widely_", "[1]", "\\*", "```", "---"))
    for chunk in chunk_article(article, FakeEmbeddings().count_tokens, max_tokens=8):
        assert article.text[chunk.start : chunk.end] == chunk.text


def test_markdown_past_the_parser_cap_is_read_as_plain_paragraphs(corpus: Path) -> None:
    repeats = MAX_PARSED_MARKDOWN_CHARS // len(BODY) + 1
    path = corpus / "huge.md"
    path.write_text("# Huge\n\n" + "\n\n".join([BODY] * repeats) + "\n", encoding="utf-8")
    article = only_article(path)
    assert article.text.count(BODY) == repeats


def deep_enough_for_the_fallback(body: str) -> str:
    """A page nested past trafilatura's depth limit, so the linear reader reads it."""
    depth = MAX_HTML_DEPTH + 10
    return "<html><body>" + "<div>" * depth + body + "</div>" * depth + "</body></html>"


def test_fallback_html_reads_attributes_and_comments_as_a_browser_does(corpus: Path) -> None:
    page = deep_enough_for_the_fallback(
        f'<p title="a>b">{BODY}</p><!-- an old <script> tag was here --><h2>Next</h2>'
        f"<p>{BODY_2} &amp; more</p>"
    )
    (corpus / "fallback.html").write_text(page, encoding="utf-8")
    article = only_article(corpus / "fallback.html")
    assert article.text.split("\n\n") == [BODY, "Next", f"{BODY_2} & more"]
    assert [article.text[s:e] for s, e in article.headings] == ["Next"]


HTML_PAGE = f"""<!doctype html><html><head><title>Bridge vote ends debate | Example News</title>
<meta name="author" content="Jane Roe">
<meta property="article:published_time" content="2024-03-05T10:00:00Z">
<link rel="canonical" href="https://example.com/bridge"></head>
<body><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/login">Sign in</a></nav>
<article><h1>Bridge vote ends debate</h1>
<p>{BODY}</p>
<h2>What happens next</h2>
<p>{BODY_2}</p>
<p>{QUOTE}</p>
</article>
<footer><p>© 2024 Example Inc. All rights reserved.</p>
<a href="/privacy">Privacy Policy</a></footer>
</body></html>"""


def test_html_main_text_and_metadata(corpus: Path) -> None:
    path = corpus / "bridge.html"
    path.write_text(HTML_PAGE, encoding="utf-8")
    article = only_article(path)
    assert article.title == "Bridge vote ends debate"
    assert article.author == "Jane Roe"
    assert article.published == "2024-03-05"
    assert article.url == "https://example.com/bridge"
    assert article.text.split("\n\n") == [BODY, "What happens next", BODY_2, QUOTE]
    assert [article.text[s:e] for s, e in article.headings] == ["What happens next"]


def test_pdf_pages_and_offsets(corpus: Path) -> None:
    path = corpus / "bridge.pdf"
    path.write_bytes(make_pdf([PAGE_ONE, PAGE_TWO]))
    article = only_article(path)
    assert BODY in article.text and BODY_2 in article.text
    assert len(article.pages) == 2
    assert article.text[article.pages[1] :].startswith("Construction is expected")
    assert article.pages[0] == 0


def test_pdf_running_header_and_page_numbers_dropped(corpus: Path) -> None:
    bodies = [BODY, BODY_2, BODY.replace("council", "committee"), BODY_2.replace("spring", "fall")]
    pages = [
        ["The Daily Example - Late Edition", body, f"Page {n} of 4"]
        for n, body in enumerate(bodies, 1)
    ]
    path = corpus / "paper.pdf"
    path.write_bytes(make_pdf(pages))
    article = only_article(path)
    assert article.text.split("\n\n") == bodies
    assert len(article.pages) == 4


def _jsonl_lines() -> list[str]:
    promo = "Sign up for our Morning Brief, delivered daily"
    records = [
        {
            "id": f"example.com/story-{n}",
            "title": f"Story {n} | Example",
            "url": f"https://www.example.com/story-{n}",
            "authors": ["Jane Roe John Doe", "Jane Roe", "John Doe"],
            "published": "2022-01-02",
            "text": f"{promo}\n\n{BODY} ({n})\n\n{BODY_2}",
        }
        for n in range(4)
    ]
    lines = [json.dumps(record) for record in records]
    lines.insert(2, '{"id": "broken", "text": ')
    lines.insert(3, '{"id": "empty", "text": "   "}')
    return lines


@pytest.mark.parametrize("name", ["articles.jsonl", "articles.jsonl.gz"])
def test_articles_jsonl_with_bad_lines(corpus: Path, name: str) -> None:
    path = corpus / name
    data = ("\n".join(_jsonl_lines()) + "\n").encode("utf-8")
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    articles, skipped = load_folder(corpus)
    assert [a.id for a in articles] == [f"example.com/story-{n}" for n in range(4)]
    first = articles[0]
    assert first.title == "Story 0"
    assert first.author == "Jane Roe, John Doe"
    assert first.published == "2022-01-02"
    assert first.source == "example.com"
    assert first.text == f"{BODY} (0)\n\n{BODY_2}"  # the repeated promo is gone
    assert [(s.path.rsplit(":", 1)[1], s.reason.split(":")[0]) for s in skipped] == [
        ("3", "line 3"),
        ("4", "line 4"),
    ]
    assert "invalid JSON" in skipped[0].reason and "no text" in skipped[1].reason


@pytest.mark.parametrize("name", ["articles.jsonl", "articles.jsonl.gz"])
def test_a_jsonl_larger_than_the_file_cap_is_read_and_the_cap_holds_per_article(
    corpus: Path, name: str
) -> None:
    """A JSONL is a whole corpus: 10,000 articles must not be refused for their sum."""
    cap = 2000
    records = [{"id": f"story-{n}", "title": f"Story {n}", "text": f"{BODY} ({n})"}
               for n in range(12)]  # each line well under the cap, all together over it
    records.insert(5, {"id": "huge", "title": "Huge", "text": BODY * 20})
    data = "".join(json.dumps(r) + "\n" for r in records).encode("utf-8")
    assert len(data) > cap
    path = corpus / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)

    articles, skipped = load_folder(corpus, max_bytes=cap)

    assert [a.id for a in articles] == [f"story-{n}" for n in range(12)]
    assert [s.path.rsplit(":", 1)[1] for s in skipped] == ["6"]
    assert skipped[0].reason.startswith("article too large")


# --- encodings -----------------------------------------------------------------------------

ENCODED_TEXT = f"Café owners said “no” — {BODY}\nŒuvre: {BODY_2}\n"


@pytest.mark.parametrize(
    "encoded",
    [
        ENCODED_TEXT.encode("utf-8"),
        codecs.BOM_UTF8 + ENCODED_TEXT.encode("utf-8"),
        codecs.BOM_UTF16_LE + ENCODED_TEXT.encode("utf-16-le"),
        codecs.BOM_UTF16_BE + ENCODED_TEXT.encode("utf-16-be"),
        ENCODED_TEXT.encode("utf-16-le"),
        ENCODED_TEXT.encode("utf-16-be"),
        ENCODED_TEXT.encode("cp1252"),
        ENCODED_TEXT.replace("\n", "\r\n").encode("utf-8"),
    ],
    ids=["utf8", "utf8-bom", "utf16le-bom", "utf16be-bom", "utf16le", "utf16be", "cp1252", "crlf"],
)
def test_encodings(corpus: Path, encoded: bytes) -> None:
    path = corpus / "encoded.txt"
    path.write_bytes(encoded)
    article = only_article(path)
    assert article.text == ENCODED_TEXT.strip().replace("\n", "\n\n")


def test_latin1_without_smart_quotes(corpus: Path) -> None:
    text = f"Le café était fermé à cause de la grève, a-t-il dit. {BODY}"
    path = corpus / "latin.txt"
    path.write_bytes(text.encode("latin-1"))
    assert only_article(path).text == text


def test_stray_invalid_byte_in_utf8_does_not_crash(corpus: Path) -> None:
    path = corpus / "stray.txt"
    path.write_bytes(f"Café “quoted” — {BODY}".encode() + b"\xff\n")
    article = only_article(path)
    assert article.text.startswith("Café “quoted” — The council voted")


def test_text_is_nfc_normalised(corpus: Path) -> None:
    path = corpus / "nfc.txt"
    path.write_text(f"Cafe\u0301 owners agreed. {BODY}", encoding="utf-8")
    assert only_article(path).text.startswith("Café owners agreed.")


# --- ids and paths ------------------------------------------------------------------------


def test_ids_are_paths_under_the_root_and_distinct(corpus: Path) -> None:
    (corpus / "2024" / "jan").mkdir(parents=True)
    (corpus / "2024" / "jan" / "bridge-vote.txt").write_text(BODY, encoding="utf-8")
    (corpus / "Bridge Vote.txt").write_text(BODY + " Again.", encoding="utf-8")
    (corpus / "bridge-vote.txt").write_text(BODY + " Once more.", encoding="utf-8")
    (corpus / "bridge-vote.md").write_text(BODY + " And more.", encoding="utf-8")
    articles, skipped = load_folder(corpus)
    assert skipped == []
    by_path = {a.path.rsplit("corpus/", 1)[1]: a.id for a in articles if a.path}
    assert all(path == article_id for path, article_id in by_path.items())
    assert len(by_path) == 4
    again = {a.path: a.id for a in load_folder(corpus)[0]}
    assert again == {a.path: a.id for a in articles}


def test_article_id_is_the_path_under_the_root_else_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert article_id(tmp_path / "a" / "b.jsonl.gz", tmp_path) == "a/b.jsonl.gz"
    assert article_id(tmp_path / "x" / "mexico-canada.txt", None) == "x/mexico-canada.txt"
    assert article_id(Path("/elsewhere/report.txt"), tmp_path) == "/elsewhere/report.txt"


def test_path_is_relative_to_cwd(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (corpus / "a.txt").write_text(BODY, encoding="utf-8")
    monkeypatch.chdir(corpus.parent)
    (article,) = [i for i in iter_articles([Path("corpus")]) if isinstance(i, Article)]
    assert article.path == "corpus/a.txt"
    (article,) = [i for i in iter_articles([corpus.absolute()]) if isinstance(i, Article)]
    assert article.path == "corpus/a.txt"


# --- bad input -------------------------------------------------------------------------------


def _random_bytes(seed: int, low: int, size: int) -> bytes:
    generator = random.Random(seed)
    return bytes(generator.randrange(low, 256) for _ in range(size))


def test_random_bytes_named_txt_are_skipped_as_not_text(corpus: Path) -> None:
    # Each of these once decoded as cp1252 or Shift-JIS and became an article titled "Bin".
    for seed, low, size in ((4, 32, 100), (17, 32, 100), (181, 128, 64), (138, 0, 16)):
        (corpus / f"bin-{seed}.txt").write_bytes(_random_bytes(seed, low, size))
    (corpus / "bin.jsonl").write_text(json.dumps(
        {"id": "r1", "text": _random_bytes(4, 32, 100).decode("cp1252", "replace")}) + "\n")
    articles, skipped = load_folder(corpus)
    assert articles == []
    assert len(skipped) == 5 and all("no words" in s.reason for s in skipped)


@pytest.mark.parametrize("text", [
    "中国的经济增长在今年第三季度放缓，官方数据显示。工厂订单下降，出口减少。",
    "東京の株式市場は月曜日に大きく下落しました。投資家は金利を心配しています。",
    "Экономика России выросла на три процента в этом году, сообщил министр.",
    "NASA said on Tuesday the Artemis II crew will fly around the Moon in 2026.",
])
def test_short_real_text_in_any_script_is_not_garbled(text: str) -> None:
    assert garbled_reason(text) is None


def test_each_bad_file_is_skipped_with_a_reason_and_the_rest_loads(corpus: Path) -> None:
    (corpus / "good.txt").write_text(BODY, encoding="utf-8")
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "blank.md").write_text(" \n\t\n  \n", encoding="utf-8")
    (corpus / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (corpus / "noise.txt").write_bytes(bytes([1, 2, 3, 4, 5, 6, 7, 8, 11, 14, 15, 16]) * 50)
    (corpus / "high.md").write_bytes(bytes(range(128, 256)) * 5)
    (corpus / "big.txt").write_text(BODY * 20, encoding="utf-8")
    (corpus / "scan.pdf").write_bytes(make_pdf([[]]))
    (corpus / "broken.pdf").write_bytes(make_pdf([PAGE_ONE])[:300])
    (corpus / "garbage.pdf").write_bytes(b"%PDF-1.4\nthis is not a pdf at all")
    (corpus / "chrome-only.txt").write_text(
        "Sign in to comment\nPrivacy Policy\n", encoding="utf-8"
    )
    articles, skipped = load_folder(corpus, max_bytes=1000)
    assert [a.id for a in articles] == ["good.txt"]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert reasons["empty.txt"] == "empty file"
    assert reasons["blank.md"].startswith("empty file")
    assert reasons["binary.txt"].startswith("binary data")
    assert reasons["noise.txt"].startswith("binary data")
    assert reasons["high.md"].startswith("binary data")
    assert reasons["big.txt"].startswith("file too large")
    assert reasons["scan.pdf"].startswith("PDF has no text layer")
    assert reasons["broken.pdf"].startswith(("broken PDF", "PDF has no"))
    assert reasons["garbage.pdf"].startswith("broken PDF")
    assert reasons["chrome-only.txt"].startswith("no article text")
    assert all("\n" not in reason for reason in reasons.values())


def test_encrypted_pdf(corpus: Path) -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([PAGE_ONE]))))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    (corpus / "locked.pdf").write_bytes(buffer.getvalue())
    articles, skipped = load_folder(corpus)
    assert articles == []
    assert len(skipped) == 1
    assert skipped[0].reason.startswith("encrypted PDF")
    with pytest.raises(UnreadableArticle, match="encrypted PDF"):
        load_file(corpus / "locked.pdf")


def test_pdf_encrypted_without_user_password_is_read(corpus: Path) -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([PAGE_ONE]))))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    (corpus / "open.pdf").write_bytes(buffer.getvalue())
    assert BODY in only_article(corpus / "open.pdf").text


def test_deeply_nested_html_does_not_crash(corpus: Path) -> None:
    depth = 100_000
    page = "<html><body>" + "<div>" * depth + f"<p>{BODY}</p>" + "</div>" * depth + "</body></html>"
    (corpus / "deep.html").write_text(page, encoding="utf-8")
    (corpus / "unclosed.html").write_text("<div>" * depth + BODY, encoding="utf-8")
    articles, skipped = load_folder(corpus)
    assert skipped == []
    assert [a.text for a in articles] == [BODY, BODY]


def test_html_with_script_and_unclosed_tags_falls_back_cleanly(corpus: Path) -> None:
    page = "<div>" * 1000 + f"<script>var x = '<p>not text</p>';</script><h2>Update</h2><p>{BODY}"
    (corpus / "odd.htm").write_text(page, encoding="utf-8")
    article = only_article(corpus / "odd.htm")
    assert "not text" not in article.text
    assert BODY in article.text


def test_symlinks(corpus: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text(BODY, encoding="utf-8")
    (corpus / "inside.txt").write_text(BODY_2 + " " + BODY, encoding="utf-8")
    os.symlink(outside, corpus / "escape.txt")
    os.symlink(corpus / "inside.txt", corpus / "alias.txt")
    os.symlink(tmp_path / "missing.txt", corpus / "dangling.txt")
    os.symlink(tmp_path, corpus / "up")
    articles, skipped = load_folder(corpus)
    assert sorted(Path(a.path or "").name for a in articles) == ["alias.txt", "inside.txt"]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert reasons == {
        "escape.txt": "symlink points outside the corpus folder",
        "dangling.txt": "broken symlink",
        "up": "symlink points outside the corpus folder",
    }


def test_hidden_and_unsupported_files(corpus: Path) -> None:
    (corpus / ".git").mkdir()
    (corpus / ".git" / "notes.txt").write_text(BODY, encoding="utf-8")
    (corpus / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (corpus / "photo.png").write_bytes(b"\x89PNG\r\n")
    (corpus / "data.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (corpus / "story.docx").write_bytes(b"PK\x03\x04")
    (corpus / "story.txt").write_text(BODY, encoding="utf-8")
    articles, skipped = load_folder(corpus)
    assert [a.id for a in articles] == ["story.txt"]
    assert [(Path(s.path).name, s.reason) for s in skipped] == [
        ("story.docx", "unsupported file type .docx")
    ]


def test_explicit_paths_missing_and_unsupported(tmp_path: Path) -> None:
    (tmp_path / "notes.csv").write_text("a,b\n", encoding="utf-8")
    items = list(iter_articles([tmp_path / "nope.txt", tmp_path / "notes.csv"]))
    assert [(Path(i.path).name, i.reason) for i in items if isinstance(i, Skipped)] == [
        ("nope.txt", "no such file or folder"),
        ("notes.csv", "unsupported file type .csv"),
    ]


def test_jsonl_that_is_not_jsonl(corpus: Path) -> None:
    (corpus / "bad.jsonl").write_text("hello\nworld\n", encoding="utf-8")
    (corpus / "bad.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    articles, skipped = load_folder(corpus)
    assert articles == []
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert reasons["bad.jsonl"].startswith("not an articles JSONL")
    assert reasons["bad.jsonl.gz"].startswith("broken gzip file")


def test_supported_suffixes() -> None:
    assert {".txt", ".md", ".html", ".htm", ".pdf", ".jsonl", ".jsonl.gz"} <= SUPPORTED_SUFFIXES

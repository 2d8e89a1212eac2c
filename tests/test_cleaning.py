"""Page chrome out, body in: the seed article, scraped news, and what must never be eaten."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from bench.chrome_report import is_known_chrome, measure
from index.cleaning import (
    Paragraph,
    clean_article_text,
    clean_paragraphs,
    corpus_chrome_lines,
    split_paragraphs,
)
from index.encoding import decode_text

SEED = Path(__file__).resolve().parent.parent / "corpus" / "mexico-canada-critical-minerals.txt"
BENCHMARK = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "benchmarks"
    / "realtimeqa-news"
    / "articles.jsonl.gz"
)

SEED_CHROME = (
    "The Swamp logo",
    "🔹",
    "Formal / News Style",
    "Neutral & Informative",
    "Reader insights",
    "Add your insights",
    "Be the first to share your insights",
    "How does it work?",
    "Comments",
    "There are no comments for this story",
    "Sign in to comment",
    "Find us on social media",
    "Miscellaneous links",
    "Explore",
    "Privacy Policy",
    "Terms of Use",
    "© 2026 Creatd, Inc.",
    "All Rights Reserved",
    "About the Creator",
    "I am a passionate writer",
    "politics",
    "By Fiaz Ahmed Published about 23 hours ago 3 min read",
    "3 min read",
)
SEED_HEADINGS = (
    "Strategic Motivation",
    "Focus on Lithium and Battery Materials",
    "Trade and Diplomatic Implications",
    "Challenges Ahead",
    "A Regional Vision",
    "Looking Ahead",
)


def seed_body_lines(raw: str) -> list[str]:
    """Every source line from "Mexico and Canada are preparing" to "high-tech industries."."""
    lines = raw.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("Mexico and Canada are"))
    end = next(i for i, line in enumerate(lines) if line.endswith("high-tech industries."))
    return [line for line in lines[start : end + 1] if line.strip()]


@pytest.fixture(scope="module")
def seed_raw() -> str:
    return decode_text(SEED.read_bytes())


def test_seed_title_author_and_no_chrome(seed_raw: str) -> None:
    clean = clean_article_text(seed_raw)
    assert clean.title == "Mexico and Canada Plan Joint Action on Critical Minerals"
    assert clean.author == "Fiaz Ahmed"
    for chrome in SEED_CHROME:
        assert chrome not in clean.text, chrome
    assert "Mexico and Canada Plan Joint Action" not in clean.text  # the title is metadata


def test_seed_body_kept_verbatim_one_paragraph_per_line(seed_raw: str) -> None:
    clean = clean_article_text(seed_raw)
    body = seed_body_lines(seed_raw)
    assert len(body) == 25
    for line in body:
        assert line in clean.text, line
    assert clean.text.split("\n\n") == body
    assert clean.text.startswith("Mexico and Canada are preparing")
    assert clean.text.endswith("high-tech industries.")


def test_seed_headings_recorded(seed_raw: str) -> None:
    clean = clean_article_text(seed_raw)
    recorded = [clean.text[start:end] for start, end in clean.headings]
    assert recorded == list(SEED_HEADINGS)
    for start, end in clean.headings:
        assert clean.text[start - 2 : start] == "\n\n"
        assert clean.text[end : end + 2] == "\n\n"


SCRAPED = "\n".join(
    [
        "Washington CNN —",
        "We use cookies to improve your experience. By continuing you accept our cookie policy.",
        "Sign up for our free Morning Briefing newsletter delivered to your inbox.",
        '"We are serious about taking action."',
        "The city council voted on Tuesday to approve a new bridge across the river, ending a "
        "debate that had lasted for more than three years.",
        "Video Ad Feedback Council debates the bridge 02:10 - Source: CNN",
        "How relevant is this ad to you?",
        "Video player was slow to load content",
        "Ad was repetitive to ones I have seen previously",
        "He was 65.",
        "Council members cheer after the vote in the chamber on Tuesday. John Doe/Getty Images",
        "Construction is expected to begin in the spring, officials said, with completion "
        "planned for 2027 if funding holds.",
        "“It’s a great day — for everyone,” the mayor said.",
        "Share this article",
        "Read more",
        "Follow us on Twitter and Facebook",
        "© 2024 Example News. All rights reserved.",
    ]
)


def test_scraped_news_chrome_removed_body_kept() -> None:
    clean = clean_article_text(SCRAPED)
    paragraphs = clean.text.split("\n\n")
    assert paragraphs == [
        '"We are serious about taking action."',
        "The city council voted on Tuesday to approve a new bridge across the river, ending "
        "a debate that had lasted for more than three years.",
        "He was 65.",
        "Construction is expected to begin in the spring, officials said, with completion "
        "planned for 2027 if funding holds.",
        "“It’s a great day — for everyone,” the mayor said.",
    ]


def test_interface_words_inside_prose_do_not_make_chrome() -> None:
    raw = (
        "Officials said the agency would share more data with subscribers to its public "
        "health newsletter next week, a spokesperson told reporters in an email.\n"
        "Reservists will simply have to sign up at a local office, the official said, "
        "adding that training would begin soon.\n"
    )
    assert clean_article_text(raw).text.split("\n\n") == raw.strip().split("\n")


def test_trailing_list_after_body_is_content() -> None:
    raw = (
        "Here are the markets that stayed open through the pandemic, according to the city, "
        "with the street where each can be found.\n"
        "El Rey Market: 7600 National Turnpike\n"
        "La Favorita: 6201 Preston Highway\n"
        "Belel Market: 4109 Bardstown Road\n"
        "Viet Hoa: 7100 Preston Highway\n"
    )
    assert clean_article_text(raw).text.split("\n\n") == raw.strip().split("\n")


def test_short_lines_between_body_are_kept_and_headings_found() -> None:
    raw = (
        "The storm hit the coast overnight, knocking out power to 200,000 homes and closing "
        "schools across three counties.\n"
        "What happens next\n"
        "Crews expect to restore most power by Friday, the utility said in a statement on "
        "Wednesday morning.\n"
        "$750 million\n"
        "That is the estimated cost of the damage so far, according to the state's early "
        "figures released on Thursday.\n"
    )
    clean = clean_article_text(raw)
    assert clean.text.split("\n\n") == raw.strip().split("\n")
    assert clean.text[slice(*clean.headings[0])] == "What happens next"


def test_corpus_repetition_marks_chrome_but_not_headings_in_body() -> None:
    promo = "Get our Evening Digest every weekday"
    texts = [
        f"{promo}\nStory {n} begins with a long sentence about the local election results "
        f"in district {n}, which were announced late on Sunday.\nArkansas\nArkansas voters "
        f"approved the measure {n} by a wide margin, officials said on Monday evening.\n"
        for n in range(4)
    ]
    texts.append(texts[0])  # a duplicate text counts once
    lines = corpus_chrome_lines(texts, min_articles=3)
    assert "get our evening digest every weekday" in lines
    assert "arkansas" in lines
    clean = clean_article_text(texts[1], chrome_lines=lines)
    assert promo not in clean.text
    assert [clean.text[s:e] for s, e in clean.headings] == ["Arkansas"]


def test_repetition_needs_enough_distinct_articles() -> None:
    texts = ["Shared line here\nBody one."] * 5 + ["Shared line here\nBody two."]
    assert corpus_chrome_lines(texts, min_articles=3) == frozenset()


def test_spaces_collapse_but_characters_stay() -> None:
    raw = "The  minister\tsaid “yes” — and left   the room at 5 p.m. on Monday, aides said.\n"
    clean = clean_article_text(raw)
    assert (
        clean.text == "The minister said “yes” — and left the room at 5 p.m. on Monday, aides said."
    )


def test_hard_wrapped_text_is_unwrapped_into_paragraphs() -> None:
    wrapped = (
        "The committee met on Monday to discuss the budget for the coming year and\n"
        "agreed to raise spending on schools by four percent, members said after\n"
        "the meeting ended late in the evening.\n"
        "\n"
        "Opposition members said the increase was not enough to cover rising costs\n"
        "and called for a larger rise before the final vote in the spring session\n"
        "of the assembly.\n"
    )
    assert split_paragraphs(wrapped) == [
        "The committee met on Monday to discuss the budget for the coming year and agreed "
        "to raise spending on schools by four percent, members said after the meeting "
        "ended late in the evening.",
        "Opposition members said the increase was not enough to cover rising costs and "
        "called for a larger rise before the final vote in the spring session of the "
        "assembly.",
    ]


def test_pages_offsets_follow_kept_paragraphs() -> None:
    paragraphs = [
        Paragraph("First page body sentence that is long enough to count as prose here.", 1),
        Paragraph("Second page body sentence that is long enough to count as prose too.", 2),
    ]
    clean = clean_paragraphs(paragraphs, page_count=3)
    assert clean.pages == (0, clean.text.index("Second page"), len(clean.text))


def test_byline_date_is_read() -> None:
    raw = (
        "By Jane Roe and John Doe | Published March 5, 2024\n"
        "The council voted on Tuesday to approve the new bridge, ending a long debate.\n"
    )
    clean = clean_article_text(raw)
    assert clean.author == "Jane Roe, John Doe"
    assert clean.published == "2024-03-05"
    assert clean.text.startswith("The council voted")


def test_sentences_that_start_like_bylines_are_body() -> None:
    raw = (
        "By Monday, officials said the storm had passed and roads were open again.\n"
        "Updated figures released on Tuesday show the state gained 2,000 jobs last month.\n"
    )
    clean = clean_article_text(raw)
    assert clean.author is None
    assert clean.text.split("\n\n") == raw.strip().split("\n")


def _write_jsonl(path: Path, texts: list[str]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for number, text in enumerate(texts):
            handle.write(json.dumps({"id": f"a{number}", "title": f"T{number}", "text": text}))
            handle.write("\n")


def test_measure_counts_known_chrome_before_and_after(tmp_path: Path) -> None:
    texts = [
        "CNN —\nThe senate passed the bill on Friday after a long night of debate, aides said.\n"
        "Sign up for our newsletter here.\nRead More\n"
        for _ in range(3)
    ]
    path = tmp_path / "articles.jsonl.gz"
    _write_jsonl(path, texts)
    count = measure(path, limit=50)
    assert count.articles == 3
    assert count.before == 9
    assert count.after == 0
    assert is_known_chrome("Video Ad Feedback Something 01:02 - Source: CNN")


@pytest.mark.skipif(not BENCHMARK.exists(), reason="benchmark data not present")
def test_benchmark_first_50_articles_lose_their_chrome() -> None:
    count = measure(BENCHMARK, limit=50)
    assert count.before > 100
    assert count.after <= 5
    # Nearly every line that is not known chrome survives.
    assert len(count.dropped_unknown) <= 0.03 * count.raw_lines

"""Measure the cleaner on an articles JSONL: known chrome lines before and after cleaning."""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from index.cleaning import clean_article_text, corpus_chrome_lines, normalise_line

# Chrome seen in scraped news (CNN, USA Today, The Week and blog platforms), written down
# by hand from reading samples: the yardstick, kept apart from the cleaner's own signals.
KNOWN_CHROME = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"^(?:[A-Z][\w.,' ]*\s)?\(?CNN(?: ?Business)?\)?\s?—$",
        r"^\(CNN\)$",
        r"JUST WATCHED|MUST WATCH|Replay More Videos",
        r"Video Ad Feedback|How relevant is this ad|Video player was slow|Ad was repetitive",
        r"\bsign up (?:here|for|now)\b|\bnewsletter\b|\bsubscribe\b|in your inbox",
        r"(?:Getty Images|/AP|/AFP|/Reuters|Everett Collection|/Handout)$",
        r"^Read More:?$|^Click here|\(Click here|Hide Caption",
        r"This story (?:and headline )?has been updated|contributed to this (?:report|story)",
        r"^Contributing:|earlier version of this story",
        r"local forecast here|Take CNN’s weekly news quiz",
        r"^More:|^Read more:|^You may like:|^Related:",
        r"follow (?:us|her|him) on|Follow .* on Twitter|@\w+\.com",
        r"All Rights Reserved|©|Privacy Policy|Terms of Use|Sign in to comment",
        r"^Comments$|Reader insights|Add your insights|min read$|About the Creator",
        r"support (?:local )?journalism|content partner|Download our app",
    )
)


@dataclass
class ChromeCount:
    """How many known chrome lines the raw and the cleaned texts hold."""

    articles: int = 0
    before: int = 0
    after: int = 0
    raw_lines: int = 0
    kept_lines: int = 0
    remaining: list[str] = field(default_factory=list)
    # Lines the cleaner dropped that no known pattern names: where to look for lost body.
    dropped_unknown: list[str] = field(default_factory=list)


def is_known_chrome(line: str) -> bool:
    """Whether a line matches one of the hand-written chrome patterns."""
    return any(pattern.search(line) for pattern in KNOWN_CHROME)


def measure(path: Path, *, limit: int = 50) -> ChromeCount:
    """Clean the first `limit` articles of a JSONL, with repetition learned from all of it."""
    records = _read_records(path)
    chrome_lines = corpus_chrome_lines(record["text"] for record in records)
    count = ChromeCount()
    for record in records[:limit]:
        cleaned = clean_article_text(
            record["text"], title_hint=record.get("title"), chrome_lines=chrome_lines
        )
        _count_article(count, record["text"], cleaned.text)
    return count


def _count_article(count: ChromeCount, raw: str, clean: str) -> None:
    raw_lines = [line.strip() for line in raw.split("\n") if line.strip()]
    kept = {normalise_line(line) for line in clean.split("\n\n")}
    count.articles += 1
    count.raw_lines += len(raw_lines)
    for line in raw_lines:
        known = is_known_chrome(line)
        survived = normalise_line(line) in kept
        count.before += known
        count.kept_lines += survived
        if known and survived:
            count.after += 1
            count.remaining.append(line)
        elif not known and not survived:
            count.dropped_unknown.append(line)


def _read_records(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def main(argv: Sequence[str]) -> int:
    """`python -m bench.chrome_report --report PATH [--limit N] [--show]`."""
    parser = argparse.ArgumentParser(prog="python -m bench.chrome_report")
    parser.add_argument("--report", type=Path, required=True, help="articles JSONL (.gz)")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--show", action="store_true", help="list remaining and dropped lines")
    args = parser.parse_args(argv)
    count = measure(args.report, limit=args.limit)
    print(
        f"articles={count.articles} lines={count.raw_lines} kept={count.kept_lines} "
        f"known_chrome_before={count.before} known_chrome_after={count.after} "
        f"dropped_not_known_chrome={len(count.dropped_unknown)}"
    )
    if args.show:
        for line in count.remaining:
            print(f"REMAINING  {line[:160]}")
        for line in count.dropped_unknown:
            print(f"DROPPED    {line[:160]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

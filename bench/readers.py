"""What the Markdown reader and the fallback HTML reader cost, on prose and on hostile input.

Markdown goes through markdown-it-py up to `MAX_PARSED_MARKDOWN_CHARS`; HTML that
trafilatura cannot take (too large or too deep) streams through lxml's parser. Both must
stay roughly linear, so each input is timed at two sizes.

Usage: python -m bench.readers [--size CHARS]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from bench.benchlib import ROOT, Stopwatch, markdown_table, report
from index.formats import read_markdown, strip_tags_extraction

SEED = ROOT / "corpus" / "mexico-canada-critical-minerals.txt"


def _repeat(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def inputs(size: int) -> list[tuple[str, str, Callable[[str], Any], str]]:
    """(reader, input, read, text) at `size` characters."""
    seed = SEED.read_text(encoding="utf-8")
    prose = _repeat(seed + "\n\n", size)
    return [
        ("markdown", "prose (the seed article)", read_markdown, prose),
        ("markdown", "hostile: '['", read_markdown, "[" * size),
        ("markdown", "hostile: '_a '", read_markdown, _repeat("_a ", size)),
        ("html fallback", "prose in <p>", strip_tags_extraction,
         _repeat("".join(f"<p>{p}</p>" for p in seed.split("\n\n")), size)),
        ("html fallback", "hostile: '<div>'", strip_tags_extraction, "<div>" * (size // 5)),
        ("html fallback", "hostile: '<'", strip_tags_extraction, "<" * size),
        ("html fallback", "hostile: '<!'", strip_tags_extraction, "<!" * (size // 2)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=250_000,
                        help="characters of the smaller input; the larger is twice as long")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for small, large in zip(inputs(args.size), inputs(2 * args.size), strict=True):
        reader, name, read, _ = small
        seconds = []
        for _, _, _, text in (small, large):
            with Stopwatch() as took:
                read(text)
            seconds.append(took.seconds)
        rows.append({
            "reader": reader, "input": name,
            f"{args.size:,} chars (s)": round(seconds[0], 2),
            f"{2 * args.size:,} chars (s)": round(seconds[1], 2),
            "µs per char": round(seconds[1] / (2 * args.size) * 1e6, 2),
        })
    report("readers", {"size": args.size, "rows": rows}, markdown_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()

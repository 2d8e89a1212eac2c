"""Does every embedded passage, with its title and section context, fit the model window?

Chunks a corpus as `dossier ingest` does and builds each passage's embedding input twice:
with the context cut to 40 word pieces (what ingest does) and, as the baseline, cut to 20
words (the earlier rule). Counts inputs past the window (the model would silently drop
their ends) and times building the inputs, both in the same run, with the chunking of the
same articles for scale. `--title-words N`
replaces every title by the first N words of a long Polish sentence, the case where words
split into many pieces.

Usage: python -m bench.context_window [--corpus ARTICLES.jsonl.gz] [--title-words N]
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.benchlib import REALTIMEQA_ARTICLES, Stopwatch, markdown_table, report
from index.articles_jsonl import iter_jsonl_articles
from index.embeddings import SentenceEmbeddings
from index.ingest import Ingestor
from index.models import Article, Chunk

POLISH = (
    "Prezydent Rzeczypospolitej Polskiej zapowiedział nowelizację ustawy o odnawialnych "
    "źródłach energii podczas konferencji prasowej w Brukseli, przeciwdziałając "
    "dezinformacji dotyczącej bezpieczeństwa energetycznego państwa członkowskiego"
)
BASELINE_CONTEXT_WORDS = 20


def by_words(passages: Sequence[tuple[Article, Chunk]]) -> list[str]:
    """The earlier rule: title and heading cut to their first 20 words."""
    texts = []
    for article, chunk in passages:
        parts = [article.title.strip()]
        if chunk.heading and not chunk.text.startswith(chunk.heading):
            parts.append(chunk.heading.strip())
        context = " ".join(" — ".join(p for p in parts if p).split()[:BASELINE_CONTEXT_WORDS])
        texts.append(f"{context}\n{chunk.text}" if context else chunk.text)
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=REALTIMEQA_ARTICLES)
    parser.add_argument("--title-words", type=int, default=0,
                        help="replace titles by this many words of a Polish sentence")
    args = parser.parse_args()

    embedder = SentenceEmbeddings(precision="fp32")
    ingestor = Ingestor(store=None, embedder=embedder)  # type: ignore[arg-type]
    window = embedder.max_tokens - 2  # [CLS] and [SEP]
    articles = [a for a in iter_jsonl_articles(args.corpus, "corpus", max_bytes=2**31)
                if isinstance(a, Article)]
    if args.title_words:
        title = " ".join(POLISH.split()[: args.title_words])
        articles = [dataclasses.replace(a, title=title) for a in articles]
    with Stopwatch() as chunking:  # for scale: the tokenizer-bound step before this one
        pairs = [(a, c) for a in articles for c in ingestor.chunk(a)]

    rows: list[dict[str, Any]] = []
    for rule, build in (("20 words (baseline)", by_words),
                        ("40 word pieces", ingestor.embedding_inputs)):
        with Stopwatch() as took:
            inputs = build(pairs)
        pieces = embedder.count_tokens(inputs)
        rows.append({
            "context cut": rule,
            "passages": len(inputs),
            "past the window": sum(n > window for n in pieces),
            "largest input (pieces)": max(pieces),
            "build inputs (s)": round(took.seconds, 2),
            "per passage (µs)": round(took.seconds / len(inputs) * 1e6, 1),
        })
    columns = list(rows[0])
    report("context_window", {"corpus": str(args.corpus), "articles": len(articles),
                              "title_words": args.title_words, "window": window,
                              "chunking_s": round(chunking.seconds, 1), "rows": rows},
           markdown_table(rows, columns) + f"\n\nChunking the articles: {chunking.seconds:.1f} s")


if __name__ == "__main__":
    main()

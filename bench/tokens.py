"""How much text each pipeline gives the model: word pieces in the recipe's chunks and ours.

Embedding time is proportional to word pieces, so this says how much of an ingest-speed
difference can come from splitting (overlap, chrome, context) rather than from the model.
Also times Dossier's reading + cleaning and chunking of the corpus (no model, no store).

Usage: python -m bench.tokens [--corpus ARTICLES.jsonl.gz]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.benchlib import REALTIMEQA_ARTICLES, markdown_table, read_jsonl, report
from index.articles_jsonl import iter_jsonl_articles
from index.chunking import chunk_article, embedding_texts
from index.embeddings import SentenceEmbeddings
from index.models import Article

MODEL_WINDOW = 254  # word pieces the model reads, less [CLS] and [SEP]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=REALTIMEQA_ARTICLES)
    args = parser.parse_args()
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    count = SentenceEmbeddings(precision="fp32").count_tokens
    raw = [record["text"] for record in read_jsonl(args.corpus)]
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    chunks = [chunk for text in raw for chunk in splitter.split_text(text)]
    recipe_pieces = [min(n, MODEL_WINDOW) for n in count(chunks)]  # the model truncates

    started = time.perf_counter()
    articles = [a for a in iter_jsonl_articles(args.corpus, "corpus", max_bytes=2**31)
                if isinstance(a, Article)]
    cleaned = time.perf_counter()
    passages = embedding_texts([(a, c) for a in articles for c in chunk_article(a, count)], count)
    chunked = time.perf_counter()
    ours_pieces = count(passages)

    rows = [
        {"pipeline": "recipe (1000/200 characters, raw text)", "items": len(chunks),
         "word pieces": sum(recipe_pieces),
         "per item": round(sum(recipe_pieces) / len(chunks), 1),
         "text word pieces": sum(count(raw))},
        {"pipeline": "Dossier (cleaned, passages with title/section context)",
         "items": len(passages), "word pieces": sum(ours_pieces),
         "per item": round(sum(ours_pieces) / len(passages), 1),
         "text word pieces": sum(count([a.text for a in articles])),
         "read + clean s": round(cleaned - started, 1),
         "chunk s": round(chunked - cleaned, 1)},
    ]
    report("tokens", {"corpus": str(args.corpus), "rows": rows},
           markdown_table(rows, list(rows[1])))


if __name__ == "__main__":
    main()

"""What moving an index from stem ids to path ids costs on its next ingest.

N realtimeqa articles are written as .txt files and ingested the way Dossier did before ids
were paths (the file's stem), then ingested again with path ids. Reported: the seconds and
passages embedded of each ingest; the second should embed nothing (vectors reused), and
cost about what a third, unchanged, ingest does plus the rewrite of the passages.

    .venv/bin/python -m bench.identity_move --articles 300 [--source ARTICLES.jsonl.gz]
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import index.loaders
from bench.benchlib import REALTIMEQA_ARTICLES, Stopwatch, markdown_table, read_jsonl, report
from bot.factory import Dossier
from bot.settings import load_settings


def stem_id(path: Path, corpus_root: Path | None) -> str:
    """How ids were made before they were paths: the file's stem, slugged."""
    return re.sub(r"[^a-z0-9]+", "-", path.name.split(".")[0].lower()).strip("-")


def write_corpus(folder: Path, source: Path, count: int) -> int:
    """The first `count` articles of `source` as title + text files; how many were written."""
    written = 0
    for record in read_jsonl(source):
        if written == count:
            break
        text = f"{record.get('title') or ''}\n\n{record['text']}"
        (folder / f"article-{written:04d}.txt").write_text(text, encoding="utf-8")
        written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=300)
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "int8"])
    parser.add_argument("--source", type=Path, default=REALTIMEQA_ARTICLES,
                        help="Articles JSONL to take the texts from.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        corpus, data = Path(scratch) / "corpus", Path(scratch) / "data"
        corpus.mkdir()
        articles = write_corpus(corpus, args.source, args.articles)
        settings = load_settings(data_dir=data, corpus={"path": corpus},
                                 index={"precision": args.precision})
        dossier = Dossier(settings)
        rows = []
        original = index.loaders.article_id
        index.loaders.article_id = stem_id
        try:
            with Stopwatch() as clock:
                built = dossier.ingest()
        finally:
            index.loaders.article_id = original
        rows.append({"ingest": "first, stem ids (before)", "seconds": round(clock.seconds, 1),
                     "added": built.added, "updated": built.updated,
                     "passages embedded": built.embedded, "passages": built.passages})
        with Stopwatch() as clock:
            moved = dossier.ingest()
        rows.append({"ingest": "next, path ids (moves)", "seconds": round(clock.seconds, 1),
                     "added": moved.added, "updated": moved.updated,
                     "passages embedded": moved.embedded, "passages": moved.passages})
        with Stopwatch() as clock:
            again = dossier.ingest()
        rows.append({"ingest": "again, unchanged", "seconds": round(clock.seconds, 1),
                     "added": again.added, "updated": again.updated,
                     "passages embedded": again.embedded, "passages": again.passages})
        ids = sorted(dossier.store.records())
    columns = ["ingest", "seconds", "added", "updated", "passages embedded", "passages"]
    report("identity-move", {"articles": articles, "precision": args.precision, "rows": rows,
                             "ids_are_paths": all(i.endswith(".txt") for i in ids)},
           markdown_table(rows, columns))


if __name__ == "__main__":
    main()

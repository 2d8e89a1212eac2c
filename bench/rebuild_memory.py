"""What the end of an ingest costs in memory: each derived index rebuilt from the store.

An ingest's write ends by rebuilding, from Chroma, the passages' keyword index with the
passage table (one read of the passages), the articles' keyword index and the article
vectors (index/store.py, `finish_write`). In a fresh process on a copy of a data dir,
this rebuilds each in turn and reports the process's RSS before, its peak during, and
after each, with the seconds.
Point it at a copy: the rebuilt indexes are saved under a generation no reader uses, so a
reader of the copy rebuilds them again.

With `--serving`, the process first holds the derived indexes as a serving process does
(the bot, when an admin's upload starts a write), then runs one whole write's seal
(`begin_write`, `finish_write`) and reports its peak: what a long-lived process pays to
ingest one more article into a large index.

Usage: python -m bench.rebuild_memory --data-dir COPY [--serving]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench.benchlib import PeakRSS, markdown_table, report, rss_mb
from index.heap import return_freed_memory

# What `finish_write` runs, in its order.
STEPS = ("_rebuild_keyword_and_table", "_rebuild_article_keyword", "_rebuild_article_vectors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--serving", action="store_true",
                        help="hold the derived indexes first, then time one write's seal")
    args = parser.parse_args()
    from bot.factory import Dossier
    from bot.settings import load_settings

    store = Dossier(load_settings(data_dir=args.data_dir)).store
    if args.serving:
        serving_then_write(store, args.data_dir)
        return
    rows: list[dict[str, Any]] = [{"step": "open the store", "passages": store.count(),
                                   "after MB": rss_mb()}]
    for step in STEPS:
        started = time.perf_counter()
        with PeakRSS(0.01) as peak:
            before = rss_mb()
            getattr(store, step)("bench-rebuild")
        rows.append({"step": step.removeprefix("_rebuild_"), "before MB": before,
                     "peak MB": peak.peak_mb, "after MB": rss_mb(),
                     "s": round(time.perf_counter() - started, 1)})
    report("rebuild-memory", {"data_dir": str(args.data_dir), "rows": rows},
           markdown_table(rows, ["step", "passages", "before MB", "peak MB", "after MB", "s"]))


def serving_then_write(store: Any, data_dir: Path) -> None:
    """The derived indexes loaded (or rebuilt) as a question would, then a write sealed."""
    for load in (store.keyword_index, store.article_keyword_index,
                 store.article_vector_index, store.passage_table):
        load()
    return_freed_memory()  # what loading them freed is not the write's
    serving = rss_mb()
    started = time.perf_counter()
    with PeakRSS(0.01) as peak:
        store.begin_write()
        store.finish_write()
    row = {"step": "serving, then a write sealed", "passages": store.count(),
           "before MB": serving, "peak MB": peak.peak_mb, "after MB": rss_mb(),
           "s": round(time.perf_counter() - started, 1)}
    report("rebuild-memory-serving", {"data_dir": str(data_dir), "rows": [row]},
           markdown_table([row], ["step", "passages", "before MB", "peak MB", "after MB", "s"]))


if __name__ == "__main__":
    main()

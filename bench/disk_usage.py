"""An index's size on disk by part (Chroma's tables, HNSW files, our own files), beside the
recipe's."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path
from typing import Any

from bench.benchlib import dir_mb, markdown_table, report

# Chroma's SQLite tables (and their indexes) grouped by what they hold.
_TABLE_GROUPS = {
    "full-text": ("embedding_fulltext_search",),
    "metadata": ("embedding_metadata", "sqlite_autoindex_embedding_metadata"),
    "log": ("embeddings_queue",),
    "ids": ("embeddings", "sqlite_autoindex_embeddings"),
}
COLUMNS = [
    "index", "total", "chroma_sqlite", "full-text", "metadata", "log", "ids", "free",
    "hnsw", "sentence_vectors", "int8_model", "keyword",
]


def _mib(size: float) -> float:
    return round(size / 2**20, 1)


def sqlite_parts(path: Path) -> dict[str, float]:
    """A Chroma SQLite file's pages by group of tables, in MiB (SQLite's dbstat table)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        page = int(db.execute("pragma page_size").fetchone()[0])
        free = int(db.execute("pragma freelist_count").fetchone()[0])
        by_name = dict(db.execute("select name, sum(pgsize) from dbstat group by name"))
    finally:
        db.close()
    parts = dict.fromkeys(_TABLE_GROUPS, 0.0)
    for name, size in by_name.items():
        group = next((g for g, prefixes in _TABLE_GROUPS.items()
                      if any(name.startswith(p) for p in prefixes)), None)
        if group is not None:
            parts[group] += size
    return {**{g: _mib(s) for g, s in parts.items()}, "free": _mib(free * page)}


def _mb_if_there(path: Path) -> float:
    if path.is_file():
        return round(path.stat().st_blocks * 512 / 2**20, 1)
    return dir_mb(path) if path.is_dir() else 0.0


def index_parts(label: str, root: Path) -> dict[str, Any]:
    """A data dir (or the recipe's work dir) by part: `root/chroma` holds Chroma's files."""
    chroma = root / "chroma"
    sqlite_file = chroma / "chroma.sqlite3"
    return {
        "index": label,
        "total": dir_mb(root),
        "chroma_sqlite": _mb_if_there(sqlite_file),
        **sqlite_parts(sqlite_file),
        "hnsw": round(sum(dir_mb(d) for d in chroma.iterdir() if d.is_dir()), 1),
        "sentence_vectors": _mb_if_there(root / "sentences"),
        "int8_model": _mb_if_there(root / "int8"),
        "keyword": _mb_if_there(root / "keyword"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, action="append", default=[],
                        help="a Dossier data dir (repeatable)")
    parser.add_argument("--recipe-workdir", type=Path, action="append", default=[],
                        help="the recipe's work dir, as bench.recipe names it (repeatable)")
    args = parser.parse_args()
    rows = [index_parts(f"Dossier {d.name}", d) for d in args.data_dir]
    rows += [index_parts(f"recipe {d.name}", d) for d in args.recipe_workdir]
    report("disk_usage", {"indexes": rows},
           "MiB (what `du` counts)\n\n" + markdown_table(rows, COLUMNS))


if __name__ == "__main__":
    main()

"""Ingest throughput, index size and memory on a fresh data dir, then an unchanged re-ingest."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.benchlib import (
    REALTIMEQA_ARTICLES,
    ROOT,
    PeakRSS,
    Stopwatch,
    dir_mb,
    markdown_table,
    report,
    rss_mb,
)
from bot.factory import Dossier
from bot.settings import load_settings

COLUMNS = [
    "articles", "passages", "seconds", "passages/s", "articles/s", "index_mb", "peak_rss_mb",
    "peak_rss_with_child_mb", "reingest_s", "reingest_embedded", "reingest_cli_s",
]


def ingest(corpus: Path, data_dir: Path) -> dict[str, Any]:
    """Ingest `corpus` into an empty `data_dir` and measure it, model load kept apart."""
    dossier = Dossier(load_settings(data_dir=data_dir))
    with Stopwatch() as load:
        warm_up(dossier)
    before_mb = rss_mb()
    with PeakRSS() as rss, PeakRSS(children=True) as with_build, Stopwatch() as first:
        done = dossier.ingestor().run([corpus])
    # Printed at once: a long ingest's figures must survive whatever fails after it.
    print(f"first ingest: {done.added} articles, {done.passages} passages, "
          f"{first.seconds:.1f} s, peak RSS {rss.peak_mb} MB "
          f"({with_build.peak_mb} MB with the model-building child)",
          file=sys.stderr, flush=True)
    # A new Dossier opens the store afresh, as the next `dossier ingest` would.
    again = Dossier(load_settings(data_dir=data_dir), embedder=dossier.embedder)
    with Stopwatch() as second:
        unchanged = again.ingestor().run([corpus])
    return {
        "corpus": str(corpus),
        "articles": done.added,
        "skipped": len(done.skipped),
        "passages": done.passages,
        "model_load_s": round(load.seconds, 2),
        "seconds": round(first.seconds, 1),
        "passages/s": round(done.passages / first.seconds, 1),
        "articles/s": round(done.added / first.seconds, 2),
        "index_mb": dir_mb(data_dir),
        "rss_before_mb": before_mb,
        "peak_rss_mb": rss.peak_mb,
        "peak_rss_with_child_mb": with_build.peak_mb,
        "heavy_imports": heavy_imports(),
        "reingest_s": round(second.seconds, 2),
        "reingest_embedded": unchanged.embedded,
        "reingest_unchanged": unchanged.unchanged,
        "reingest_cli_s": cli_reingest(corpus, data_dir),
    }


def warm_up(dossier: Dossier) -> None:
    """Load the data dir's OpenVINO model before the clock starts, when there is one: model
    load is a start-up cost, not ingest. A fresh data dir has none; its ingest builds one
    (in a child process), and that is part of the ingest."""
    if dossier.embedder.openvino is not None:
        dossier.embedder.encode(["warm up"])


def heavy_imports() -> list[str]:
    """Which of torch's world this process imported (an ingest should not need them)."""
    return sorted(m for m in ("torch", "sentence_transformers", "transformers", "nncf")
                  if m in sys.modules)


def reingest_only(corpus: Path, data_dir: Path) -> dict[str, Any]:
    """The unchanged re-ingest alone, on an index built earlier from the same corpus."""
    dossier = Dossier(load_settings(data_dir=data_dir))
    warm_up(dossier)
    with PeakRSS() as rss, Stopwatch() as took:
        unchanged = dossier.ingestor().run([corpus])
    return {
        "corpus": str(corpus),
        "passages": unchanged.passages,
        "index_mb": dir_mb(data_dir),
        "reingest_s": round(took.seconds, 2),
        "reingest_embedded": unchanged.embedded,
        "reingest_unchanged": unchanged.unchanged,
        "reingest_peak_rss_mb": rss.peak_mb,
        "reingest_cli_s": cli_reingest(corpus, data_dir),
    }


def cli_reingest(corpus: Path, data_dir: Path) -> float:
    """Wall time of `dossier ingest` on the unchanged corpus: what a user waits for."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with Stopwatch() as wall:
        subprocess.run(
            [sys.executable, "-m", "bot.cli", "--data-dir", str(data_dir), "ingest", str(corpus),
             "--json"],
            cwd=ROOT, env=env, check=True, capture_output=True,
        )
    return round(wall.seconds, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=REALTIMEQA_ARTICLES)
    parser.add_argument("--keep", type=Path, help="Build the index here and keep it.")
    parser.add_argument("--reingest-only", type=Path, metavar="DATA_DIR",
                        help="Only time an unchanged re-ingest of an index built earlier.")
    args = parser.parse_args()
    if args.reingest_only is not None:
        data = reingest_only(args.corpus, args.reingest_only)
        report("reingest", data, markdown_table([data], [c for c in COLUMNS if c in data]))
        return
    if args.keep is not None:
        shutil.rmtree(args.keep, ignore_errors=True)
        data = ingest(args.corpus, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="dossier-ingest-") as tmp:
            data = ingest(args.corpus, Path(tmp) / "data")
    report("ingest", data, markdown_table([data], COLUMNS))


if __name__ == "__main__":
    main()

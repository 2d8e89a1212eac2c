"""Passages per model call in an ingest: the embedding process's peak memory and speed.

OpenVINO's CPU plugin keeps buffers sized for the batches it runs; an ingest hands the
model pools of 2,048 passages (index/ingest.py), cut into batches of `index.batch_size`.
For each batch size, in a fresh process per size and round (alternating), this embeds the
benchmark's news passages pool by pool with the data dir's OpenVINO model and reports the
RSS once loaded, the peak while embedding, and passages per second.

Usage: python -m bench.pool_batch --data-dir DIR [--sizes 64 32 16] [--passages 4096]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.benchlib import ROOT, PeakRSS, markdown_table, report, rss_mb
from bench.precision import benchmark_passages
from index.embeddings import SentenceEmbeddings

POOL = 2048  # what index/ingest.py hands the model at a time


def embed_pools(data_dir: Path, batch: int, passages: list[str]) -> dict[str, Any]:
    """In this process: embed `passages` pool by pool, as an ingest does."""
    model = SentenceEmbeddings(int8_dir=data_dir / "int8", batch_size=batch)
    if model.openvino is None:
        raise SystemExit(f"{data_dir} has no OpenVINO model: ingest a corpus into it first")
    model.encode(passages[:8])
    loaded = rss_mb()
    with PeakRSS() as rss:
        started = time.perf_counter()
        for at in range(0, len(passages), POOL):
            model.encode(passages[at : at + POOL])
        seconds = time.perf_counter() - started
    return {"batch": batch, "backend": model.backend, "loaded_mb": loaded,
            "peak_rss_mb": rss.peak_mb, "passages/s": round(len(passages) / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 32, 16])
    parser.add_argument("--passages", type=int, default=2 * POOL)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--embed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.embed:
        passages = benchmark_passages(args.passages)
        print(json.dumps(embed_pools(args.data_dir, args.embed, passages)))
        return
    runs = []
    for _ in range(args.rounds):
        for size in args.sizes:
            done = subprocess.run(
                [sys.executable, "-m", "bench.pool_batch", "--data-dir", str(args.data_dir),
                 "--passages", str(args.passages), "--embed", str(size)],
                cwd=ROOT, check=True, capture_output=True, text=True,
            )
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    rows = [{
        "passages per call": size,
        "RSS loaded MB": " / ".join(str(r["loaded_mb"]) for r in runs if r["batch"] == size),
        "peak RSS MB (each round)": " / ".join(str(r["peak_rss_mb"]) for r in runs
                                               if r["batch"] == size),
        "passages/s (each round)": " / ".join(str(r["passages/s"]) for r in runs
                                              if r["batch"] == size),
    } for size in args.sizes]
    report("pool-batch", {"passages": args.passages, "runs": runs},
           markdown_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()

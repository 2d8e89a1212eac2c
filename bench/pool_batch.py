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
from pathlib import Path

from bench.batch_widths import POOL, embed_pools
from bench.benchlib import alternating_runs, markdown_table, report
from bench.precision import benchmark_passages


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
        print(json.dumps({"batch": args.embed,
                          **embed_pools(args.data_dir, "fixed", passages, args.embed)}))
        return
    arguments = ["--data-dir", str(args.data_dir), "--passages", str(args.passages)]
    runs = alternating_runs("bench.pool_batch", arguments, "--embed", args.sizes, args.rounds)
    rows = [{
        "passages per call": size,
        "RSS loaded MB": " / ".join(str(r["rss_before_mb"]) for r in runs
                                    if r["batch"] == size),
        "peak RSS MB (each round)": " / ".join(str(r["peak_rss_mb"]) for r in runs
                                               if r["batch"] == size),
        "passages/s (each round)": " / ".join(str(r["passages/s"]) for r in runs
                                              if r["batch"] == size),
    } for size in args.sizes]
    report("pool-batch", {"passages": args.passages, "runs": runs},
           markdown_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()

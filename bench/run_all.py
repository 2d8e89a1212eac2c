"""Run every benchmark in order (what `make bench` calls); results land in bench/results/."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.benchlib import ROOT, command_line


def step(script: str, *args: str) -> None:
    command = [sys.executable, "-m", f"bench.{Path(script).stem}", *args]
    print(f"\n=== {script} {' '.join(args)}", flush=True)
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True)
    print(f"=== {script} took {time.perf_counter() - started:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000 3000 10000", help="news-scale sizes")
    parser.add_argument("--scale-budget-min", default="25")
    args = parser.parse_args()
    print(f"# {command_line()}")
    with tempfile.TemporaryDirectory(prefix="dossier-bench-") as tmp:
        index = Path(tmp) / "realtimeqa"
        # The ingest bench leaves its index for latency.py, which would otherwise rebuild it.
        step("ingest_bench.py", "--keep", str(index))
        step("levers.py", "--data-dir", str(index))
        step("article_orders.py", "--data-dir", str(index))
        step("recipe.py")
        step("latency.py", "--data-dir", str(index))
        step("ask_precision.py", "--data-dir", str(index))
        # Judgement builds its own indexes: the articles plus the seed, and the negative split.
        step("judgement.py", "--data-dir", str(Path(tmp) / "judgement"),
             "--negative-data-dir", str(Path(tmp) / "negative"))
        step("calibrate.py", "--data-dir", str(Path(tmp) / "judgement"))
    step("int8_quality.py")
    step("precision.py")
    step("int8_calibration.py")
    step("tokens.py")
    step("scale.py", "--sizes", *args.sizes.split(), "--budget-min", args.scale_budget_min)
    step("plots.py")
    print("\nResults: bench/results/*.json, plots: bench/*.png; figures go to BENCHMARKS.md.")


if __name__ == "__main__":
    main()

"""What a cold `dossier ask` spends importing, by module: this checkout against another.

Runs `python -X importtime -m bot.cli --data-dir DIR ask QUESTION --json` from each checkout
in turn (so load on the machine hits both alike) and reports the median over the runs of
each watched module's cumulative import time, and of all top-level imports together.
A module's time is counted where it is first imported.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

from bench.benchlib import ROOT, markdown_table, report

WATCHED = (
    "chromadb", "openvino", "langchain_core.retrievers", "langchain_core.callbacks.manager",
    "bm25s", "scipy.sparse", "numpy", "typer", "pydantic_settings", "tokenizers",
    "bot.factory", "bot.answer", "bot.retrieval", "index.store", "index.embeddings",
)
_LINE = re.compile(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)")


def import_times(folder: Path, data_dir: Path, question: str) -> dict[str, float]:
    """Cumulative ms of each watched module, and "all" for every top-level import."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bot.cli", "--data-dir", str(data_dir),
         "ask", question, "--json"],
        cwd=folder, capture_output=True, text=True, check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    times = {"all": 0.0, **{name: 0.0 for name in WATCHED}}
    for line in done.stderr.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        microseconds, indent, module = int(match[1]), len(match[2]), match[3]
        if indent == 1:
            times["all"] += microseconds / 1000
        if module in WATCHED and not times[module]:
            times[module] = microseconds / 1000
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--baseline-code", type=Path, required=True,
                        help="Another checkout of Dossier (e.g. a `git archive` of main).")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--question", default="what are the obstacles?")
    args = parser.parse_args()
    checkouts = {"before": args.baseline_code.resolve(), "after": ROOT}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in checkouts}
    for _ in range(args.runs):
        for name, folder in checkouts.items():
            runs[name].append(import_times(folder, args.data_dir, args.question))
    rows = [
        {"module": module, **{
            name: round(statistics.median(r[module] for r in runs[name]))
            for name in checkouts
        }}
        for module in ("all", *WATCHED)
    ]
    report("cold-imports", {"runs": args.runs, "rows": rows},
           markdown_table(rows, ["module", "before", "after"]))


if __name__ == "__main__":
    main()

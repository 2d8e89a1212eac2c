"""Does OpenVINO int8 keep retrieval quality? The dev set over an int8 index vs a bf16 one.

Ingests the corpus into a fresh data dir with `index.precision = "int8"` (the OpenVINO
int8 model is calibrated on the first passages embedded, as for any user; timed, with the
calibration), then scores the dev questions with the shipped retrieval
settings, with and without question dates, on that index and on a torch bf16 index of the
corpus: the one given (`--bf16-data-dir`, built with `index.precision = "bf16"`), else
one ingested here after the int8 one (timed too: the two ingests are then one run).

Usage: python -m bench.int8_quality [--bf16-data-dir DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.benchlib import REALTIMEQA_ARTICLES, REALTIMEQA_DEV, markdown_table, report
from bench.levers import NO_DATES, measure
from bot.evaluate import load_questions
from bot.factory import Dossier
from bot.settings import load_settings


def scored(dossier: Dossier, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    undated = dossier.retriever.model_copy(update={"timeliness": NO_DATES})
    return [measure(dossier.retriever, questions), measure(undated, questions)]


def side(precision: str, data_dir: Path, corpus: Path, questions: list[dict[str, Any]],
         *, ingest: bool) -> list[dict[str, Any]]:
    """One index's rows: its ingest (when built here) and the dev set with and without dates."""
    dossier = Dossier(load_settings(data_dir=data_dir, index={"precision": precision}))
    dossier.embedder.encode(["warm up"])
    cost: dict[str, Any] = {}
    if ingest:
        started = time.perf_counter()
        ingested = dossier.ingestor().run([corpus])
        seconds = time.perf_counter() - started
        cost = {"ingest_s": round(seconds, 1),
                "passages/s": round(ingested.embedded / seconds, 1)}
    name = {"openvino-int8": "OpenVINO int8", "torch-bf16": "torch bf16"}.get(
        dossier.embedder.backend, dossier.embedder.backend)
    dated, undated = scored(dossier, questions)
    return [{"index": name, "dates": "used", **dated, **cost},
            {"index": name, "dates": "ignored", **undated}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bf16-data-dir", type=Path,
                        help="A torch bf16 index of the corpus; without it, one is built here.")
    parser.add_argument("--corpus", type=Path, default=REALTIMEQA_ARTICLES)
    parser.add_argument("--questions", type=Path, default=REALTIMEQA_DEV)
    args = parser.parse_args()
    questions = [q for q in load_questions(args.questions) if q.get("gold_articles")]

    with tempfile.TemporaryDirectory(prefix="dossier-int8-") as tmp:
        rows = side("int8", Path(tmp) / "int8", args.corpus, questions, ingest=True)
        if rows[0]["index"] != "OpenVINO int8":
            raise SystemExit(f"the int8 ingest was embedded by {rows[0]['index']}")
        bf16_dir = args.bf16_data_dir or Path(tmp) / "bf16"
        rows += side("bf16", bf16_dir, args.corpus, questions, ingest=not args.bf16_data_dir)
    columns = ["index", "dates", "hits@4", "hits@10", "mrr@10", "hits@10 even/odd",
               "mrr@10 even/odd", "ingest_s", "passages/s"]
    report("int8-quality", {"rows": rows}, markdown_table(rows, columns))


if __name__ == "__main__":
    main()

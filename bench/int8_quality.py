"""Does OpenVINO int8 keep retrieval quality? The dev set over an int8 index vs a bf16 one.

Ingests the corpus into a fresh data dir with `index.precision = "int8"` (the OpenVINO
int8 model is calibrated on the first passages embedded, as for any user; timed, with the
calibration), then scores the dev questions with the shipped retrieval
settings, with and without question dates, on that index and on the given torch bf16
index (`--bf16-data-dir`, e.g. from `bench/ingest_bench.py --keep DIR`), in this run.

Usage: python bench/int8_quality.py --bf16-data-dir DIR
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import REALTIMEQA_ARTICLES, REALTIMEQA_DEV, markdown_table, report
from levers import NO_DATES, measure

from bot.evaluate import load_questions
from bot.factory import Dossier
from bot.settings import load_settings


def scored(dossier: Dossier, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    undated = dossier.retriever.model_copy(update={"timeliness": NO_DATES})
    return [measure(dossier.retriever, questions), measure(undated, questions)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bf16-data-dir", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, default=REALTIMEQA_ARTICLES)
    parser.add_argument("--questions", type=Path, default=REALTIMEQA_DEV)
    args = parser.parse_args()
    questions = [q for q in load_questions(args.questions) if q.get("gold_articles")]

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="dossier-int8-") as tmp:
        dossier = Dossier(load_settings(data_dir=Path(tmp), index={"precision": "int8"}))
        dossier.embedder.encode(["warm up"])
        started = time.perf_counter()
        ingested = dossier.ingestor().run([args.corpus])
        ingest_s = time.perf_counter() - started
        assert dossier.embedder.backend == "openvino-int8", dossier.embedder.backend
        dated, undated = scored(dossier, questions)
        cost = {"ingest_s": round(ingest_s, 1),
                "passages/s": round(ingested.embedded / ingest_s, 1)}
        rows.append({"index": "OpenVINO int8", "dates": "used", **dated, **cost})
        rows.append({"index": "OpenVINO int8", "dates": "ignored", **undated})
    bf16 = Dossier(load_settings(data_dir=args.bf16_data_dir))
    dated, undated = scored(bf16, questions)
    rows.append({"index": "torch bf16", "dates": "used", **dated})
    rows.append({"index": "torch bf16", "dates": "ignored", **undated})
    columns = ["index", "dates", "hits@4", "hits@10", "mrr@10", "hits@10 even/odd",
               "mrr@10 even/odd", "ingest_s", "passages/s"]
    report("int8-quality", {"rows": rows},
           markdown_table(rows, columns))


if __name__ == "__main__":
    main()

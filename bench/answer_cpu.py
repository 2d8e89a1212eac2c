"""CPU time of first-time answers, and of reading each answer (the extractive quotes and
the reader), per question: a figure that a shared machine's load moves far less than
wall time, for comparing two versions of the answer path run one after the other.

Usage: python -m bench.answer_cpu --data-dir DIR [--questions FILE] [--passes N]
[--source late|separate]. DIR: a built index. Every question is asked once to warm the
model, Chroma and the article cache; then each pass asks each question with every vector
cache emptied first (as bench.sentence_sources does).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.benchlib import index_parser, markdown_table, report
from bot import extractive
from bot.evaluate import load_questions
from bot.factory import Dossier
from bot.settings import load_settings

COLUMNS = ["source", "answers", "reading_cpu_ms_p50", "reading_cpu_ms_mean", "ask_cpu_ms_p50",
           "ask_wall_ms_p50"]


def main() -> None:
    parser = index_parser(__doc__)
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--source", choices=("late", "separate"), default="late")
    args = parser.parse_args()
    questions = [q["question"] for q in load_questions(args.questions)]
    dossier = Dossier(load_settings(data_dir=args.data_dir,
                                    answer={"sentence_vectors": args.source}))
    for question in questions:
        dossier.answerer.ask(question)
    reading: list[float] = []
    read = extractive.extract

    def timed_read(*positional: Any, **named: Any) -> Any:
        started = time.thread_time()
        try:
            return read(*positional, **named)
        finally:
            reading.append((time.thread_time() - started) * 1000)

    extractive.extract = timed_read  # the answer calls it through the module
    asked_cpu: list[float] = []
    asked_wall: list[float] = []
    try:
        for _ in range(args.passes):
            for question in questions:
                dossier.answerer.sentence_vectors.forget_cached()
                cpu, wall = time.process_time(), time.perf_counter()
                dossier.answerer.ask(question)
                asked_cpu.append((time.process_time() - cpu) * 1000)
                asked_wall.append((time.perf_counter() - wall) * 1000)
    finally:
        extractive.extract = read
    row = {"source": args.source, "answers": len(asked_cpu),
           "reading_cpu_ms_p50": round(statistics.median(reading), 2),
           "reading_cpu_ms_mean": round(statistics.mean(reading), 2),
           "ask_cpu_ms_p50": round(statistics.median(asked_cpu), 2),
           "ask_wall_ms_p50": round(statistics.median(asked_wall), 2)}
    report("answer-cpu", {"rows": [row]}, markdown_table([row], COLUMNS))


if __name__ == "__main__":
    main()

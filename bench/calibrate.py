"""The "not in the articles" thresholds over the whole corpus (the 1,427 articles plus the
seed): answerable questions (the dev set, each as of its date, and the seed's questions)
against questions on the corpus's own topics whose answers it lacks and off-topic ones.

Prints refusal on both sides, and both halves, for a grid of reader.min_score x
min_context, judged by the product's own reader on each question's readings.

Usage: python -m bench.calibrate --data-dir DIR   (DIR: the index bench.judgement builds)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.benchlib import BENCH, REALTIMEQA_DEV, markdown_table, report
from bench.judgement import ask_all, ensure_index, halves, rate, threshold_grid
from bot.evaluate import load_questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    dossier = ensure_index(args.data_dir, set())
    answerable = load_questions(REALTIMEQA_DEV) + load_questions(BENCH / "seed-questions.jsonl")
    on_topic = load_questions(BENCH / "unanswerable-ontopic.jsonl")
    off_topic = load_questions(BENCH / "offtopic-questions.jsonl")
    asked = {name: ask_all(dossier, questions) for name, questions in (
        ("answerable", answerable), ("on-topic unanswerable", on_topic),
        ("off-topic", off_topic))}
    shipped = [{"set": name, "questions": len(rows),
                "refused": rate([not r["answered"] for r in rows]),
                "refused halves": halves([not r["answered"] for r in rows])}
               for name, rows in asked.items()]
    grid = threshold_grid(dossier, asked["answerable"],
                          asked["on-topic unanswerable"] + asked["off-topic"])
    for rows in asked.values():
        for row in rows:
            del row["judge"]
    report("calibrate", {"shipped": shipped, "grid": grid, "questions": asked},
           markdown_table(shipped, ["set", "questions", "refused", "refused halves"]) + "\n\n"
           + markdown_table(grid, ["min_score", "min_context", "answerable answered", "halves",
                                   "unanswerable refused", "refused halves"]))


if __name__ == "__main__":
    main()

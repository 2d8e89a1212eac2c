"""Warm `ask` latency on one index, the model run by torch bf16 and by the saved int8 model.

Both answerers are opened on the same data dir (which must hold an int8 model: any index
built by an ingest of 2,000+ passages with `index.precision = "auto"`), warmed up, then
asked each dev question in turn, alternating, each time with the sentence-vector cache
emptied (a question asked for the first time). Also checks that both give answers.

Usage: python -m bench.ask_precision --data-dir DIR
"""

from __future__ import annotations

import time
from typing import Any

from bench.benchlib import index_arguments, markdown_table, report, timed_ms
from bot.evaluate import load_questions
from bot.factory import Dossier
from bot.settings import load_settings
from bot.timeliness import parse_day


def main() -> None:
    args = index_arguments(__doc__)
    questions = load_questions(args.questions)
    dossiers = {
        precision: Dossier(load_settings(data_dir=args.data_dir, index={"precision": precision}))
        for precision in ("bf16", "auto")
    }
    for dossier in dossiers.values():
        dossier.answerer.ask(questions[0]["question"])  # load models and indexes
    if dossiers["auto"].embedder.backend != "openvino-int8":
        raise SystemExit(f"{args.data_dir} holds no int8 model: ingest 2,000+ passages first")

    millis: dict[str, list[float]] = {name: [] for name in dossiers}
    answered = dict.fromkeys(dossiers, 0)
    for question in questions:
        for name, dossier in dossiers.items():
            dossier.embedder.forget_cached()  # asked for the first time
            asked_on = parse_day(question.get("date"))
            started = time.perf_counter()
            answer = dossier.answerer.ask(question["question"], as_of=asked_on)
            millis[name].append((time.perf_counter() - started) * 1000)
            answered[name] += answer.answered
    rows: list[dict[str, Any]] = [
        {"embedded by": dossiers[name].embedder.backend, "questions": len(questions),
         "answered": answered[name], **{f"ask {k}": v for k, v in timed_ms(values).items()}}
        for name, values in millis.items()
    ]
    report("ask-precision", {"data_dir_passages": dossiers["auto"].store.count(), "rows": rows},
           markdown_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()

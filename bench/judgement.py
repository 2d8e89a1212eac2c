"""Answer judgement, on both halves of every set: refusal on the negative split, the dev
questions' answers and answer lines, follow-ups, small talk, and the reader's thresholds.

- Negative split (../shared/benchmarks/realtimeqa-news/negative-split-dev.json): an index of
  the 1,427 articles minus `exclude_articles`, plus the seed. Its `unanswerable` questions
  should be refused, its `answerable` ones answered.
- Dev: the 84 questions over all 1,427 articles plus the seed, each asked as of its date.
- Follow-ups (bench/followups.jsonl): a question, then a follow-up about a known article;
  Hits@3 of the follow-up's passages, and whether its quotes hold the expected answer.
- Small talk: messages that must get a friendly line and never a quote.
- Thresholds: refusal precision/recall over a grid of reader.min_score x min_context, from
  each question's best answer score and best context (one pass, no re-asking).

Usage: python -m bench.judgement [--data-dir DIR] [--negative-data-dir DIR]
DIRs that hold no index are built first (about 4 minutes each on 2 cores).
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.benchlib import REALTIMEQA_ARTICLES, REALTIMEQA_DEV, SHARED, markdown_table, report
from bot.chat import Conversation
from bot.evaluate import first_gold_rank, load_questions, quotes_contain_answer
from bot.extractive import Extract, extract
from bot.factory import Dossier
from bot.models import Answer
from bot.question import analyse
from bot.reader import Reader
from bot.settings import load_settings
from bot.timeliness import parse_day, today

NEGATIVE_SPLIT = SHARED / "realtimeqa-news" / "negative-split-dev.json"
FOLLOW_UPS = Path(__file__).resolve().parent / "followups.jsonl"
SEED_FOLDER = Path(__file__).resolve().parent.parent / "corpus"
SMALL_TALK = [
    "hi", "hello!", "hey there", "good morning", "thanks", "thank you!", "thanks a lot",
    "cheers", "who are you?", "what are you?", "help", "what can you do?", "bye", "goodbye",
    "ok", "great", "cool, thanks", "how are you?", "got it", "nice",
]
MIN_SCORES = (0.5, 0.6, 0.7, 0.8, 0.9)
MIN_CONTEXTS = (0.0, 0.25, 0.35, 0.45, 0.55)


def ensure_index(data_dir: Path, exclude: set[str]) -> Dossier:
    """The Dossier for `data_dir`, after ingesting the articles (minus `exclude`) and the
    seed into it when it holds nothing yet."""
    dossier = Dossier(load_settings(data_dir=data_dir))
    if data_dir.exists() and dossier.store.records():
        return dossier
    with tempfile.TemporaryDirectory(prefix="judgement-") as tmp:
        articles = Path(tmp) / "articles.jsonl.gz"
        with gzip.open(REALTIMEQA_ARTICLES, "rt") as src, gzip.open(articles, "wt") as out:
            for line in src:
                if line.strip() and json.loads(line)["id"] not in exclude:
                    out.write(line if line.endswith("\n") else line + "\n")
        dossier.ingest([articles, SEED_FOLDER])
    return dossier


def rate(values: Sequence[bool]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def halves(values: Sequence[bool]) -> str:
    even, odd = rate(values[0::2]), rate(values[1::2])
    return f"{even if even is not None else '—'} / {odd if odd is not None else '—'}"


def ask_all(dossier: Dossier, questions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each question asked as of its date: the answer, the reader's figures, the ranks."""
    answerer = dossier.answerer
    rows = []
    for item in questions:
        asked = analyse(item["question"])
        as_of = parse_day(item.get("date"))
        retrieved, context = answerer.retrieve(asked, as_of=as_of, k=10)
        articles = dossier.store.get_articles([r.passage.article_id for r in retrieved])
        found: Extract = extract(
            asked, retrieved[: answerer.retriever.k], articles, answerer.sentence_vectors,
            answerer.reader, max_quotes=answerer.settings.max_quotes, context=context,
            as_of=as_of,
        )
        answer = answerer.ask(asked, as_of=as_of)
        answers = item.get("answers")
        rows.append({
            "id": item["id"],
            "judge": (asked, found.readings, articles, as_of or today()),
            "answered": answer.answered,
            "score": found.judgement.best_score,
            "context": found.judgement.best_context,
            "rank": first_gold_rank([r.passage.article_id for r in retrieved],
                                    item.get("gold_articles") or []),
            "in_quotes": answer.answered
            and quotes_contain_answer([c.quote for c in answer.citations], answers),
            "in_answer": answer.answered and quotes_contain_answer([answer.text], answers),
            "verbatim": all(
                dossier.store.get_articles([c.article.id])[c.article.id].text[c.start:c.end]
                == c.quote for c in answer.citations
            ),
            "text": answer.text[:300],
        })
    return rows


def summary(name: str, rows: Sequence[dict[str, Any]], expect_answer: bool) -> dict[str, Any]:
    answered = [r["answered"] for r in rows]
    outcome = answered if expect_answer else [not a for a in answered]
    has_gold = [r for r in rows if r["rank"] is not None or expect_answer]
    return {
        "set": name,
        "questions": len(rows),
        "answered" if expect_answer else "refused": rate(outcome),
        "halves": halves(outcome),
        "hits@10": rate([r["rank"] is not None for r in has_gold]) if expect_answer else None,
        "answer in quotes": rate([r["in_quotes"] for r in rows]) if expect_answer else None,
        "answer in answer": rate([r["in_answer"] for r in rows]) if expect_answer else None,
        "answer in answer, halves": halves([r["in_answer"] for r in rows])
        if expect_answer else None,
        "verbatim": rate([r["verbatim"] for r in rows]),
    }


def follow_up_pairs(dossier: Dossier) -> Iterator[tuple[dict[str, Any], Conversation, Answer]]:
    """Each pair of `followups.jsonl`, its first question answered in a new conversation."""
    for line in FOLLOW_UPS.read_text().splitlines():
        if line.strip():
            item = json.loads(line)
            conversation = Conversation(dossier.answerer)
            first = conversation.ask(item["question"], as_of=parse_day(item.get("date")))
            yield item, conversation, first


def follow_ups(dossier: Dossier) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Hits@3 of each follow-up's passages for its article, asked in a conversation."""
    answerer = dossier.answerer
    rows = []
    for item, conversation, first in follow_up_pairs(dossier):
        as_of = parse_day(item.get("date"))
        asked = analyse(item["follow_up"])
        retrieved, _ = answerer.retrieve(asked, follow_up=conversation.follow_up(asked),
                                         as_of=as_of, k=3)
        answer = conversation.ask(item["follow_up"], as_of=as_of)
        wanted = item["article"]
        rows.append({
            "id": item["id"],
            "first answered": first.answered,
            "hit@3": any(_same_article(r.passage.article_id, wanted) for r in retrieved),
            "answered": answer.answered,
            "in quotes": answer.answered and bool(item.get("answers"))
            and quotes_contain_answer([c.quote for c in answer.citations], item["answers"]),
            "with answers": bool(item.get("answers")),
        })
    hits = [r["hit@3"] for r in rows]
    with_answers = [r for r in rows if r["with answers"]]
    return {
        "set": "follow-ups",
        "questions": len(rows),
        "hits@3": rate(hits),
        "halves": halves(hits),
        "answered": rate([r["answered"] for r in rows]),
        "answer in quotes": rate([r["in quotes"] for r in with_answers]),
    }, rows


def _same_article(article_id: str, wanted: str) -> bool:
    """The seed's id is its path in the corpus folder; the set names it by its stem."""
    return article_id == wanted or Path(article_id).stem == wanted


def small_talk(dossier: Dossier) -> dict[str, Any]:
    answers = [dossier.answerer.ask(text) for text in SMALL_TALK]
    return {
        "set": "small talk",
        "questions": len(answers),
        "with quotes": sum(bool(a.citations) for a in answers),
        "answered": rate([a.answered for a in answers]),
    }


def threshold_grid(dossier: Dossier, positives: Sequence[dict[str, Any]],
                   negatives: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Refusal at each (min_score, min_context), judged by the product's own reader on
    each question's readings: the answerable kept and the unanswerable refused, on the
    whole sets and their halves."""
    shipped = dossier.answerer.reader
    rows = []
    for min_score in MIN_SCORES:
        for min_context in MIN_CONTEXTS:
            settings = shipped.settings.model_copy(
                update={"min_score": min_score, "min_context": min_context,
                        "follow_up_min_score": shipped.follow_up_min_score}
            )
            reader = Reader(settings, shipped.rarity, shipped.source)
            kept = [reader.judge(*r["judge"]).answers for r in positives]
            refused = [not reader.judge(*r["judge"]).answers for r in negatives]
            rows.append({"min_score": min_score, "min_context": min_context,
                         "answerable answered": rate(kept), "halves": halves(kept),
                         "unanswerable refused": rate(refused), "refused halves": halves(refused)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="index of the 1,427 articles plus the seed (built if empty)")
    parser.add_argument("--negative-data-dir", type=Path, required=True,
                        help="index of the negative-split corpus plus the seed (built if empty)")
    args = parser.parse_args()
    split = json.loads(NEGATIVE_SPLIT.read_text())
    dev = load_questions(REALTIMEQA_DEV)
    by_id = {q["id"]: q for q in dev}

    full = ensure_index(args.data_dir, set())
    negative = ensure_index(args.negative_data_dir, set(split["exclude_articles"]))

    sets: dict[str, tuple[Dossier, list[dict[str, Any]], bool]] = {
        "dev (all articles)": (full, dev, True),
        "negative split: answerable": (negative, [by_id[i] for i in split["answerable"]], True),
        "negative split: unanswerable": (
            negative, [by_id[i] for i in split["unanswerable"]], False
        ),
    }
    asked = {name: ask_all(d, qs) for name, (d, qs, _) in sets.items()}
    rows = [summary(name, asked[name], expect) for name, (_, _, expect) in sets.items()]
    follow, follow_rows = follow_ups(full)
    talk = small_talk(full)
    grid = threshold_grid(full, asked["dev (all articles)"] + asked["negative split: answerable"],
                          asked["negative split: unanswerable"])
    for rows_of_set in asked.values():
        for row in rows_of_set:
            del row["judge"]  # readings and articles: not for the JSON
    columns = ["set", "questions", "answered", "refused", "halves", "hits@10",
               "answer in quotes", "answer in answer", "answer in answer, halves", "verbatim"]
    markdown = "\n\n".join([
        markdown_table(rows, columns),
        markdown_table([follow], ["set", "questions", "hits@3", "halves", "answered",
                                  "answer in quotes"]),
        markdown_table([talk], ["set", "questions", "with quotes", "answered"]),
        markdown_table(grid, ["min_score", "min_context", "answerable answered", "halves",
                              "unanswerable refused", "refused halves"]),
    ])
    report("judgement", {"sets": rows, "follow_ups": follow, "small_talk": talk,
                         "grid": grid, "questions": asked, "follow_up_rows": follow_rows},
           markdown)


if __name__ == "__main__":
    main()

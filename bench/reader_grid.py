"""The reader's thresholds on every judgement set at once, for the sentence-vector source
the settings name (`DOSSIER_ANSWER__SENTENCE_VECTORS`): each question asked once, every
place its answer is looked for read once, then each (min_score, min_context,
follow_up_min_score) judged by the product's own reader on those readings.

Sets: dev (all articles, as of each date), the negative split's answerable and
unanswerable (its own index), follow-ups (`followups.jsonl`, in a conversation), and the
whole corpus's calibration sets (the seed's questions, on-topic unanswerable, off-topic).
Thresholds are picked on the even half of every set (the best refusal that answers as
many of each answerable set as the shipped thresholds do) and shown on the odd half.

Usage: python -m bench.reader_grid --data-dir DIR --negative-data-dir NEG
(the indexes bench.judgement builds). Small talk never reaches the reader.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.benchlib import BENCH, REALTIMEQA_DEV, markdown_table, report
from bench.judgement import NEGATIVE_SPLIT, ensure_index, follow_up_pairs
from bot.evaluate import load_questions, quotes_contain_answer
from bot.extractive import compose
from bot.factory import Dossier
from bot.models import FollowUp
from bot.question import analyse
from bot.reader import Reader
from bot.settings import ReaderSettings
from bot.timeliness import parse_day, today

MIN_SCORES = (0.55, 0.6, 0.65, 0.7, 0.75)
MIN_CONTEXTS = (0.25, 0.35, 0.45)
FOLLOW_UP_MIN_SCORES = (0.35, 0.4, 0.45, 0.5, 0.55)
# (set, whether its questions should be answered)
SETS = (("dev", True), ("negative answerable", True), ("negative unanswerable", False),
        ("follow-ups", True), ("seed", True), ("on-topic unanswerable", False),
        ("off-topic", False))


def attempts(dossier: Dossier, question: str, as_of: Any,
             follow_up: FollowUp | None = None, answers: Sequence[str] | None = None,
             ) -> list[dict[str, Any]]:
    """Every place the answer is looked for, in `Answerer.ask`'s order: what the reader
    needs to judge it again, and whether its quotes and answer line hold the answer."""
    asked = analyse(question)
    rows = []
    for _, articles, found, within_previous in dossier.answerer.extracts(
            asked, follow_up=follow_up, as_of=as_of):
        line = compose(found.citations, found.asked_phrase, found.points)
        rows.append({
            "judge": (asked, found.readings, articles, as_of or today()),
            "within_previous": within_previous,
            "quotes": bool(found.citations),
            "in_quotes": bool(answers)
            and quotes_contain_answer([c.quote for c in found.citations], answers or []),
            "in_answer": bool(answers) and quotes_contain_answer([line], answers or []),
        })
    return rows


def outcome(reader: Reader, tries: list[dict[str, Any]]) -> dict[str, bool]:
    """What the answer would be with `reader`: the first attempt that answers."""
    for attempt in tries:
        judged = reader.judge(*attempt["judge"], follow_up=attempt["within_previous"])
        if attempt["quotes"] and judged.answers:
            return {"answered": True, "in_quotes": attempt["in_quotes"],
                    "in_answer": attempt["in_answer"]}
    return {"answered": False, "in_quotes": False, "in_answer": False}


def figures(reader: Reader, asked: dict[str, list[list[dict[str, Any]]]], half: int | None,
            ) -> dict[str, float]:
    """Each set's share answered (or refused) and of answers in quotes, on one half
    (0 even lines, 1 odd) or all."""
    out: dict[str, float] = {}
    for name, expect in SETS:
        rows = asked[name] if half is None else asked[name][half::2]
        results = [outcome(reader, tries) for tries in rows]
        if expect:
            out[f"{name} answered"] = _rate([r["answered"] for r in results])
            if name in ("dev", "negative answerable", "follow-ups"):
                out[f"{name} in quotes"] = _rate([r["in_quotes"] for r in results])
            if name == "dev":
                out["dev in answer line"] = _rate([r["in_answer"] for r in results])
        else:
            out[f"{name} refused"] = _rate([not r["answered"] for r in results])
    return out


def _rate(values: Sequence[bool]) -> float:
    return round(sum(values) / len(values), 3) if values else 0.0


def ask_sets(full: Dossier, negative: Dossier) -> dict[str, list[list[dict[str, Any]]]]:
    split = json.loads(NEGATIVE_SPLIT.read_text())
    dev = load_questions(REALTIMEQA_DEV)
    by_id = {q["id"]: q for q in dev}

    def each(dossier: Dossier, items: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        return [attempts(dossier, q["question"], parse_day(q.get("date")),
                         answers=q.get("answers")) for q in items]

    asked = {
        "dev": each(full, dev),
        "negative answerable": each(negative, [by_id[i] for i in split["answerable"]]),
        "negative unanswerable": each(negative, [by_id[i] for i in split["unanswerable"]]),
        "seed": each(full, load_questions(BENCH / "seed-questions.jsonl")),
        "on-topic unanswerable": each(full, load_questions(BENCH / "unanswerable-ontopic.jsonl")),
        "off-topic": each(full, load_questions(BENCH / "offtopic-questions.jsonl")),
    }
    asked["follow-ups"] = [
        attempts(full, item["follow_up"], parse_day(item.get("date")),
                 conversation.follow_up(analyse(item["follow_up"])), item.get("answers"))
        for item, conversation, _ in follow_up_pairs(full)
    ]
    return asked


def pick(rows: list[dict[str, Any]], shipped: dict[str, Any]) -> dict[str, Any]:
    """On the even half: among thresholds that answer each answerable set and keep its
    answers in quotes at least as often as the shipped ones, the most refusals (ties: the
    most answers)."""
    kept = [r for r in rows if all(
        r["even"][k] >= shipped["even"][k] for k in r["even"] if not k.endswith("refused"))]
    refusals = lambda r: sum(v for k, v in r["even"].items() if k.endswith("refused"))  # noqa: E731
    answers = lambda r: sum(v for k, v in r["even"].items() if not k.endswith("refused"))  # noqa: E731
    return max(kept or [shipped], key=lambda r: (refusals(r), answers(r)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--negative-data-dir", type=Path, required=True)
    args = parser.parse_args()
    split = json.loads(NEGATIVE_SPLIT.read_text())
    full = ensure_index(args.data_dir, set())
    negative = ensure_index(args.negative_data_dir, set(split["exclude_articles"]))
    asked = ask_sets(full, negative)
    base = full.answerer.reader
    source = full.settings.answer.sentence_vectors
    rows = []
    for min_score, min_context, follow_up_min_score in itertools.product(
            MIN_SCORES, MIN_CONTEXTS, FOLLOW_UP_MIN_SCORES):
        settings: ReaderSettings = base.settings.model_copy(update={
            "min_score": min_score, "min_context": min_context,
            "follow_up_min_score": follow_up_min_score})
        reader = Reader(settings, base.rarity, base.source)
        rows.append({"min_score": min_score, "min_context": min_context,
                     "follow_up_min_score": follow_up_min_score,
                     **{half: figures(reader, asked, n) for half, n in
                        (("all", None), ("even", 0), ("odd", 1))}})
    shipped = figures(base, asked, None)
    shipped_row = {"min_score": base.min_score,
                   "min_context": base.settings.min_context,
                   "follow_up_min_score": base.follow_up_min_score,
                   "all": shipped, "even": figures(base, asked, 0),
                   "odd": figures(base, asked, 1)}
    best = pick(rows, shipped_row)
    table = [{"thresholds": f"{r['min_score']} / {r['min_context']} / "
                            f"{r['follow_up_min_score']}", "half": half,
              **r[half]} for label, r in (("shipped", shipped_row), ("picked", best))
             for half in ("even", "odd", "all")]
    table = [{"row": "shipped" if i < 3 else "picked on even", **t} for i, t in enumerate(table)]
    # Each question's outcome with the shipped thresholds: what differs between sources.
    outcomes = {name: [outcome(base, tries) for tries in asked[name]] for name, _ in SETS}
    report(f"reader-grid-{source}", {"source": source, "shipped": shipped_row,
                                     "picked": best, "grid": rows, "outcomes": outcomes},
           markdown_table(table, ["row", "thresholds", "half", *shipped]))


if __name__ == "__main__":
    main()

"""Calibrate the "not in the articles" threshold on answerable and unanswerable questions.

Usage: python bench/calibrate.py --data-dir DIR --answerable Q.jsonl --unanswerable Q.jsonl
Prints, for each candidate threshold, precision and recall of "answered" (an answerable
question answered = true positive; an unanswerable one answered = false positive).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot import extractive
from bot.factory import Dossier
from bot.settings import load_settings


def relevance(dossier: Dossier, question: str) -> float:
    """The answerer's relevance score for a question (what min_relevance is compared to)."""
    retrieved = dossier.retriever.retrieve(question)
    articles = dossier.store.get_articles([r.passage.article_id for r in retrieved])
    found = extractive.extract(
        question, retrieved, articles, dossier.embedder,
        max_quotes=dossier.settings.answer.max_quotes,
    )
    return found.relevance


def load(path: Path) -> list[str]:
    return [json.loads(line)["question"] for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--answerable", type=Path, required=True)
    parser.add_argument("--unanswerable", type=Path, required=True)
    args = parser.parse_args()
    dossier = Dossier(load_settings(data_dir=args.data_dir))
    positives = [relevance(dossier, q) for q in load(args.answerable)]
    negatives = [relevance(dossier, q) for q in load(args.unanswerable)]
    print(f"answerable n={len(positives)}  unanswerable n={len(negatives)}")
    print("threshold  precision  recall  unanswerable-refused")
    for step in range(20, 71, 2):
        t = step / 100
        tp = sum(p >= t for p in positives)
        fp = sum(n >= t for n in negatives)
        precision = tp / (tp + fp) if tp + fp else 1.0
        print(f"{t:9.2f}  {precision:9.3f}  {tp / len(positives):6.3f}  "
              f"{sum(n < t for n in negatives) / len(negatives):6.3f}")
    print("answerable:", " ".join(f"{p:.2f}" for p in sorted(positives)))
    print("unanswerable:", " ".join(f"{n:.2f}" for n in sorted(negatives)))


if __name__ == "__main__":
    main()

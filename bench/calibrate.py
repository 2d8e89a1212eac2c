"""Calibrate the "not in the articles" threshold on answerable and unanswerable questions.

Usage: python -m bench.calibrate --data-dir DIR --answerable Q.jsonl --unanswerable Q.jsonl
Prints, for each candidate threshold, precision and recall of "answered" (an answerable
question answered = true positive; an unanswerable one answered = false positive).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bot import extractive
from bot.factory import Dossier
from bot.settings import load_settings


def features(dossier: Dossier, question: str) -> tuple[float, float]:
    """The answerer's relevance and coverage for a question (what the thresholds judge)."""
    retrieved = dossier.retriever.retrieve(question)
    articles = dossier.store.get_articles([r.passage.article_id for r in retrieved])
    found = extractive.extract(
        question, retrieved, articles, dossier.embedder,
        max_quotes=dossier.settings.answer.max_quotes,
    )
    return found.relevance, found.coverage


def load(path: Path) -> list[str]:
    return [json.loads(line)["question"] for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--answerable", type=Path, required=True)
    parser.add_argument("--unanswerable", type=Path, required=True)
    args = parser.parse_args()
    dossier = Dossier(load_settings(data_dir=args.data_dir))
    positives = [features(dossier, q) for q in load(args.answerable)]
    negatives = [features(dossier, q) for q in load(args.unanswerable)]
    print(f"answerable n={len(positives)}  unanswerable n={len(negatives)}")
    print("relevance  coverage  precision  recall  unanswerable-refused")
    for rel in (0.30, 0.35, 0.40, 0.45, 0.50):
        for cov in (0.0, 0.2, 0.3, 0.4, 0.5):
            tp = sum(r >= rel and c >= cov for r, c in positives)
            fp = sum(r >= rel and c >= cov for r, c in negatives)
            precision = tp / (tp + fp) if tp + fp else 1.0
            print(f"{rel:9.2f}  {cov:8.2f}  {precision:9.3f}  {tp / len(positives):6.3f}  "
                  f"{1 - fp / len(negatives):6.3f}")
    for name, rows in (("answerable", positives), ("unanswerable", negatives)):
        print(name + ":", " ".join(f"{r:.2f}/{c:.2f}" for r, c in sorted(rows)))


if __name__ == "__main__":
    main()

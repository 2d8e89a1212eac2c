"""PNG plots from bench/results/*.json: quality against the recipe, latency and memory by size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on these machines

import matplotlib.pyplot as plt

from bench.benchlib import BENCH, RESULTS, command_line


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def quality(recipe: dict[str, Any], target: Path) -> None:
    rows = recipe["rows"]
    metrics = ["hits@4", "hits@10", "mrr@10"]
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for i, row in enumerate(rows):
        xs = [m + i * width for m in range(len(metrics))]
        bars = ax.bar(xs, [row[m] for m in metrics], width, label=row["system"])
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks([m + width * (len(rows) - 1) / 2 for m in range(len(metrics))], metrics)
    ax.set_ylim(0, 1)
    ax.set_ylabel("article-level score")
    ax.set_title(f"RealTime QA dev ({recipe['questions']} questions): Dossier vs LangChain recipe")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(target, dpi=120)
    plt.close(fig)


def scale(data: dict[str, Any], target: Path) -> None:
    rows = data["rows"]
    sizes = [r["articles"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in [
        ("retrieve_p50_ms", "retrieve p50"), ("retrieve_p99_ms", "retrieve p99"),
        ("ask_p50_ms", "ask p50"), ("ask_p99_ms", "ask p99"),
    ]:
        left.plot(sizes, [r[key] for r in rows], marker="o", label=label)
    left.set_xlabel("articles")
    left.set_ylabel("ms (warm)")
    left.set_title("Query latency vs corpus size")
    left.legend(fontsize=8)
    right.plot(sizes, [r["serve_rss_mb"] for r in rows], marker="o", label="serving RSS")
    right.plot(sizes, [r["ingest_peak_rss_mb"] for r in rows], marker="o",
               label="ingest peak RSS")
    right.plot(sizes, [r["index_mb"] for r in rows], marker="o", label="index on disk")
    right.set_xlabel("articles")
    right.set_ylabel("MB")
    right.set_title("Memory and index size vs corpus size")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(target, dpi=120)
    plt.close(fig)


def main() -> None:
    print(f"# {command_line()}")
    made = []
    recipe = _load("recipe")
    if recipe:
        quality(recipe, BENCH / "quality.png")
        made.append("bench/quality.png")
    scaled = _load("scale")
    if scaled and scaled["rows"]:
        scale(scaled, BENCH / "scale.png")
        made.append("bench/scale.png")
    print("wrote " + (", ".join(made) or "nothing (run the benchmarks first)"))


if __name__ == "__main__":
    main()

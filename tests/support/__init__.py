"""What tests and benchmarks share: the project's paths, fakes, and local test servers."""

from __future__ import annotations

from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent.parent
SEED = PROJECT / "corpus" / "mexico-canada-critical-minerals.txt"
BENCHMARKS = PROJECT.parent / "shared" / "benchmarks"
REALTIMEQA = BENCHMARKS / "realtimeqa-news"

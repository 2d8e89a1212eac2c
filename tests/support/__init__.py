"""What tests and benchmarks share: the project's paths, fakes, and local test servers."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent.parent
SEED = PROJECT / "corpus" / "mexico-canada-critical-minerals.txt"
# The benchmark data beside the project; DOSSIER_BENCHMARKS names it for a checkout elsewhere.
BENCHMARKS = Path(os.environ.get("DOSSIER_BENCHMARKS") or PROJECT.parent / "shared" / "benchmarks")
REALTIMEQA = BENCHMARKS / "realtimeqa-news"

"""Shared helpers for the bench scripts: data paths, machine facts, memory sampling, output."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import json
import os
import platform
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

# Offline and quiet before anything imports transformers or chromadb.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import psutil

from bot.evaluate import percentile
from tests.support import BENCHMARKS

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SHARED = BENCHMARKS  # DOSSIER_BENCHMARKS names it for a checkout elsewhere
REALTIMEQA_ARTICLES = SHARED / "realtimeqa-news" / "articles.jsonl.gz"
REALTIMEQA_DEV = SHARED / "realtimeqa-news" / "questions-dev.jsonl"
NEWS_SCALE = SHARED / "news-scale" / "articles.jsonl.gz"
RESULTS = BENCH / "results"
_FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")

__all__ = ["percentile"]


def command_line() -> str:
    """The exact command that reproduces this run, from the project root."""
    module = f"bench.{Path(sys.argv[0]).stem}"  # scripts run as `python -m bench.NAME`
    args = " ".join(shlex.quote(a) for a in sys.argv[1:])
    return f"cd {ROOT} && HF_HUB_OFFLINE=1 .venv/bin/python -m {module} {args}".rstrip()


def machine() -> dict[str, Any]:
    """Cores, CPU model and the vector flags that decide torch's speed, plus the date."""
    model, flags = "unknown", set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    import torch

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": model,
        "flags": [f for f in _FLAGS_OF_INTEREST if f in flags],
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        # Other test runs share these 2 cores: a load well above 2 means slowed timings.
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


class PeakRSS:
    """Samples this process's resident memory in a thread; `peak_mb` is the highest seen.

    ru_maxrss only knows the whole process's lifetime peak; a sampler can bound one phase.
    """

    def __init__(self, interval_s: float = 0.05, children: bool = False,
                 pid: int | None = None) -> None:
        """`pid`: another process to watch (a server this run started), not this one."""
        self.interval_s = interval_s
        self.children = children
        self.peak = 0
        self._process = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        rss = self._process.memory_info().rss
        if self.children:
            for child in self._process.children(recursive=True):
                with contextlib.suppress(psutil.Error):  # a child may exit meanwhile
                    rss += child.memory_info().rss
        return int(rss)

    def _sample(self) -> None:
        self.peak = max(self.peak, self._rss())

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakRSS:
        self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)


class PhasePeaks(PeakRSS):
    """Peak RSS of each phase of a run, where a phase is the call of a method: while one
    of `phases` (label: (owner, method name)) runs, the samples count toward its label;
    outside them, toward "other". The methods are wrapped only inside the `with`."""

    def __init__(self, phases: dict[str, tuple[Any, str]], interval_s: float = 0.05) -> None:
        super().__init__(interval_s)
        self.phases = phases
        self.peaks: dict[str, int] = {}
        self._label = "other"
        self._saved: list[tuple[Any, str, Any]] = []

    def _sample(self) -> None:
        rss = self._rss()
        self.peak = max(self.peak, rss)
        self.peaks[self._label] = max(self.peaks.get(self._label, 0), rss)

    def _wrap(self, label: str, method: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            outer, self._label = self._label, label
            try:
                return method(*args, **kwargs)
            finally:
                self._sample()  # a short call may fall between two samples
                self._label = outer
        return run

    def __enter__(self) -> PhasePeaks:
        for label, (owner, name) in self.phases.items():
            method = getattr(owner, name)
            self._saved.append((owner, name, method))
            setattr(owner, name, self._wrap(label, method))
        super().__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        super().__exit__(exc_type, exc, tb)
        for owner, name, method in reversed(self._saved):
            setattr(owner, name, method)

    def phase_peak_mb(self, label: str) -> float | None:
        return round(self.peaks[label] / 2**20, 1) if label in self.peaks else None


def rss_mb() -> float:
    return round(psutil.Process().memory_info().rss / 2**20, 1)


def dir_mb(path: Path) -> float:
    """Bytes on disk under `path` (allocated blocks, so sparse files count as they are)."""
    total = 0
    for item in path.rglob("*"):
        if item.is_file():
            total += item.stat().st_blocks * 512
    return round(total / 2**20, 1)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def timed_ms(values: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99 and mean of a list of milliseconds, rounded for reading."""
    if not values:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "mean_ms": None}
    return {
        "p50_ms": _r(percentile(values, 50)),
        "p95_ms": _r(percentile(values, 95)),
        "p99_ms": _r(percentile(values, 99)),
        "mean_ms": _r(sum(values) / len(values)),
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class Stopwatch:
    """`with Stopwatch() as t: ...` then `t.seconds`."""

    seconds: float = 0.0

    def __enter__(self) -> Stopwatch:
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._started


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def report(name: str, data: dict[str, Any], markdown: str) -> None:
    """Print the command, the JSON and the markdown; keep the JSON for plots.py."""
    data = {"command": command_line(), "machine": machine(), **data}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"# {data['command']}")
    print(json.dumps(data, indent=2))
    print()
    print(markdown)
    sys.stdout.flush()


def alternating_runs(module: str, arguments: Sequence[str], flag: str,
                     choices: Sequence[Any], rounds: int) -> list[dict[str, Any]]:
    """Run `python -m module *arguments flag choice` for each choice, round after round, each
    in a fresh process (alternating, so a noisy machine's drift falls on every choice
    alike); the JSON each prints last, in run order, echoed to standard error as it comes."""
    runs = []
    for _ in range(rounds):
        for choice in choices:
            done = subprocess.run(
                [sys.executable, "-m", module, *arguments, flag, str(choice)],
                cwd=ROOT, check=True, capture_output=True, text=True,
            )
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    return runs


def index_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser with `--data-dir DIR` (a built index, required) and `--questions`, for
    scripts that only read an index; they may add their own arguments."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--questions", type=Path, default=REALTIMEQA_DEV)
    return parser


def index_arguments(doc: str | None) -> argparse.Namespace:
    """`--data-dir DIR` and `--questions`, parsed."""
    return index_parser(doc).parse_args()

"""Building the int8 model: each build process's peak memory, and how close its vectors are.

The int8 model is built from 128 benchmark passages three ways, each step in a fresh
process whose own peak RSS (VmHWM, as `/usr/bin/time -v` reports it) is read at its end:
1. one process, torch converting and NNCF calibrating in batches of 16 (the build before);
2. two processes, as an ingest builds it now (index/model_build.py): torch converts to a
   full-precision OpenVINO model, then NNCF quantises that without torch, for each
   calibration batch size in `--batches`.
Then each model's vectors against torch fp32: cosine on 512 other benchmark passages and
the 84 dev questions.

Usage: python -m bench.int8_build [--batches 16 8 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.benchlib import REALTIMEQA_DEV, ROOT, markdown_table, read_jsonl, report
from bench.precision import benchmark_passages
from index.embeddings import SentenceEmbeddings
from index.int8 import Int8Encoder

CALIBRATION = 128
MEASURED = 512

# Runs one build step (index.model_build's job on standard input) with a given calibration
# batch, then prints the process's own peak RSS.
_STEP = """
import json, resource, runpy, sys
import index.int8
index.int8.CALIBRATION_BATCH = int(sys.argv[1])
runpy.run_module("index.model_build", run_name="__main__")
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
"""

# The build before: convert and calibrate in one process (index.int8.save_int8).
_ONE_PROCESS = """
import json, resource, sys
from pathlib import Path
import index.int8
from index.embeddings import SentenceEmbeddings
index.int8.CALIBRATION_BATCH = int(sys.argv[1])
job = json.loads(sys.stdin.read())
source = SentenceEmbeddings(precision="fp32")
index.int8.save_int8(source.model, source.files, job["calibration"], Path(job["folder"]))
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
"""


def run_step(script: str, batch: int, job: dict[str, Any]) -> int:
    """Peak RSS in MB of one fresh process running `script` on `job`."""
    done = subprocess.run([sys.executable, "-c", script, str(batch)], cwd=ROOT, check=True,
                          input=json.dumps(job), capture_output=True, text=True)
    return int(json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"])


def closeness(folder: Path, fp32: SentenceEmbeddings, texts: dict[str, list[str]],
              reference: dict[str, Any]) -> dict[str, str]:
    assert fp32.files is not None
    model = Int8Encoder.load(folder, fp32.files)
    assert model is not None, folder
    row = {}
    for name, group in texts.items():
        cosines = np.sum(model.encode(group) * reference[name], axis=1)
        row[f"{name} mean"] = f"{cosines.mean():.5f}"
        row[f"{name} min"] = f"{cosines.min():.5f}"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 8, 4])
    args = parser.parse_args()
    passages = benchmark_passages(CALIBRATION + MEASURED)
    calibration = passages[:CALIBRATION]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="dossier-int8-build-") as tmp:
        work = Path(tmp)
        one = work / "one-process"
        peak = run_step(_ONE_PROCESS, 16, {"calibration": calibration, "folder": str(one)})
        rows.append({"build": "one process (before), batches of 16", "folder": one,
                     "converting MB": peak, "quantising MB": peak})
        for batch in args.batches:
            folder, fp32_folder = work / f"batch-{batch}", work / f"batch-{batch}" / "fp32"
            converting = run_step(_STEP, batch, {
                "step": "fp32", "model": "", "folder": str(fp32_folder),
                "calibration": calibration})
            quantising = run_step(_STEP, batch, {
                "step": "int8", "model": "", "folder": str(folder), "fp32": str(fp32_folder),
                "calibration": calibration})
            rows.append({"build": f"two processes, batches of {batch}", "folder": folder,
                         "converting MB": converting, "quantising MB": quantising})
            print(json.dumps({k: str(v) for k, v in rows[-1].items()}), file=sys.stderr,
                  flush=True)
        fp32 = SentenceEmbeddings(precision="fp32")
        texts = {"passages": passages[CALIBRATION:],
                 "questions": [q["question"] for q in read_jsonl(REALTIMEQA_DEV)]}
        reference = {name: fp32.encode(group) for name, group in texts.items()}
        for row in rows:
            row.update(closeness(row.pop("folder"), fp32, texts, reference))
    report("int8-build", {"calibration_passages": CALIBRATION, "rows": rows},
           markdown_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()

"""Builds the data dir's OpenVINO model in a child process: torch never enters the ingest's.

Converting and calibrating need the torch model (sentence-transformers); once imported,
torch's libraries stay mapped in a process for good (about 450 MB of an ingest's peak,
BENCHMARKS.md). A child loads it, saves the OpenVINO model into a staging folder and
exits; the ingest moves the finished files into place and loads them without torch.
A child that fails leaves nothing behind and is reported in one line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from index.errors import DossierError
from index.int8 import INFO_FILE, MODEL_FILE

# Inside the model's own folder, so a build never litters the data dir's top level.
STAGING_FOLDER = "building"


class ModelBuildFailed(DossierError):
    """The child process that builds the OpenVINO model failed; nothing was saved."""


def build_in_child(
    kind: str, model: str, folder: Path, calibration: Sequence[str] = ()
) -> None:
    """Build the `kind` ("int8" or "plain") OpenVINO model of `model` (a model folder, or
    "" for the bundled one, as SentenceEmbeddings takes it) into `folder`, in a child
    process; raise ModelBuildFailed (one line) when it fails."""
    staging = folder / STAGING_FOLDER
    created = not folder.exists()
    shutil.rmtree(staging, ignore_errors=True)  # what a killed build left
    staging.mkdir(parents=True)
    job = {"kind": kind, "model": model, "folder": str(staging),
           "calibration": list(calibration)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "index.model_build"], input=json.dumps(job),
            capture_output=True, text=True, check=False,
        )
        outcome = _outcome(done)
        if outcome is not None:
            raise ModelBuildFailed(f"building the {kind} embedding model failed: {outcome}")
        _move_into_place(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def copy_model(source: Path, folder: Path) -> None:
    """Copy a saved OpenVINO model from `source` into `folder` as a build would leave it:
    staged, then moved into place with its info file last."""
    staging = folder / STAGING_FOLDER
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        weights = Path(MODEL_FILE).with_suffix(".bin").name
        for name in (weights, MODEL_FILE, INFO_FILE):
            shutil.copyfile(source / name, staging / name)
        _move_into_place(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _outcome(done: subprocess.CompletedProcess[str]) -> str | None:
    """None when the child built the model, else why not, in one line."""
    lines = done.stdout.strip().splitlines()
    try:
        said = json.loads(lines[-1]) if lines else {}
    except ValueError:
        said = {}
    if done.returncode == 0 and said.get("built"):
        return None
    if isinstance(said.get("error"), str):
        return str(said["error"])
    if done.returncode < 0:
        return f"the build process was stopped by signal {-done.returncode}"
    last = (done.stderr.strip().splitlines() or [""])[-1].strip()
    return last or f"the build process exited with status {done.returncode}"


def _move_into_place(staging: Path, folder: Path) -> None:
    """Weights, then the graph, then the info file: a model is loaded only once its info
    file is there, so an ingest killed in between leaves one that is never used."""
    (folder / INFO_FILE).unlink(missing_ok=True)
    weights = Path(MODEL_FILE).with_suffix(".bin").name
    for name in (weights, MODEL_FILE, INFO_FILE):
        (staging / name).replace(folder / name)


def _build(job: dict[str, Any]) -> None:
    from index.embeddings import SentenceEmbeddings
    from index.int8 import save_int8, save_plain

    source = SentenceEmbeddings(job["model"], precision="fp32")
    files = source.files
    if files is None:
        raise ModelBuildFailed(f"{source.model_name} is not a model OpenVINO can run here")
    folder = Path(job["folder"])
    if job["kind"] == "int8":
        save_int8(source.model, files, job["calibration"], folder)
    else:
        save_plain(source.model, files, folder)


def main() -> None:
    """The child: read the job from standard input, build, say how it went on one line."""
    job = json.loads(sys.stdin.read())
    try:
        _build(job)
    except Exception as exc:  # any failure is the parent's one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(json.dumps({"error": f"{type(exc).__name__}: {first}".rstrip(": ")}))
        sys.exit(1)
    print(json.dumps({"built": True}))


if __name__ == "__main__":
    main()

"""Builds the data dir's OpenVINO model in child processes: torch never enters the ingest's.

Converting needs the torch model (sentence-transformers); once imported, torch's libraries
stay mapped in a process for good (about 450 MB of an ingest's peak, BENCHMARKS.md). A
child loads it, saves the OpenVINO model into a staging folder and exits; the ingest moves
the finished files into place and loads them without torch. The int8 model takes two
children: one converts to a full-precision OpenVINO model, a second quantises that with
NNCF and never imports torch (torch and NNCF's calibration in one process peaked at
2 GB). A child that fails leaves nothing behind and is reported in one line.
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
# The full-precision model the int8 one is quantised from, inside the staging folder.
FP32_FOLDER = "fp32"


class ModelBuildFailed(DossierError):
    """The child process that builds the OpenVINO model failed; nothing was saved."""


def build_in_child(
    kind: str, model: str, folder: Path, calibration: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Build the `kind` ("int8" or "plain") OpenVINO model of `model` (a model folder, or
    "" for the bundled one, as SentenceEmbeddings takes it) into `folder`, in child
    processes; return what each step reported (`imported`: the heavy packages it loaded);
    raise ModelBuildFailed (one line) when it fails."""
    staging = folder / STAGING_FOLDER
    created = not folder.exists()
    shutil.rmtree(staging, ignore_errors=True)  # what a killed build left
    staging.mkdir(parents=True)
    try:
        if kind == "int8":
            fp32 = staging / FP32_FOLDER
            steps = [
                _run_child(kind, {"step": "fp32", "model": model, "folder": str(fp32),
                                  "calibration": list(calibration)}),
                _run_child(kind, {"step": "int8", "model": model, "folder": str(staging),
                                  "fp32": str(fp32), "calibration": list(calibration)}),
            ]
            shutil.rmtree(fp32)
        else:
            steps = [_run_child(kind, {"step": "plain", "model": model,
                                       "folder": str(staging)})]
        _move_into_place(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return steps


def _run_child(kind: str, job: dict[str, Any]) -> dict[str, Any]:
    """Run one step of a build in a child; what it reported, or ModelBuildFailed."""
    done = subprocess.run(
        [sys.executable, "-m", "index.model_build"], input=json.dumps(job),
        capture_output=True, text=True, check=False,
    )
    said = _last_line(done)
    outcome = _outcome(done, said)
    if outcome is not None:
        raise ModelBuildFailed(f"building the {kind} embedding model failed: {outcome}")
    return said


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


def _last_line(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = done.stdout.strip().splitlines()
    try:
        said = json.loads(lines[-1]) if lines else {}
    except ValueError:
        return {}
    return said if isinstance(said, dict) else {}


def _outcome(done: subprocess.CompletedProcess[str], said: dict[str, Any]) -> str | None:
    """None when the child built the model, else why not, in one line."""
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

    source = SentenceEmbeddings(job["model"], precision="fp32")
    files = source.files
    if files is None:
        raise ModelBuildFailed(f"{source.model_name} is not a model OpenVINO can run here")
    folder = Path(job["folder"])
    if job["step"] == "int8":
        # NNCF imports torch whenever it is installed, and needs it only for torch models:
        # this step reads an OpenVINO model, so torch is kept out (its ~450 MB with it).
        sys.modules["torch"] = None  # type: ignore[assignment]
        from index.int8 import quantize_saved

        quantize_saved(Path(job["fp32"]), files, job["calibration"], folder)
    elif job["step"] == "fp32":
        from index.int8 import save_fp32

        save_fp32(source.model, files, job["calibration"], folder)
    else:
        from index.int8 import save_plain

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
    # What the step imported: the int8 step must do without torch (tests/test_int8.py).
    heavy = sorted(name for name in ("torch", "transformers", "sentence_transformers", "nncf")
                   if sys.modules.get(name) is not None)
    print(json.dumps({"step": job["step"], "built": True, "imported": heavy}))


if __name__ == "__main__":
    main()

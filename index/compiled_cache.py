"""Where OpenVINO keeps compiled models between processes, so a cold start loads, not compiles.

Compiling the int8 model for the CPU takes about 0.65 s of every new process (a cold
`dossier ask` is a new process); loading the compiled blob that an earlier process left
takes about 0.2 s (BENCHMARKS.md). OpenVINO writes and reads the blobs itself once its Core
has a CACHE_DIR; a blob is keyed by a hash of the model and the compile options, so a new
model (a re-tuned int8 copy) simply gets a new blob. This module picks the folder, keeps it
small, and never lets a cache problem stop an answer.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Blobs are ~57 MB for MiniLM int8, two per model (batches and questions, index/int8.py); a
# user has one data dir, tests and benchmarks several.
KEEP_BLOBS = 6


def default_folder() -> Path:
    """The user's cache folder for Dossier's compiled models (XDG, like pip's)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dossier" / "openvino"


def resolve(setting: str) -> Path | None:
    """The folder `index.compiled_cache` names: "" = the default, "off" = none."""
    if setting.strip().lower() == "off":
        return None
    return Path(setting).expanduser() if setting.strip() else default_folder()


def enable(core: Any, folder: Path | None) -> bool:
    """Point `core` at `folder` for every later compile; False (and compiles as before)
    when there is no folder or it cannot be made."""
    if folder is None:
        return False
    try:
        folder.mkdir(parents=True, exist_ok=True)
        core.set_property({"CACHE_DIR": str(folder)})
    except (OSError, RuntimeError) as exc:
        log.warning("compiled models are not kept between runs (%s): %s", folder, exc)
        return False
    return True


def prune(folder: Path | None, keep: int = KEEP_BLOBS) -> None:
    """Delete all but the `keep` most recently used blobs (OpenVINO never deletes any)."""
    if folder is None or not folder.is_dir():
        return
    blobs = sorted(folder.glob("*.blob"), key=_last_used, reverse=True)
    for blob in blobs[keep:]:
        blob.unlink(missing_ok=True)


def _last_used(path: Path) -> float:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return 0.0
    return max(stat.st_mtime, stat.st_atime)

"""Replace a folder's contents atomically: a crash mid-save leaves the previous contents."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def replace_folder(folder: Path, write: Callable[[Path], None]) -> None:
    """`write` fills a staging folder beside `folder`, which then takes its place: readers
    see the old contents or the new ones, never half of either."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        write(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    backup = folder.with_name(folder.name + ".old")
    if backup.exists():
        shutil.rmtree(backup)
    if folder.exists():
        folder.rename(backup)
    staging.rename(folder)
    shutil.rmtree(backup, ignore_errors=True)

"""Documents added to the corpus by a front end: a safe name of ours, never overwriting."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path, PurePosixPath

# What index.loaders can read, by extension and, for names without one, by MIME type.
DOCUMENT_EXTENSIONS = (".txt", ".md", ".html", ".htm", ".pdf")
_EXTENSION_OF_MIME = {
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/html": ".html",
    "application/pdf": ".pdf",
}
# Room for "-NN" and the extension within common 255-byte file name limits, with margin.
_MAX_STEM_BYTES = 80
_NOT_NAME_CHARS = re.compile(r"[^\w-]+")
_FALLBACK_STEM = "document"


def document_extension(file_name: str | None, mime_type: str | None) -> str | None:
    """The loader extension for an upload: from its name, else its MIME type; None = refuse."""
    name = (file_name or "").replace("\x00", "")
    suffix = PurePosixPath(name.replace("\\", "/")).suffix.lower()
    if suffix:
        return suffix if suffix in DOCUMENT_EXTENSIONS else None
    return _EXTENSION_OF_MIME.get((mime_type or "").split(";")[0].strip().lower())


def safe_document_stem(file_name: str | None) -> str:
    """A file name stem made by us from a user's name: one path component, no dots or
    separators, at most _MAX_STEM_BYTES of UTF-8, never empty."""
    name = (file_name or "").replace("\x00", "-").replace("\\", "/")
    name = PurePosixPath(name).name if "/" in name else name
    stem, dot, suffix = name.rpartition(".")
    if dot and ("." + suffix.lower()) in DOCUMENT_EXTENSIONS:
        name = stem
    slug = _NOT_NAME_CHARS.sub("-", unicodedata.normalize("NFKC", name)).strip("-_").lower()
    encoded = slug.encode("utf-8")[:_MAX_STEM_BYTES]
    slug = encoded.decode("utf-8", "ignore").rstrip("-_")
    return slug or _FALLBACK_STEM


def save_document(folder: Path, file_name: str | None, extension: str, content: bytes) -> Path:
    """Write `content` to a new file in `folder` named by us; never overwrites anything."""
    if extension not in DOCUMENT_EXTENSIONS:
        raise ValueError(f"unsupported extension {extension!r}")
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    stem = safe_document_stem(file_name)
    for attempt in range(1, 10_000):
        candidate = root / f"{stem if attempt == 1 else f'{stem}-{attempt}'}{extension}"
        if candidate.parent != root:  # cannot happen with our stems; refuse rather than trust
            raise ValueError("document name escapes the corpus folder")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        return candidate
    raise FileExistsError(f"no free name for {stem}{extension} in {folder}")

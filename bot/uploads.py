"""Documents added to the corpus by a front end: a safe name of ours in the uploads folder,
where a document of the same name replaces the earlier upload and nothing else."""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Uploads live in their own folder of the corpus: an upload can only ever replace an upload.
UPLOADS_FOLDER = "uploads"

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


@dataclass
class SavedDocument:
    """A document written to the uploads folder, with the upload it replaced set aside
    until the caller keeps the new one (`commit`) or takes it back (`undo`)."""

    path: Path
    previous: Path | None = None

    @property
    def replaced(self) -> bool:
        return self.previous is not None

    def commit(self) -> None:
        if self.previous is not None:
            self.previous.unlink(missing_ok=True)

    def undo(self) -> None:
        self.path.unlink(missing_ok=True)
        if self.previous is not None:
            os.replace(self.previous, self.path)


def save_document(folder: Path, file_name: str | None, extension: str,
                  content: bytes) -> SavedDocument:
    """Write `content` to `folder` under a name made by us from `file_name`; an earlier
    upload of that name is set aside (hidden, so no ingest reads it) until commit or undo."""
    if extension not in DOCUMENT_EXTENSIONS:
        raise ValueError(f"unsupported extension {extension!r}")
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    target = root / f"{safe_document_stem(file_name)}{extension}"
    if target.parent != root:  # cannot happen with our stems; refuse rather than trust
        raise ValueError("document name escapes the uploads folder")
    previous = None
    if target.is_symlink() or target.exists():
        previous = root / f".{target.name}.previous"
        os.replace(target, previous)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(content)
    return SavedDocument(target, previous)

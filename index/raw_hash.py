"""Hashes of articles as read (bytes, before cleaning): unchanged ones are never cleaned again."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

# Cleaning is most of the time of an ingest that embeds nothing (19 s of an unchanged
# re-ingest of 1,427 articles were spent re-cleaning them). The same bytes read by the
# same reading code give the same article, so that code is part of every hash: a change to
# the cleaner re-reads everything once, as it must.
_READING_MODULES = (
    "articles_jsonl.py", "chrome.py", "cleaning.py", "encoding.py", "formats.py",
    "layout.py", "loaders.py", "models.py", "pdf.py", "raw_hash.py",
)


@functools.cache
def reading_code_digest() -> str:
    """A digest of the source of every module that turns bytes into an Article."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _READING_MODULES:
        try:
            digest.update((here / name).read_bytes())
        except OSError:  # an installed copy without sources: never claim a match
            digest.update(name.encode())
    return digest.hexdigest()


def raw_hash(where: str, raw: bytes, context: str = "") -> str:
    """The hash of one input (a file's bytes, or one JSONL line and what else shaped it)
    at `where` (path and id, or path and line)."""
    digest = hashlib.sha256(reading_code_digest().encode())
    for part in (where.encode("utf-8", "surrogatepass"), context.encode(), raw):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()

"""Opening Chroma (embedded, or a server by URL) and turning its outages into one clear error."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import chromadb

from index.errors import StoreUnavailable

_T = TypeVar("_T")


def is_outage(exc: BaseException) -> bool:
    """A failure to reach the store, as opposed to a bug or a bad request: a transport error
    of httpx (Chroma's HTTP client) or of the OS, raised as is or re-raised by chromadb
    (which turns httpx.ConnectError into a ValueError, keeping it as the context)."""
    import httpx

    seen: BaseException | None = exc
    for _ in range(8):  # a chain is short; the bound only guards against a cycle
        if seen is None:
            return False
        if isinstance(seen, httpx.TransportError | ConnectionError | TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def reachable(method: Callable[..., _T]) -> Callable[..., _T]:
    """Turn a server outage during a store call into StoreUnavailable (one clear line)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> _T:
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            if is_outage(exc):
                raise StoreUnavailable(
                    f"the Chroma store is unavailable right now ({type(exc).__name__})"
                ) from exc
            raise

    return wrapper


def make_client(chroma_path: Path, chroma_url: str = "") -> Any:
    """An HttpClient for a Chroma server URL, else a PersistentClient under the data dir."""
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if chroma_url:
            parsed = urlparse(chroma_url)
            if not parsed.hostname:
                raise StoreUnavailable(f"store.chroma_url is not a URL: {chroma_url!r}")
            return chromadb.HttpClient(
                host=parsed.hostname,
                port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                ssl=parsed.scheme == "https",
                settings=chroma_settings,
            )
        chroma_path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(chroma_path), settings=chroma_settings)
    except StoreUnavailable:
        raise
    except Exception as exc:  # chromadb raises bare ValueError/ConnectionError variants
        where = chroma_url or str(chroma_path)
        raise StoreUnavailable(f"cannot open the Chroma store at {where}: {exc}") from exc

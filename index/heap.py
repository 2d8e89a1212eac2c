"""Hand freed heap memory back to the system after a large, passing allocation."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def return_freed_memory() -> bool:
    """Give the pages of freed heap memory back to the system; True when it could.

    Reading a whole collection from Chroma page by page, to rebuild an index, leaves
    hundreds of MB freed but kept by the C allocator: still counted in the process's
    resident memory, and carried into everything the process does next (BENCHMARKS.md).
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def returning_freed_memory(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """`function`, then `return_freed_memory()`: for steps that read a whole collection."""

    @functools.wraps(function)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return function(*args, **kwargs)
        finally:
            return_freed_memory()

    return run

"""Give the memory a large answer freed back to the system.

A universe-wide insight reads hundreds of megabytes of slices and builds days × tickers
matrices, then frees them. The allocators keep what was freed for reuse: glibc's heap
keeps DuckDB's result buffers (a malloc_trim returns them), Arrow's pool (mimalloc or
jemalloc) keeps its pages. Without a release, ``serve``'s resident size stays at the
largest answer's peak, and the next large answer adds its own peak on top of what the
first left behind.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

__all__ = ["release"]


@functools.cache
def _libc() -> Any:
    """The C library when it has ``malloc_trim`` (glibc), else None (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def release() -> None:
    """Return the C heap's and Arrow's free memory to the system (a few milliseconds)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)

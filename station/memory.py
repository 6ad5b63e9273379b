"""Giving freed memory back to the system (glibc only; elsewhere these do nothing and say so).

CPython frees a NumPy frame with ``free()``; glibc's malloc keeps some freed memory in the process: the heap's
free chunks below its top, the worker threads' arenas, and, because its mmap threshold rises to the size of
each large block freed (up to 32 MB, the dynamic threshold of ``mallopt(3)``), the quarter-frame planes of a
50 MP frame come from the heap after the first one is freed. ``malloc_trim(3)`` returns the free pages of
every arena; ``M_MMAP_THRESHOLD`` set once pins the threshold (and stops its rising), so a block that large is
always its own mapping, unmapped when freed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform

#: ``mallopt`` parameter number of the mmap threshold (glibc ``malloc.h``).
M_MMAP_THRESHOLD = -3
#: Blocks from this size up (bytes) get their own mapping: a 1 MP float64 plane is 8 MB, a 50 MP frame's
#: CFA plane 25 MB (uint16) to 100 MB (float64).
MMAP_THRESHOLD_BYTES = 4 << 20


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """glibc, when this process runs on it (None: musl, macOS, Windows: nothing to do)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def trim_heap() -> bool:
    """``malloc_trim(0)``: the free pages of every malloc arena back to the system. True when some were."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))


def pin_mmap_threshold(size_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """``mallopt(M_MMAP_THRESHOLD, size_bytes)``: blocks of ``size_bytes`` and more mapped on their own and
    unmapped when freed (the dynamic threshold off). True when glibc took it."""
    if not 0 < int(size_bytes) <= 32 << 20:  # glibc's HEAP_MAX / 2 bound on 64-bit
        raise ValueError(f"mmap threshold {size_bytes} bytes: expected 1 .. {32 << 20}")
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_MMAP_THRESHOLD, int(size_bytes)))

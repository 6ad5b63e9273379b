"""Giving freed memory back to the system (glibc only; elsewhere this does nothing and says so).

CPython frees a NumPy array with ``free()``; glibc's malloc keeps some freed memory in the process: the heap's
free chunks below its top and the worker threads' arenas (and, as its mmap threshold rises to the size of each
large block freed, up to 32 MB, blocks that large come from the heap too). ``malloc_trim(3)`` returns the free
pages of every arena. Pinning the threshold (``mallopt(M_MMAP_THRESHOLD)``) was tried and left out: it saved
80 MB between tests of a 50 MP run and cost a sixth of a CI-readout plan's time in page faults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """glibc, when this process runs on it (None: musl, macOS, Windows: nothing to do)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def trim_heap() -> bool:
    """``malloc_trim(0)``: the free pages of every malloc arena back to the system. True when some were."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))

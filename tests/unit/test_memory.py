"""station.memory (issue 13): glibc's free pages given back after a plan test."""

from __future__ import annotations

import platform

import numpy as np
import pytest

from station.memory import trim_heap

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


@glibc
def test_trim_gives_back_the_free_pages_between_live_blocks() -> None:
    """Blocks under the mmap threshold (128 kB until a larger block is freed) come from the heap; with every other
    one freed, the free chunks sit between live ones (no trim at the heap's top can return them);
    ``malloc_trim(0)`` does."""
    blocks = [np.ones(96 * 1024 // 8) for _ in range(2400)]  # 96 kB each, 225 MB
    del blocks[::2]
    before = _rss_mb()
    assert trim_heap()
    after = _rss_mb()
    assert before - after > 50, (before, after)  # about 100 MB of free pages go back
    assert sum(float(b[0]) for b in blocks) == 1200  # the live blocks are intact

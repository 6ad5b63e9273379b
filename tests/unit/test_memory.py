"""station.memory (issue 13): glibc's free pages given back after a plan test, its mmap threshold pinned."""

from __future__ import annotations

import platform

import numpy as np
import pytest

from station.memory import pin_mmap_threshold, trim_heap

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


@glibc
def test_trim_gives_back_the_free_pages_between_live_blocks() -> None:
    """Blocks under the mmap threshold come from the heap; with every other one freed, the free chunks sit between
    live ones (no trim at the heap's top can return them); ``malloc_trim(0)`` does."""
    assert pin_mmap_threshold(4 << 20)
    blocks = [np.ones(256 * 1024 // 8) for _ in range(800)]  # 256 kB each, 200 MB
    del blocks[::2]
    before = _rss_mb()
    assert trim_heap()
    after = _rss_mb()
    assert before - after > 50, (before, after)  # about 100 MB of free pages go back
    assert sum(float(b[0]) for b in blocks) == 400  # the live blocks are intact


def test_a_threshold_glibc_would_not_take_is_refused() -> None:
    for bad in (0, -1, (32 << 20) + 1):
        with pytest.raises(ValueError, match="mmap threshold"):
            pin_mmap_threshold(bad)

"""Time the station spends blocked on device wires: a process-wide, thread-safe accumulator.

A driver wraps each blocking read of its wire (a VISA read, a serial read or a poll's sleep, a
socket receive) in ``with wire_time.waiting(device):``. The accumulator keeps, per device, the
seconds spent inside those blocks, and ``busy_s``: the wall seconds during which at least one
thread was waiting on any wire (the union of the intervals, so two threads waiting at once count
once). A benchmark takes a ``snapshot()`` before and after a run; the difference is what the run
spent waiting, and the run's wall time minus ``busy_s`` is the station's own critical path.

A block nested in another block of the same thread is not counted twice (only the outermost one
is). The overhead is two ``perf_counter`` calls and one lock per block: negligible against a wire.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_lock = threading.Lock()
_local = threading.local()
_by_device_s: dict[str, float] = {}
_blocks: dict[str, int] = {}
_busy_s = 0.0
_active = 0  # threads inside an outermost block right now
_busy_since = 0.0


@dataclass(frozen=True)
class WireTime:
    """Seconds blocked on wires so far: by device, and the union over devices and threads."""

    by_device_s: dict[str, float] = field(default_factory=dict)
    blocks: dict[str, int] = field(default_factory=dict)
    busy_s: float = 0.0

    def since(self, earlier: WireTime) -> WireTime:
        """What was spent between ``earlier`` and this snapshot (devices with a block in between only)."""
        devices = [d for d in self.blocks if self.blocks[d] > earlier.blocks.get(d, 0)]
        return WireTime(
            by_device_s={d: self.by_device_s.get(d, 0.0) - earlier.by_device_s.get(d, 0.0) for d in sorted(devices)},
            blocks={d: self.blocks.get(d, 0) - earlier.blocks.get(d, 0) for d in sorted(devices)},
            busy_s=self.busy_s - earlier.busy_s)


@contextmanager
def waiting(device: str) -> Iterator[None]:
    """Count the time inside the block as time blocked on ``device``'s wire."""
    global _active, _busy_since, _busy_s
    depth = getattr(_local, "depth", 0)
    _local.depth = depth + 1
    if depth:  # nested in an outer block of this thread: already counted there
        try:
            yield
        finally:
            _local.depth = depth
        return
    started = time.perf_counter()
    with _lock:
        if _active == 0:
            _busy_since = started
        _active += 1
    try:
        yield
    finally:
        ended = time.perf_counter()
        _local.depth = depth
        with _lock:
            _by_device_s[device] = _by_device_s.get(device, 0.0) + (ended - started)
            _blocks[device] = _blocks.get(device, 0) + 1
            _active -= 1
            if _active == 0:
                _busy_s += ended - _busy_since


def snapshot() -> WireTime:
    """The totals so far (a block still open is counted from its end, not yet here)."""
    with _lock:
        return WireTime(dict(_by_device_s), dict(_blocks), _busy_s)

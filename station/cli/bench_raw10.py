"""``station bench raw10``: RAW10 unpack time against ``np.copy`` of the same frame, in one run.

The figure is ``unpack_s`` (unpack a ``--width`` x ``--height`` RAW10 buffer into a fresh
uint16 array); its reference is ``copy_s`` (``np.copy`` of the unpacked array), both the
best of ``--repeats`` interleaved runs (default 15); ``ratio = unpack_s / copy_s`` (issue 13: goal <= 1.0, bar <= 1.5).
``pack_s`` is the reverse (uint16 frame to RAW10 bytes); ``kernel`` says whether the compiled kernel
(``station/_raw10.c``) ran, ``simd`` its vector path, ``threads`` how many threads it used.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np

from station import raw10
from station.cli.bench import bench_parser, print_bench
from station.errors import ConfigError, StationError
from station.raw10 import pack_raw10, unpack_raw10

RATIO_LIMIT = 1.5


def register(sub: argparse._SubParsersAction) -> None:
    parser = bench_parser(sub, "raw10", "RAW10 unpack time vs np.copy of the frame", run, repeats=15,
                          repeats_help="runs of each; the best counts")
    parser.add_argument("--width", type=int, default=8192, help="frame width, pixels (multiple of 4)")
    parser.add_argument("--height", type=int, default=6144, help="frame height, pixels")


def _best_s(fns: tuple[Callable[[], object], ...], repeats: int) -> list[float]:
    """The best of ``repeats`` single runs of each of ``fns``, s (timeit's rule: the minimum is the least disturbed
    run). The runs are interleaved, one of each in turn, so a burst of load on a shared machine falls on all of
    them alike rather than on whichever was being timed then."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], timeit.timeit(fn, number=1))
    return best


def measure(width: int, height: int, repeats: int = 15, seed: int = 0) -> dict[str, float | bool | int]:
    """Unpack and copy times (best of ``repeats``) for a random 10-bit frame; checks the unpack."""
    if width < 4 or width % 4 or height < 1:
        raise ConfigError(f"bench raw10: --width must be a positive multiple of 4 and --height >= 1, "
                          f"got {width}x{height}")
    if repeats < 1:
        raise ConfigError(f"bench raw10: --repeats must be >= 1, got {repeats}")
    frame = np.random.default_rng(seed).integers(0, 1024, size=(height, width), dtype=np.uint16)
    packed = pack_raw10(frame)
    unpacked = unpack_raw10(packed, width, height)
    if not np.array_equal(unpacked, frame):
        raise StationError("bench raw10: unpacked frame differs from the packed one")
    del frame
    unpack_s, copy_s, pack_s = _best_s((lambda: unpack_raw10(packed, width, height), lambda: np.copy(unpacked),
                                        lambda: pack_raw10(unpacked)), repeats)
    return {"unpack_s": unpack_s, "copy_s": copy_s, "ratio": unpack_s / copy_s, "pack_s": pack_s,
            "kernel": raw10.has_kernel(), "simd": raw10.kernel_simd(),
            "threads": raw10.THREADS if raw10.has_kernel() else 1,
            "ratio_limit": RATIO_LIMIT}


def run(args: argparse.Namespace) -> int:
    return print_bench(args, "raw10", measure(args.width, args.height, args.repeats),
                       lambda result: _summary(args.width, args.height, result))


def _summary(width: int, height: int, result: dict[str, Any]) -> str:
    verdict = "ok" if result["ratio"] <= RATIO_LIMIT else "over the limit"
    return (f"raw10 {width}x{height}: unpack {result['unpack_s'] * 1e3:.1f} ms, "
            f"np.copy {result['copy_s'] * 1e3:.1f} ms, ratio {result['ratio']:.2f} "
            f"(limit {RATIO_LIMIT:g}, {verdict})")

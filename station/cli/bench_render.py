"""``station bench render``: time to render one chart frame in the twin, CI mode and full 50 MP.

The frame is the slanted-edge (SFR) chart through the Summicron-M 50 mm f/2 at f/4, focused on the
chart 1 m away, light at 50 %, rendered to a raw CFA frame by ``station.twin.render.render_raw``.
Each mode is warmed up once (imports, the sensor's fixed patterns, the chart), then the best of
``--repeats`` renders counts (``*_s`` wall time; ``*_cpu_s`` the process's CPU time, all threads, which a
loaded machine inflates less). The reference measured in the same run is ``blur_s``: a 5x5 Gaussian
blur of one float32 frame of the same size (``cv2.GaussianBlur``), the cost of one full-frame pass.
Issue 13 on a 2-core machine: CI <= 0.25 s (bar 0.5 s), full 8192 x 6144 <= 3 s (``*_limit_s`` are the bars).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import cv2
import numpy as np

from station.cli.bench import bench_parser, print_bench
from station.errors import ConfigError

LIMITS_S = {"ci": 0.5, "full": 3.0}
LENS = "summicron-m-50-f2"
CHART = "sfr"
DISTANCE_MM = 1000.0


def _bench_world(resolution: str, focus_deg: float) -> Any:
    """The bench's fixed scene: a twin world with the chart, lens, pose and light set."""
    from station.twin.world import World

    world = World(seed=1, resolution=resolution, time_scale=0.0, chart=CHART, m_lens=LENS)
    world.axes.update({world.axis_map["focus"]: focus_deg, world.axis_map["distance"]: DISTANCE_MM})
    world.set_light(output=True, level_pct=50.0)
    return world


def register(sub: argparse._SubParsersAction) -> None:
    parser = bench_parser(sub, "render", "twin render time of one chart frame, CI and full resolution", run,
                          repeats=2, repeats_help="timed renders per mode; the best counts")
    parser.add_argument("--modes", default="ci,full", help="comma-separated readout modes to time (ci, full)")


def measure(modes: tuple[str, ...] = ("ci", "full"), repeats: int = 2) -> dict[str, Any]:
    """Best render time per mode (s), the frame sizes, and the one-pass blur reference."""
    from station.twin.lenses import get_lens
    from station.twin.render import render_raw
    from station.twin.sensor import SPECS

    if repeats < 1:
        raise ConfigError(f"bench render: --repeats must be >= 1, got {repeats}")
    unknown = [m for m in modes if m not in SPECS]
    if unknown or not modes:
        raise ConfigError(f"bench render: --modes {','.join(modes)!s}: expected a comma list of {', '.join(SPECS)}")
    ring = get_lens(LENS).ring_for_distance_deg(DISTANCE_MM)
    settings = {"exposure_us": 4000, "analog_gain": 1.0, "aperture": 4.0}
    result: dict[str, Any] = {"lens": LENS, "chart": CHART, "distance_mm": DISTANCE_MM, "repeats": repeats}
    for mode in modes:
        world = _bench_world(mode, ring)
        t0 = time.perf_counter()
        raw, _ = render_raw(world, "m", settings, 0)
        result[f"{mode}_first_s"] = time.perf_counter() - t0
        best, best_cpu = float("inf"), float("inf")
        for seq in range(1, repeats + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            raw, _ = render_raw(world, "m", settings, seq)
            best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
        result[f"{mode}_s"] = best
        result[f"{mode}_cpu_s"] = best_cpu
        result[f"{mode}_size"] = [int(raw.shape[1]), int(raw.shape[0])]
        frame = np.ones(raw.shape, dtype=np.float32)
        del raw
        t0 = time.perf_counter()
        cv2.GaussianBlur(frame, (5, 5), 1.0)
        result[f"{mode}_blur_s"] = time.perf_counter() - t0
        result[f"{mode}_limit_s"] = LIMITS_S[mode]
    return result


def run(args: argparse.Namespace) -> int:
    modes = tuple(m.strip() for m in str(args.modes).split(",") if m.strip())
    return print_bench(args, "render", measure(modes, args.repeats), lambda result: _summary(modes, result))


def _summary(modes: tuple[str, ...], result: dict[str, Any]) -> str:
    lines = []
    for mode in modes:
        verdict = "ok" if result[f"{mode}_s"] <= LIMITS_S[mode] else "over the limit"
        w, h = result[f"{mode}_size"]
        lines.append(f"render {mode} {w}x{h}: {result[f'{mode}_s']:.2f} s (CPU {result[f'{mode}_cpu_s']:.2f} s; "
                     f"first {result[f'{mode}_first_s']:.2f} s; "
                     f"one blur pass {result[f'{mode}_blur_s'] * 1e3:.0f} ms; limit {LIMITS_S[mode]:g} s, {verdict})")
    return "\n".join(lines)

"""``station capture``: one frame from a sensor, with chart, pose, lens, light and exposure set first.

Without ``--exposure-s`` the exposure is metered: a RAW probe frame at 1 ms (shorter while it
clips) and the exposure that puts the frame's mean at 40 % of the range above black, its
99.5th percentile at most at 85 % (so nothing clips). On the twin the capture's ground truth
is summarised in a second line (chart, distance, light, lens, blur circle, expected level).
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from station.atomic import atomic_write_bytes, atomic_write_text
from station.cli.common import add_station_options, station_config
from station.errors import ConfigError, InputError

FORMATS = ("dng", "raw10", "preview", "zebra_mask", "peaking_mask")
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]*\Z")
#: Chart names as ``targets.registry`` takes them (a ChArUco spec ``charuco:5x7:40:20:DICT`` too).
_CHART_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:_\-]{0,99}\Z")
DEFAULT_LIGHT_PCT = 50.0
#: Metering: probe exposure, target mean and highlight ceiling (fractions of white - black).
PROBE_EXPOSURE_S = 0.001
TARGET_MEAN = 0.40
HIGHLIGHT_CEILING = 0.85
CLIPPING = 0.90  # a probe whose highlights reach this is shortened 8x and taken again
PROBE_TRIES = 4
EXPOSURE_S_RANGE = (1e-5, 30.0)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("capture", help="capture one frame (DNG, RAW10, preview PNG, masks)")
    parser.add_argument("--sensor", choices=("main", "m"), required=True)
    parser.add_argument("--format", choices=FORMATS, default="dng", dest="fmt")
    parser.add_argument("-o", "--output", metavar="FILE", required=True,
                        help="where to write (raw10 also writes FILE.json with the metadata)")
    scene = parser.add_argument_group("scene (set before the capture)")
    scene.add_argument("--chart", metavar="NAME",
                       help="chart on the holder (twin; `station chart list`; default: the one there)")
    scene.add_argument("--distance-mm", type=float, help="camera-to-chart rail distance, mm")
    scene.add_argument("--pan-deg", type=float, help="gimbal pan, degrees")
    scene.add_argument("--tilt-deg", type=float, help="gimbal tilt, degrees")
    scene.add_argument("--focus-deg", type=float, help="M lens focus ring angle, degrees (0: infinity)")
    scene.add_argument("--focus-m", type=float, help="main sensor focus distance, m (default: autofocus)")
    scene.add_argument("--lens", metavar="ID", help="M lens to mount (twin; 'none' for the bare sensor)")
    scene.add_argument("--aperture", type=float, metavar="N", help="M lens f-number (twin; default wide open)")
    scene.add_argument("--light-pct", type=float, default=DEFAULT_LIGHT_PCT,
                       help=f"light level, %% of full scale (default {DEFAULT_LIGHT_PCT:g}; 0 switches it off)")
    scene.add_argument("--cct-k", type=float, help="light colour temperature, K")
    scene.add_argument("--exposure-s", type=float,
                       help="exposure time, s (default: metered, mean at 40%% of the range, nothing clipped)")
    scene.add_argument("--gain", type=float, default=1.0, help="analog gain (default 1)")
    add_station_options(parser)
    parser.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    for name in ("distance_mm", "pan_deg", "tilt_deg", "focus_deg", "focus_m", "aperture", "light_pct",
                 "cct_k", "exposure_s", "gain"):
        value = getattr(args, name)
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"--{name.replace('_', '-')} {value}: expected a finite number")
    lo, hi = EXPOSURE_S_RANGE
    if args.exposure_s is not None and not lo <= args.exposure_s <= hi:
        raise ConfigError(f"--exposure-s {args.exposure_s}: allowed {lo:g}..{hi:g} s")
    if not 1.0 <= args.gain <= 64.0:
        raise ConfigError(f"--gain {args.gain}: allowed 1..64")
    if not 0 <= args.light_pct <= 100:
        raise ConfigError(f"--light-pct {args.light_pct}: allowed 0..100")
    if args.aperture is not None and args.aperture <= 0:
        raise ConfigError(f"--aperture {args.aperture}: expected an f-number > 0")
    if args.chart is not None and not _CHART_RE.match(args.chart):
        raise ConfigError(f"--chart {args.chart!r}: expected a chart name (letters, digits, '.', ':', '_', '-')")
    if args.lens is not None and not _SLUG_RE.match(args.lens):
        raise ConfigError(f"--lens {args.lens!r}: expected a lower-case id (letters, digits, '-', '.')")
    if args.lens == "none" and args.aperture is not None:
        raise ConfigError("--aperture needs a lens; the bare sensor (--lens none) has none")
    if args.focus_m is not None and args.sensor != "main":
        raise ConfigError("--focus-m applies to the main sensor; the M lens focuses with --focus-deg")


def set_scene(station: Any, args: argparse.Namespace) -> None:
    """Put the bench in the state the options ask for (chart and lens through the operator)."""
    twin = station.twin
    wants_operator = args.chart is not None or args.lens is not None or args.aperture is not None
    if wants_operator and twin is None:
        raise ConfigError("--chart, --lens and --aperture are operator steps on a bench; "
                          "set them by hand and leave the options out")
    if twin is not None:
        if args.chart is not None:
            twin.chart_set(args.chart)
        if args.lens is not None:
            twin.lens_mount(None if args.lens == "none" else args.lens, args.aperture)
        elif args.aperture is not None:
            twin.lens_aperture(args.aperture)
    moves = {axis: getattr(args, opt) for axis, opt in (("distance", "distance_mm"), ("pan", "pan_deg"),
                                                        ("tilt", "tilt_deg"), ("focus", "focus_deg"))}
    moves = {axis: value for axis, value in moves.items() if value is not None}
    if moves:
        station.mount.home()
        station.mount.move_to(**moves)
    if args.cct_k is not None:
        station.light.set_cct_k(args.cct_k)
    station.light.set_level_pct(args.light_pct)
    station.light.set_output(args.light_pct > 0)
    station.light.wait_settled()


def metered_exposure_s(dut: Any, sensor: str, settings: dict[str, Any]) -> float:
    """The exposure putting the frame's mean at ``TARGET_MEAN`` of the range above black, with its
    99.5th percentile at most at ``HIGHLIGHT_CEILING`` (probe frames over RAW10; see the module doc)."""
    probe_s = PROBE_EXPOSURE_S
    for _ in range(PROBE_TRIES):
        dut.configure(sensor, exposure_us=max(1, round(probe_s * 1e6)), **settings)
        frame = dut.capture_frame(sensor)
        sample = _quad_sample(frame.data).astype(np.float64) - frame.black_level
        span = float(frame.white_level - frame.black_level)
        mean, high = float(sample.mean()), float(np.percentile(sample, 99.5))
        if high < CLIPPING * span or probe_s <= EXPOSURE_S_RANGE[0]:
            break
        probe_s = max(probe_s / 8.0, EXPOSURE_S_RANGE[0])
    if mean <= 2.0:  # nothing to meter (dark): keep the probe's exposure
        return probe_s
    scale = min(TARGET_MEAN * span / mean, HIGHLIGHT_CEILING * span / max(high, mean))
    return float(min(max(probe_s * scale, EXPOSURE_S_RANGE[0]), 1.0))


def _quad_sample(data: np.ndarray, step: int = 3) -> np.ndarray:
    """Every ``step``-th 2x2 CFA quad in each direction, all four sites kept (every colour metered)."""
    h, w = data.shape
    if h % 2 or w % 2:
        return data
    return data.reshape(h // 2, 2, w // 2, 2)[::step, :, ::step, :]


def truth_summary(truth: dict[str, Any]) -> str:
    """One line of the twin's ground truth for a capture: scene, optics, focus, expected level."""
    pose = truth.get("pose") or {}
    parts = [f"chart {truth.get('chart')} at {pose.get('distance_mm', float('nan')):.0f} mm",
             f"{truth.get('illuminance_lux', 0.0):.0f} lux {truth.get('cct_k', 0.0):.0f} K"]
    lens = truth.get("lens")
    if lens is None:
        parts.append("bare sensor")
    else:
        parts.append(f"lens {lens} f/{truth.get('f_number') or 0:g}")
    focus = truth.get("focus")
    if focus:
        state = "in focus" if focus.get("in_focus") else "out of focus"
        parts.append(f"blur circle {focus.get('blur_circle_px', 0.0):.2f} px ({state}, "
                     f"focused at {focus.get('focus_distance_mm') or float('inf'):.0f} mm)")
    if "expected_mean_dn" in truth:
        parts.append(f"centre {truth['expected_mean_dn']:.0f} DN expected (clip {truth.get('clip_level_dn', 0):.0f})")
    build = (truth.get("firmware") or {}).get("build")
    if build and build != "golden":
        parts.append(f"firmware {build}")
    return "twin truth: " + ", ".join(parts)


def run(args: argparse.Namespace) -> int:
    _check(args)
    output = Path(args.output)
    if not output.parent.is_dir():
        raise InputError(f"{output}: folder {output.parent} does not exist")
    from station.station import Station

    with station_config(args) as config, Station.open(config) as station:
        set_scene(station, args)
        settings: dict[str, Any] = {"analog_gain": args.gain}
        if args.focus_m is not None:
            settings["focus_m"] = args.focus_m
        exposure_s = args.exposure_s
        if exposure_s is None:
            exposure_s = metered_exposure_s(station.dut, args.sensor, settings)
        station.dut.configure(args.sensor, exposure_us=max(1, round(exposure_s * 1e6)), **settings)
        meta, payload = station.dut.capture(args.sensor, args.fmt)
    atomic_write_bytes(output, payload)
    if args.fmt == "raw10":
        atomic_write_text(output.with_name(output.name + ".json"), json.dumps(meta, indent=2))
    size = f"{meta.get('width', '?')}x{meta.get('height', '?')}"
    how = "" if args.exposure_s is not None else " metered"
    print(f"{output}: {args.fmt} {size} from sensor {args.sensor} ({len(payload)} bytes), "
          f"exposure {exposure_s * 1e3:.4g} ms{how}, gain {args.gain:g}")
    if isinstance(meta.get("truth"), dict):
        print(truth_summary(meta["truth"]))
    return 0

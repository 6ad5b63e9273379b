"""``station capture``: one frame from a sensor, with chart, pose, lens, light and exposure set first."""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import Any

from station.atomic import atomic_write_bytes, atomic_write_text
from station.cli.common import add_station_options, station_config
from station.errors import ConfigError, InputError

FORMATS = ("dng", "raw10", "preview", "zebra_mask", "peaking_mask")
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]*$")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("capture", help="capture one frame (DNG, RAW10, preview PNG, masks)")
    parser.add_argument("--sensor", choices=("main", "m"), required=True)
    parser.add_argument("--format", choices=FORMATS, default="dng", dest="fmt")
    parser.add_argument("-o", "--output", metavar="FILE", required=True,
                        help="where to write (raw10 also writes FILE.json with the metadata)")
    scene = parser.add_argument_group("scene (set before the capture)")
    scene.add_argument("--chart", metavar="NAME", help="chart on the holder (twin: `station chart list`)")
    scene.add_argument("--distance-mm", type=float, help="camera-to-chart rail distance, mm")
    scene.add_argument("--pan-deg", type=float, help="gimbal pan, degrees")
    scene.add_argument("--tilt-deg", type=float, help="gimbal tilt, degrees")
    scene.add_argument("--focus-deg", type=float, help="M lens focus ring angle, degrees")
    scene.add_argument("--focus-m", type=float, help="main sensor focus distance, m")
    scene.add_argument("--lens", metavar="ID", help="M lens to mount ('none' for the bare sensor)")
    scene.add_argument("--aperture", type=float, metavar="N", help="M lens f-number")
    scene.add_argument("--light-pct", type=float, help="light level, %% of full scale (0 switches it off)")
    scene.add_argument("--cct-k", type=float, help="light colour temperature, K")
    scene.add_argument("--exposure-s", type=float, default=0.01, help="exposure time, s (default 0.01)")
    scene.add_argument("--gain", type=float, default=1.0, help="analog gain (default 1)")
    add_station_options(parser)
    parser.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    for name in ("distance_mm", "pan_deg", "tilt_deg", "focus_deg", "focus_m", "aperture", "light_pct",
                 "cct_k", "exposure_s", "gain"):
        value = getattr(args, name)
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"--{name.replace('_', '-')} {value}: expected a finite number")
    if args.exposure_s <= 0 or args.exposure_s > 30:
        raise ConfigError(f"--exposure-s {args.exposure_s}: allowed 0 < exposure <= 30 s")
    if not 1.0 <= args.gain <= 64.0:
        raise ConfigError(f"--gain {args.gain}: allowed 1..64")
    if args.light_pct is not None and not 0 <= args.light_pct <= 100:
        raise ConfigError(f"--light-pct {args.light_pct}: allowed 0..100")
    for name in ("chart", "lens"):
        value = getattr(args, name)
        if value is not None and not _SLUG_RE.match(value):
            raise ConfigError(f"--{name} {value!r}: expected a lower-case id (letters, digits, '-', '.')")
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
        if args.lens is not None or args.aperture is not None:
            twin.lens_mount(None if args.lens == "none" else args.lens)
    moves = {axis: getattr(args, opt) for axis, opt in (("distance", "distance_mm"), ("pan", "pan_deg"),
                                                        ("tilt", "tilt_deg"), ("focus", "focus_deg"))}
    moves = {axis: value for axis, value in moves.items() if value is not None}
    if moves:
        station.mount.home()
        station.mount.move_to(**moves)
    if args.light_pct is not None:
        if args.cct_k is not None:
            station.light.set_cct_k(args.cct_k)
        station.light.set_level_pct(args.light_pct)
        station.light.set_output(args.light_pct > 0)
        station.light.wait_settled()


def run(args: argparse.Namespace) -> int:
    _check(args)
    output = Path(args.output)
    if not output.parent.is_dir():
        raise InputError(f"{output}: folder {output.parent} does not exist")
    from station.station import Station

    with station_config(args) as config, Station.open(config) as station:
        set_scene(station, args)
        settings: dict[str, Any] = {"exposure_us": max(1, round(args.exposure_s * 1e6)),
                                    "analog_gain": args.gain}
        if args.focus_m is not None:
            settings["focus_m"] = args.focus_m
        station.dut.configure(args.sensor, **settings)
        meta, payload = station.dut.capture(args.sensor, args.fmt)
    atomic_write_bytes(output, payload)
    if args.fmt == "raw10":
        atomic_write_text(output.with_name(output.name + ".json"), json.dumps(meta, indent=2))
    size = f"{meta.get('width', '?')}x{meta.get('height', '?')}"
    print(f"{output}: {args.fmt} {size} from sensor {args.sensor} ({len(payload)} bytes)")
    return 0

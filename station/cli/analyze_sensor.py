"""``station analyze sensor``: EMVA 1288 photon transfer per CFA channel from DNG flat pairs and darks.

``station analyze sensor FILE...``: DNG flat-field frames grouped by their ExposureTime (the first two,
by name, of each exposure make its pair) and two or more dark frames whose file name starts with
``dark``. ``station analyze sensor --descriptor FILE``: an EMVA 1288 descriptor file (mono, channel Y).
``--plot PTC.png`` writes the photon transfer curve.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from calibration.emva1288 import (
    SensorAnalysisError,
    SensorChannelResult,
    analyze_descriptor,
    analyze_pairs,
)
from station.cli.common import analyze_outputs, check_output_folder, emit, write_plot
from station.dng import read_dng
from station.emva_files import load_descriptor, read_image_unchanged
from station.errors import ConfigError, InputError


def register(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "sensor", help="EMVA 1288 per CFA channel: K, read noise, clip level, saturation, LE, DSNU, PRNU",
        description="EMVA 1288 photon transfer from DNG flat pairs (grouped by ExposureTime) and dark frames "
                    "named dark*, or from an EMVA 1288 descriptor file.",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="DNG flat pairs and dark* frames")
    parser.add_argument("--descriptor", metavar="FILE", help="an EMVA 1288 descriptor file (emva1288 package format)")
    analyze_outputs(parser, run, plot="the photon transfer curve plot", plot_metavar="PTC.png")


def is_dark(path: str | Path) -> bool:
    """A dark frame by its file name: it starts with ``dark`` (any case)."""
    return Path(path).name.lower().startswith("dark")


def analyze_dngs(files: list[str]) -> tuple[dict[str, SensorChannelResult], dict[str, Any]]:
    """EMVA 1288 on DNG files; returns the per-channel results and a summary of the inputs."""
    dark_files = sorted(f for f in files if is_dark(f))
    flat_files = sorted(f for f in files if not is_dark(f))
    if len(dark_files) < 2:
        got = f"only {dark_files[0]}" if dark_files else "none"
        raise InputError(f"need two or more dark frames named dark* (got {got}) among {len(files)} files")
    if not flat_files:
        raise InputError("no flat-field frames: every file is named dark*")
    frames = {f: read_dng(f) for f in files}
    first = frames[flat_files[0]]
    shape = first.data.shape
    for name, fr in frames.items():
        if fr.data.shape != shape:
            raise InputError(f"{name}: frame is {fr.data.shape[1]}x{fr.data.shape[0]}, "
                             f"expected {shape[1]}x{shape[0]} like {flat_files[0]}")
        if fr.cfa != first.cfa:
            raise InputError(f"{name}: CFA {fr.cfa}, expected {first.cfa} like {flat_files[0]}")
    groups: dict[float, list[str]] = defaultdict(list)
    for name in flat_files:
        exposure = frames[name].exposure_s
        if exposure is None or not exposure > 0:
            raise InputError(f"{name}: no ExposureTime in the DNG; flats are grouped by exposure time")
        groups[round(float(exposure), 12)].append(name)
    flats = []
    for exposure, names in sorted(groups.items()):
        if len(names) < 2:
            raise InputError(f"{names[0]}: the only flat at {exposure:g} s; EMVA 1288 needs a pair per exposure")
        flats.append((exposure, frames[names[0]].data, frames[names[1]].data))
    if len(flats) < 2:
        raise InputError(f"flats at a single exposure ({flats[0][0]:g} s) in {', '.join(flat_files)}: "
                         "the photon transfer curve needs pairs at two or more exposure times")
    darks = [frames[n].data for n in dark_files]
    try:
        results = analyze_pairs(flats, darks, cfa=first.cfa)
    except SensorAnalysisError as exc:
        raise InputError(f"{flat_files[0]} ...: {exc}") from None
    summary = {"flat_pairs": len(flats), "dark_frames": len(dark_files), "cfa": first.cfa,
               "black_level": first.black_level, "white_level": first.white_level,
               "exposures_s": [f[0] for f in flats]}
    return results, summary


def run(args: argparse.Namespace) -> int:
    if args.descriptor and args.files:
        raise ConfigError("give either DNG files or --descriptor FILE, not both")
    if not args.descriptor and not args.files:
        raise ConfigError("give DNG flat pairs and dark* frames, or --descriptor FILE")
    check_output_folder("--plot", args.plot)
    if args.descriptor:
        path = Path(args.descriptor)
        if not path.is_file():
            raise InputError(f"{path}: no such file (expected an EMVA 1288 descriptor)")
        try:
            results = analyze_descriptor(load_descriptor(path), read_image_unchanged)
        except (SensorAnalysisError, OSError) as exc:
            raise InputError(f"{path}: {exc}") from None
        summary: dict[str, Any] = {"descriptor": str(path)}
    else:
        for name in args.files:
            if not Path(name).is_file():
                raise InputError(f"{name}: no such file (expected a DNG)")
        results, summary = analyze_dngs(args.files)
    from calibration.ptc_plot import plot_ptc

    doc = {"channels": {name: res.to_dict() for name, res in results.items()}, "input": summary}
    write_plot(doc, args.plot, lambda: plot_ptc(results, Path(args.plot).suffix.lower().lstrip(".") or "png"))
    return emit(doc, args.json, _text)


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and not np.isfinite(value)) else format(value, spec)


def _text(doc: dict[str, Any]) -> str:
    rows = [
        ("system gain K", "system_gain_dn_per_e", "DN/e-", ".5f"),
        ("read noise", "read_noise_dn", "DN", ".3f"),
        ("read noise", "read_noise_e", "e-", ".3f"),
        ("clip level", "clip_level_dn", "DN", ".1f"),
        ("saturation mu_y.sat", "mu_y_sat_dn", "DN", ".1f"),
        ("linearity error", "linearity_error_pct", "%", ".3f"),
        ("DSNU", "dsnu_e", "e-", ".3f"),
        ("PRNU", "prnu_pct", "%", ".3f"),
        ("DSNU (highpass)", "dsnu_highpass_e", "e-", ".3f"),
        ("PRNU (highpass)", "prnu_highpass_pct", "%", ".3f"),
    ]
    names = list(doc["channels"])
    head = f"{'EMVA 1288':<22}{'unit':<7}" + "".join(f"{n:>11}" for n in names)
    lines = [head]
    for label, key, unit, spec in rows:
        lines.append(f"{label:<22}{unit:<7}" + "".join(f"{_fmt(doc['channels'][n][key], spec):>11}" for n in names))
    if "plot" in doc:
        lines.append(f"photon transfer curve: {doc['plot']}")
    return "\n".join(lines)

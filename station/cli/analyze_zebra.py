"""``station analyze zebra FILE...``: raw clip levels, T_raw and T_luma from a light sweep (DESIGN 7).

The sweep: one DNG per light step; an 8-bit preview (PNG, JPEG, TIFF) of a step pairs with its DNG by
file stem (``f03.dng`` + ``f03.png``). The light axis: ``--levels`` (one number per DNG, in the order
the DNGs are given), times the DNGs' ExposureTime when it varies; with neither, the DNGs' order on the
command line (steps of increasing light). Prints each channel's clip level, the raw zebra threshold
``T_raw = clip - margin (clip - black)`` on the lowest clip, and the preview luma threshold ``T_luma``
read off the previews (null without previews). A sweep that never reaches clipping is bad input (exit 2).

A photon-transfer set is a sweep too: frames at the same light step (same level and exposure: an EMVA 1288
pair) are averaged into one step, and dark frames (file names starting with ``dark``, as ``analyze
sensor`` takes them) are left out. ``--descriptor FILE`` reads an EMVA 1288 descriptor set (mono, channel
Y): its bright pairs, by photon count, are the sweep; its dark series only give the black level.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from calibration.emva1288 import SensorAnalysisError
from calibration.zebra import (
    DEFAULT_MARGIN,
    ZebraCalibrationError,
    channel_means,
    clip_levels_from_sweep,
    lowest_clip,
    luma_threshold,
    raw_threshold,
)
from station.cli.analyze_sensor import is_dark
from station.cli.common import analyze_outputs, print_json
from station.dng import read_dng
from station.emva_files import load_descriptor, read_image_unchanged
from station.errors import InputError
from station.frame import Frame
from station.imageio import load_image

_PREVIEW_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}


def register(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "zebra", help="raw clip level per channel, raw and luma zebra thresholds from a light sweep",
        description="Zebra calibration from a light sweep: DNGs (one per light step) and, optionally, the "
                    "phone's previews of the same steps paired by file stem (f03.dng + f03.png).",
    )
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help="sweep DNGs (pairs per step are averaged, dark* frames ignored) and 8-bit previews")
    parser.add_argument("--descriptor", metavar="FILE",
                        help="an EMVA 1288 descriptor set instead of files (bright pairs; darks ignored)")
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                        help="T_raw margin below clip, fraction of (clip - black) (default %(default)s)")
    parser.add_argument("--levels", metavar="L1,L2,...",
                        help="light level of each DNG in the order given (e.g. %% of full scale or lux)")
    analyze_outputs(parser, run)


def _levels(text: str | None, n: int) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(f"--levels {text!r}: expected comma-separated numbers, one per DNG") from None
    if len(values) != n or not all(np.isfinite(values)):
        raise InputError(f"--levels {text!r}: expected {n} finite numbers, one per DNG, got {len(values)}")
    return values


def _split(files: list[str]) -> tuple[list[Path], dict[str, Path]]:
    dngs: list[Path] = []
    previews: dict[str, Path] = {}
    for name in files:
        path = Path(name)
        if not path.is_file():
            raise InputError(f"{name}: no such file (expected a DNG or a preview image)")
        suffix = path.suffix.lower()
        if suffix == ".dng":
            dngs.append(path)
        elif suffix in _PREVIEW_SUFFIXES:
            if path.stem in previews:
                raise InputError(f"{name}: a second preview for stem {path.stem!r} (also {previews[path.stem]})")
            previews[path.stem] = path
        else:
            raise InputError(f"{name}: expected a DNG or a preview (PNG, JPEG, TIFF)")
    if not dngs:
        raise InputError("no DNG among the files: the sweep's raw frames are DNGs")
    stems = [p.stem for p in dngs]
    dup = {s for s in stems if stems.count(s) > 1}
    if dup:
        raise InputError(f"several DNGs share the stem {sorted(dup)[0]!r}: previews pair with DNGs by stem")
    orphans = sorted(set(previews) - set(stems))
    if orphans:
        raise InputError(f"{previews[orphans[0]]}: no DNG with the stem {orphans[0]!r} to pair this preview with")
    return dngs, previews


def _preview(path: Path) -> np.ndarray:
    image = load_image(path, linear=True)
    if image.bit_depth != 8 or image.kind == "cfa":
        raise InputError(f"{path}: expected an 8-bit preview (RGB or luma), got {image.bit_depth}-bit {image.kind}")
    return image.data.astype(np.uint8)


def _check_frames(frames: list[tuple[Path, Frame]]) -> None:
    first_path, first = frames[0]
    for path, frame in frames[1:]:
        if frame.data.shape != first.data.shape or frame.cfa != first.cfa or frame.black_level != first.black_level:
            raise InputError(f"{path}: {frame.data.shape[1]}x{frame.data.shape[0]} {frame.cfa} black "
                             f"{frame.black_level}, expected {first.data.shape[1]}x{first.data.shape[0]} "
                             f"{first.cfa} black {first.black_level} like {first_path}")


def _average_steps(axis: list[float], frames: list[tuple[Path, Frame]]) -> tuple[list[float], list[np.ndarray],
                                                                                 list[list[Path]]]:
    """Frames at the same light step (a photon-transfer pair) averaged: (step axis, mean data, their files)."""
    steps: dict[float, list[int]] = {}
    for i, value in enumerate(axis):
        steps.setdefault(value, []).append(i)
    out_axis, out_data, out_files = [], [], []
    for value, members in steps.items():
        data = [frames[i][1].data for i in members]
        out_axis.append(value)
        out_data.append(data[0] if len(data) == 1 else np.mean(data, axis=0, dtype=np.float64))
        out_files.append([frames[i][0] for i in members])
    return out_axis, out_data, out_files


def analyze_descriptor_set(path: str, margin: float = DEFAULT_MARGIN) -> dict[str, Any]:
    """Zebra clip level and T_raw from an EMVA 1288 descriptor set: bright pairs averaged per photon count."""
    if not 0.0 <= margin < 1.0:
        raise InputError(f"--margin {margin}: expected a fraction, 0 <= margin < 1")
    try:
        desc = load_descriptor(path)
        sweep = [(photons, np.mean([read_image_unchanged(p) for p in names], axis=0, dtype=np.float64))
                 for steps in desc.bright["temporal"].values() for photons, names in steps.items()]
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (expected an EMVA 1288 descriptor)") from None
    except (OSError, SensorAnalysisError) as exc:
        raise InputError(f"{path}: {exc}") from None
    if desc.bits is None:
        raise InputError(f"{path}: no 'n bits width height' line; the black and white levels need it")
    darks = desc.dark["temporal"]
    black = 0.0  # the set's offset: its shortest dark pair's mean (the darks give nothing else to the sweep)
    if darks:
        black = float(np.mean([read_image_unchanged(p).mean() for p in darks[min(darks)]]))
    try:
        clips = clip_levels_from_sweep(sweep, None, black)  # type: ignore[arg-type]  # mono: channel Y
        clip = lowest_clip(clips)
        t_raw = raw_threshold(clip, black, margin)
    except ZebraCalibrationError as exc:
        raise InputError(f"{path}: {exc}") from None
    top = {name: max(channel_means(d, None)[name] for _, d in sweep) for name in clips}  # type: ignore[arg-type]
    return {"channels": {name: {"clip_level_dn": clips[name], "max_mean_dn": top[name]} for name in clips},
            "clip_level_dn": clip, "raw_threshold_dn": t_raw, "luma_threshold": None, "margin": margin,
            "black_level": black, "white_level": 2 ** desc.bits - 1, "cfa": None, "frames": 2 * len(sweep),
            "steps": len(sweep), "dark_frames_ignored": sum(len(v) for v in desc.dark["temporal"].values()),
            "previews": 0, "light_axis": "photons (EMVA 1288 descriptor)"}


def analyze(files: list[str], margin: float = DEFAULT_MARGIN, levels_text: str | None = None) -> dict[str, Any]:
    """The zebra document for a sweep of files (InputError on bad input or a sweep that never clips)."""
    if not 0.0 <= margin < 1.0:
        raise InputError(f"--margin {margin}: expected a fraction, 0 <= margin < 1")
    darks = [f for f in files if is_dark(f) and Path(f).suffix.lower() == ".dng"]
    dngs, previews = _split([f for f in files if f not in darks])
    frames = [(p, read_dng(p)) for p in dngs]
    _check_frames(frames)
    first = frames[0][1]
    levels = _levels(levels_text, len(frames))
    exposures = [f.exposure_s for _, f in frames]
    varies = all(e is not None and e > 0 for e in exposures) and len(set(exposures)) > 1
    if levels is not None:
        axis = [lv * (e if varies else 1.0) for lv, e in zip(levels, exposures, strict=True)]
        axis_name = "levels x exposure_s" if varies else "levels"
    elif varies:
        axis, axis_name = [float(e) for e in exposures], "exposure_s"
    else:
        axis, axis_name = [float(i + 1) for i in range(len(frames))], "file order"
    who = f"{dngs[0]} (+{len(dngs) - 1} more)"
    black = float(first.black_level)
    axis, data, members = _average_steps(axis, frames)
    sweep = list(zip(axis, data, strict=True))
    try:
        clips = clip_levels_from_sweep(sweep, first.cfa, black)
        clip = lowest_clip(clips)
        t_raw = raw_threshold(clip, black, margin)
        t_luma = None
        paired = [(previews[p.stem], d) for paths, d in zip(members, data, strict=True) for p in paths[:1]
                  if p.stem in previews]
        if paired:
            t_luma = luma_threshold([_preview(p) for p, _ in paired], [d for _, d in paired], t_raw,
                                    first.cfa, black)
    except ZebraCalibrationError as exc:
        raise InputError(f"{who}: {exc}") from None
    top = {name: max(channel_means(d, first.cfa)[name] for d in data) for name in clips}
    return {
        "channels": {name: {"clip_level_dn": clips[name], "max_mean_dn": top[name]} for name in clips},
        "clip_level_dn": clip, "raw_threshold_dn": t_raw, "luma_threshold": t_luma, "margin": margin,
        "black_level": first.black_level, "white_level": first.white_level, "cfa": first.cfa,
        "frames": len(frames), "steps": len(sweep), "dark_frames_ignored": len(darks), "previews": len(paired),
        "light_axis": axis_name,
    }


def run(args: argparse.Namespace) -> int:
    if args.descriptor and args.files:
        raise InputError("give either FILE... or --descriptor FILE, not both")
    if not args.descriptor and not args.files:
        raise InputError("no input: give the sweep's DNGs (FILE...) or --descriptor FILE")
    doc = analyze_descriptor_set(args.descriptor, args.margin) if args.descriptor else analyze(
        args.files, args.margin, args.levels)
    if args.json:
        print_json(doc)
        return 0
    lines = [f"zebra from {doc['frames']} sweep frames in {doc['steps']} steps ({doc['previews']} previews, "
             f"{doc['dark_frames_ignored']} dark frames ignored), light axis: {doc['light_axis']}"]
    for name, ch in doc["channels"].items():
        clip = "never clipped" if ch["clip_level_dn"] is None else f"{ch['clip_level_dn']:.1f} DN"
        lines.append(f"  {name:<3} clip level {clip:>14}   (highest mean {ch['max_mean_dn']:.1f} DN)")
    lines.append(f"raw zebra threshold T_raw {doc['raw_threshold_dn']} DN (lowest clip {doc['clip_level_dn']:.1f} DN, "
                 f"margin {100 * doc['margin']:g} % of clip - black {doc['black_level']})")
    lines.append("luma zebra threshold T_luma " + ("- (no previews)" if doc["luma_threshold"] is None
                                                    else str(doc["luma_threshold"])))
    print("\n".join(lines))
    return 0

"""``station analyze zebra FILE...``: raw clip levels, T_raw and T_luma from a light sweep (DESIGN 7).

The sweep: one DNG per light step; an 8-bit preview (PNG, JPEG, TIFF) of a step pairs with its DNG by
file stem (``f03.dng`` + ``f03.png``). The light axis: ``--levels`` (one number per DNG, in the order
the DNGs are given), times the DNGs' ExposureTime when it varies; with neither, the DNGs' order on the
command line (steps of increasing light). Prints each channel's clip level, the raw zebra threshold
``T_raw = clip - margin (clip - black)`` on the lowest clip, and the preview luma threshold ``T_luma``
read off the previews (null without previews). A sweep that never reaches clipping is bad input (exit 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from calibration.zebra import (
    DEFAULT_MARGIN,
    ZebraCalibrationError,
    channel_means,
    clip_levels_from_sweep,
    lowest_clip,
    luma_threshold,
    raw_threshold,
)
from station.cli.common import analyze_outputs, print_json
from station.dng import read_dng
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
    parser.add_argument("files", nargs="+", metavar="FILE", help="sweep DNGs and their 8-bit previews")
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


def analyze(files: list[str], margin: float = DEFAULT_MARGIN, levels_text: str | None = None) -> dict[str, Any]:
    """The zebra document for a sweep of files (InputError on bad input or a sweep that never clips)."""
    if not 0.0 <= margin < 1.0:
        raise InputError(f"--margin {margin}: expected a fraction, 0 <= margin < 1")
    dngs, previews = _split(files)
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
    sweep = [(a, f.data) for a, (_, f) in zip(axis, frames, strict=True)]
    try:
        clips = clip_levels_from_sweep(sweep, first.cfa, black)
        clip = lowest_clip(clips)
        t_raw = raw_threshold(clip, black, margin)
        t_luma = None
        paired = [(previews[p.stem], f) for p, f in frames if p.stem in previews]
        if paired:
            t_luma = luma_threshold([_preview(p) for p, _ in paired], [f.data for _, f in paired], t_raw,
                                    first.cfa, black)
    except ZebraCalibrationError as exc:
        raise InputError(f"{who}: {exc}") from None
    top = {name: max(channel_means(f.data, first.cfa)[name] for _, f in frames) for name in clips}
    return {
        "channels": {name: {"clip_level_dn": clips[name], "max_mean_dn": top[name]} for name in clips},
        "clip_level_dn": clip, "raw_threshold_dn": t_raw, "luma_threshold": t_luma, "margin": margin,
        "black_level": first.black_level, "white_level": first.white_level, "cfa": first.cfa,
        "frames": len(frames), "previews": len(paired), "light_axis": axis_name,
    }


def run(args: argparse.Namespace) -> int:
    doc = analyze(args.files, args.margin, args.levels)
    if args.json:
        print_json(doc)
        return 0
    lines = [f"zebra from {doc['frames']} sweep frames ({doc['previews']} previews), light axis: {doc['light_axis']}"]
    for name, ch in doc["channels"].items():
        clip = "never clipped" if ch["clip_level_dn"] is None else f"{ch['clip_level_dn']:.1f} DN"
        lines.append(f"  {name:<3} clip level {clip:>14}   (highest mean {ch['max_mean_dn']:.1f} DN)")
    lines.append(f"raw zebra threshold T_raw {doc['raw_threshold_dn']} DN (lowest clip {doc['clip_level_dn']:.1f} DN, "
                 f"margin {100 * doc['margin']:g} % of clip - black {doc['black_level']})")
    lines.append("luma zebra threshold T_luma " + ("- (no previews)" if doc["luma_threshold"] is None
                                                    else str(doc["luma_threshold"])))
    print("\n".join(lines))
    return 0

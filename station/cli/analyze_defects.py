"""``station analyze defects FILE...``: defect pixels (EMVA 1288 defect-pixel characterization) from DNGs.

Dark frames are the files named ``dark*`` (as ``analyze sensor`` takes them), grouped by ExposureTime: the
longest exposure's darks give hot and warm pixels; the darks at the flats' exposure (if any; else the
DNG's black level) are the flats' offset. Every other DNG is a flat field, all at one exposure. Prints the
counts per kind, the clusters and the Android ``hotPixelMap`` (``--json``: one object).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import Any

import numpy as np

from calibration.defects import DefectThresholds, find_defects
from station.cli.analyze_sensor import is_dark
from station.cli.common import emit
from station.dng import read_dng
from station.errors import InputError


def register(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "defects", help="defect pixels: hot, warm, dead, weak, stuck, clusters (EMVA 1288)",
        description="Defect pixels from DNG dark frames (named dark*, the longest exposure for hot/warm) and "
                    "flat fields (the other DNGs, one exposure).")
    parser.add_argument("files", nargs="+", metavar="FILE", help="DNG dark* frames and flat fields")
    defaults = DefectThresholds()
    parser.add_argument("--warm", type=float, default=defaults.warm_dn_per_s, help="warm from this dark DN/s")
    parser.add_argument("--hot", type=float, default=defaults.hot_dn_per_s, help="hot from this dark DN/s")
    parser.add_argument("--weak", type=float, default=defaults.weak_ratio, help="weak below this response")
    parser.add_argument("--dead", type=float, default=defaults.dead_ratio, help="dead below this response")
    parser.add_argument("--max-cluster", type=int, default=defaults.max_cluster_px,
                        help="largest acceptable cluster, pixels (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def analyze(files: list[str], thresholds: DefectThresholds) -> dict[str, Any]:
    """The defect document for the files (InputError naming the file on bad input)."""
    frames = {name: read_dng(name) for name in files}
    flats = [n for n in files if not is_dark(n)]
    darks: dict[float, list[str]] = defaultdict(list)
    for name in files:
        if is_dark(name):
            exposure = frames[name].exposure_s
            if not exposure:
                raise InputError(f"{name}: no ExposureTime; dark frames are grouped by exposure")
            darks[round(exposure, 9)].append(name)
    if not darks or not flats:
        raise InputError("need dark frames named dark* (a long exposure) and flat fields (the other DNGs)")
    first = frames[flats[0]]
    for name, frame in frames.items():
        if frame.data.shape != first.data.shape or frame.cfa != first.cfa:
            raise InputError(f"{name}: {frame.data.shape[1]}x{frame.data.shape[0]} {frame.cfa}, expected "
                             f"{first.data.shape[1]}x{first.data.shape[0]} {first.cfa} like {flats[0]}")
    flat_exposures = {round(frames[n].exposure_s or 0.0, 9) for n in flats}
    if len(flat_exposures) != 1:
        raise InputError(f"flat fields at {len(flat_exposures)} exposures ({', '.join(flats)}); expected one")
    long_s = max(darks)
    short = darks.get(next(iter(flat_exposures)))
    dark_short = ([frames[n].data for n in short] if short else
                  [np.full(first.data.shape, float(first.black_level))])
    try:
        found = find_defects([frames[n].data for n in darks[long_s]], long_s, [frames[n].data for n in flats],
                             dark_short, first.cfa, thresholds)
    except ValueError as exc:
        raise InputError(f"{flats[0]} ...: {exc}") from None
    return found.to_dict() | {"hot_pixel_map": found.hot_pixel_map(), "dark_exposure_s": long_s,
                              "flat_frames": len(flats), "dark_frames": sum(len(v) for v in darks.values()),
                              "cfa": first.cfa, "width": int(first.data.shape[1]), "height": int(first.data.shape[0])}


def _text(doc: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {v}" for k, v in doc["by_kind"].items())
    clusters = doc["clusters"]
    return "\n".join([
        f"defect pixels of a {doc['width']}x{doc['height']} {doc['cfa']} sensor: {doc['count']} ({kinds})",
        f"clusters: {clusters['count']}, largest {clusters['largest_px']} px, {clusters['over_limit']} over the "
        f"limit of {doc['thresholds']['max_cluster_px']} px",
        f"from {doc['flat_frames']} flats and {doc['dark_frames']} darks (hot/warm at {doc['dark_exposure_s']:g} s)"])


def run(args: argparse.Namespace) -> int:
    if args.max_cluster < 1 or not (0 < args.dead < args.weak <= 1) or not (0 < args.warm < args.hot):
        raise InputError("thresholds: expected 0 < --dead < --weak <= 1, 0 < --warm < --hot, --max-cluster >= 1")
    thresholds = DefectThresholds(args.warm, args.hot, args.weak, args.dead, max_cluster_px=args.max_cluster)
    return emit(analyze(args.files, thresholds), args.json, _text)

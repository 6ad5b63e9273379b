"""``station analyze peaking --sweep DIR``: the focus-peaking threshold from a focus sweep (DESIGN 7).

``DIR/sweep.json``::

    {"frames": [{"file": "a.png", "focus": 1.5}, ...], "flats": ["f.png", ...], "coc_px": 2.0}

``frames``: 8-bit preview-luma images (or RGB previews, taken to their luma) of a binary chart at mount
focus positions (any unit); ``flats``: flat fields at the same gain; ``coc_px``: the acceptable circle of
confusion in preview pixels (default 2). File names are relative to DIR and must stay inside it. The
blur of each frame is measured from the images (``calibration.peaking``). A sweep that never comes
into focus, or one where no threshold meets the limits, is bad input (exit 2) and gives no threshold.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from calibration.peaking import DEFAULT_COC_PX, PeakingCalibrationError, calibrate_peaking
from calibration.preview import preview_luma
from station.cli.common import analyze_outputs, print_json
from station.errors import InputError
from station.imageio import load_image

SWEEP_FILE = "sweep.json"
_TOP_KEYS = ("frames", "flats", "coc_px")
_FRAME_KEYS = ("file", "focus")


def register(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "peaking", help="focus-peaking threshold from a focus sweep and flat fields (DIR/sweep.json)",
        description="Focus-peaking threshold T_peak from a focus sweep of a binary chart and flat fields, "
                    "described by DIR/sweep.json: {\"frames\": [{\"file\", \"focus\"}...], \"flats\": [...], "
                    "\"coc_px\": 2.0}.",
    )
    parser.add_argument("--sweep", required=True, metavar="DIR", help="folder holding sweep.json and its images")
    analyze_outputs(parser, run)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _safe_file(folder: Path, name: Any, where: str, spec: Path) -> Path:
    """``name`` as a file inside ``folder``: relative, no ``..``, existing; InputError otherwise."""
    if not isinstance(name, str) or not name:
        raise InputError(f"{spec}: {where}: expected a file name (string), got {name!r}")
    if (PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive
            or ".." in PurePosixPath(name.replace("\\", "/")).parts):
        raise InputError(f"{spec}: {where}: {name!r} must be a relative path inside {folder} (no '..', not absolute)")
    path = folder / name
    try:
        inside = path.resolve().is_relative_to(folder.resolve())
    except OSError:
        inside = False
    if not inside:
        raise InputError(f"{spec}: {where}: {name!r} leads outside {folder}")
    if not path.is_file():
        raise InputError(f"{spec}: {where}: {name!r}: no such file in {folder}")
    return path


def _check_keys(prefix: str, obj: dict[str, Any], allowed: tuple[str, ...], required: tuple[str, ...]) -> None:
    """Every key of ``obj`` allowed, every required key present; else InputError naming the first that is not."""
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise InputError(f"{prefix}unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}")
    for key in required:
        if key not in obj:
            raise InputError(f"{prefix}missing key {key!r}")


def load_sweep(folder: str | Path) -> dict[str, Any]:
    """``DIR/sweep.json`` checked strictly: {frames: [(name, focus, path)], flats: [(name, path)], coc_px}."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--sweep {folder}: no such folder (expected a folder with {SWEEP_FILE})")
    spec = folder / SWEEP_FILE
    if not spec.is_file():
        raise InputError(f"{spec}: no such file (the sweep's description)")
    try:
        doc = json.loads(spec.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{spec}: not valid JSON ({str(exc).splitlines()[0][:100]})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{spec}: expected a JSON object with keys frames, flats, coc_px")
    _check_keys(f"{spec}: ", doc, _TOP_KEYS, required=("frames", "flats"))
    for key in ("frames", "flats"):
        if not isinstance(doc[key], list) or not doc[key]:
            raise InputError(f"{spec}: {key}: expected a non-empty list")
    coc = doc.get("coc_px", DEFAULT_COC_PX)
    if not _is_number(coc) or not coc > 0:
        raise InputError(f"{spec}: coc_px: expected a positive number of preview pixels, got {coc!r}")
    frames = []
    for i, entry in enumerate(doc["frames"]):
        where = f"frames[{i}]"
        if not isinstance(entry, dict):
            raise InputError(f"{spec}: {where}: expected an object {{\"file\": ..., \"focus\": ...}}")
        _check_keys(f"{spec}: {where}: ", entry, _FRAME_KEYS, required=_FRAME_KEYS)
        if not _is_number(entry["focus"]):
            raise InputError(f"{spec}: {where}.focus: expected a number, got {entry['focus']!r}")
        frames.append((entry["file"], float(entry["focus"]), _safe_file(folder, entry["file"], where, spec)))
    if len(frames) < 2:
        raise InputError(f"{spec}: frames: a focus sweep needs two or more frames")
    flats = [(name, _safe_file(folder, name, f"flats[{i}]", spec)) for i, name in enumerate(doc["flats"])]
    return {"spec": spec, "frames": frames, "flats": flats, "coc_px": float(coc)}


def _luma(path: Path) -> np.ndarray:
    image = load_image(path, linear=True)
    if image.bit_depth != 8 or image.kind == "cfa":
        raise InputError(f"{path}: expected an 8-bit preview luma image, got {image.bit_depth}-bit {image.kind}")
    return preview_luma(image.data.astype(np.uint8))


def analyze(folder: str | Path) -> dict[str, Any]:
    """The peaking document for ``DIR`` (InputError on a bad sweep description or a sweep with no threshold)."""
    sweep = load_sweep(folder)
    frames = [(focus, _luma(path)) for _, focus, path in sweep["frames"]]
    flats = [_luma(path) for _, path in sweep["flats"]]
    try:
        result = calibrate_peaking(frames, flats, coc_px=sweep["coc_px"])
    except PeakingCalibrationError as exc:
        raise InputError(f"{sweep['spec']}: {exc}") from None
    except ValueError as exc:  # frames of different sizes and the like
        raise InputError(f"{sweep['spec']}: {exc}") from None
    per_frame = result.to_dict()["frames"]
    return {
        "threshold": result.threshold, "best_focus": result.best_focus, "in_focus": list(result.in_focus),
        "frames": [{"file": name, **row} for (name, _, _), row in zip(sweep["frames"], per_frame, strict=True)],
        "flat_rate": result.flat_rate, "coc_px": result.coc_px, "feasible": list(result.feasible),
        "edge_pixels": result.edge_pixels,
    }


def run(args: argparse.Namespace) -> int:
    doc = analyze(args.sweep)
    if args.json:
        print_json(doc)
        return 0
    lines = [f"peaking threshold T_peak {doc['threshold']} (thresholds {doc['feasible'][0]}..{doc['feasible'][1]} "
             f"meet all limits); best focus {doc['best_focus']:g}, in focus {doc['in_focus'][0]:g}.."
             f"{doc['in_focus'][1]:g} (blur <= {doc['coc_px']:g} px)",
             f"flat fields: {100 * doc['flat_rate']:.3f} % of pixels flagged (limit 0.1 %)",
             f"{'file':<24}{'focus':>10}{'blur px':>9}{'state':>12}{'edges flagged':>15}"]
    for row in doc["frames"]:
        state = "in focus" if row["in_focus"] else "beyond 2DoF" if row["beyond_2dof"] else "-"
        lines.append(f"{row['file']:<24}{row['focus']:>10g}{row['blur_px']:>9.2f}{state:>12}"
                     f"{100 * row['coverage']:>14.1f}%")
    print("\n".join(lines))
    return 0

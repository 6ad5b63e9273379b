"""``station analyze color FILE``: white balance gains, a 3x3 CCM and CIEDE2000 from a ColorChecker capture.

The 24 patches are found by the station's chart detector (``targets.colorchecker``: the ColorChecker
with the station's ArUco fiducials, as printed by ``station chart colorchecker`` and rendered by the
twin). A chart without those fiducials (an X-Rite ColorChecker) is measured with
``--patches X,Y,W,H``: the box, in the file's pixels, from the outer top-left corner of patch 1
(dark skin) to the outer bottom-right corner of patch 24 (black); each patch is read in the central
half of its cell. A DNG is read per 2x2 CFA quad (R, mean G, B; black level subtracted), no demosaic.
``--plot FILE.png`` writes the patches: reference, before and after.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from calibration.color import (
    ColorError,
    calibrate_color,
    cfa_to_rgb,
    grid_rois,
    patch_means,
    plausibility_problems,
)
from station.cli.common import analyze_outputs, check_output_folder, emit, write_plot
from station.errors import InputError
from station.imageio import load_image

#: A patch whose brightest sample reaches this fraction of the clip level counts as clipped.
CLIP_FRACTION = 0.995


def register(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "color", help="white balance, 3x3 colour matrix and CIEDE2000 from a ColorChecker capture",
        description="White balance gains (G = 1), a 3x3 colour correction matrix (rows sum to 1) and "
                    "CIEDE2000 before/after from a ColorChecker 24 capture (DNG or image).",
    )
    parser.add_argument("file", metavar="FILE", help="a ColorChecker capture (DNG, PNG, TIFF, JPEG)")
    parser.add_argument("--patches", metavar="X,Y,W,H",
                        help="box spanning the 4x6 patches (outer corners of patches 1 and 24), file pixels; "
                             "for a chart without the station's fiducials")
    parser.add_argument("--free-white", action="store_true",
                        help="plain 9-parameter least squares (rows of the matrix need not sum to 1)")
    analyze_outputs(parser, run, plot="the patch comparison plot", linear=True)


def parse_box(text: str) -> tuple[float, float, float, float]:
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--patches {text!r}: expected X,Y,W,H in pixels, e.g. 660,568,644,414") from None
    if not (w > 0 and h > 0 and x >= 0 and y >= 0):
        raise InputError(f"--patches {text!r}: the box needs x, y >= 0 and a positive width and height")
    return x, y, w, h


def _rois_from_detector(image: np.ndarray, path: str) -> list[tuple[int, int, int, int]]:
    from targets.base import ChartNotFound
    from targets.colorchecker import ColorCheckerChart

    try:
        detection = ColorCheckerChart().detect(image)
    except ChartNotFound as exc:
        raise InputError(f"{path}: no ColorChecker found ({exc.reason}); for a chart without the station's "
                         "fiducials give --patches X,Y,W,H") from None
    boxes: dict[int, tuple[int, int, int, int]] = {}
    for roi in detection.rois:
        boxes[int(roi.extra.get("index", len(boxes)))] = tuple(int(v) for v in roi.box)  # type: ignore[assignment]
    if len(boxes) != 24:
        raise InputError(f"{path}: ColorChecker found but only {len(boxes)} of its 24 patches "
                         "lie inside the image")
    return [boxes[i] for i in range(24)]


def analyze(path: str, *, patches: str | None = None, linear: bool = False,
            preserve_white: bool = True) -> dict[str, Any]:
    """The colour document for one capture (InputError on bad input); ``result`` holds the ColorResult."""
    im = load_image(path, linear=linear)
    if im.kind == "gray":
        raise InputError(f"{path}: a grayscale image has no colour to calibrate (expected RGB or a CFA DNG)")
    if im.kind == "cfa":
        if not im.cfa:
            raise InputError(f"{path}: a CFA image without its CFA pattern")
        rgb = cfa_to_rgb(im.data - np.float32(im.black_level), im.cfa)
        scale = 0.5  # file pixels -> quad pixels
    else:
        rgb = im.data - np.float32(im.black_level) if im.black_level else im.data
        scale = 1.0
    clip = None if (im.kind != "cfa" and im.bit_depth >= 32) else float(im.white_level - im.black_level)
    if patches:
        x, y, w, h = parse_box(patches)
        try:
            rois = grid_rois((x * scale, y * scale, w * scale, h * scale))
        except ColorError as exc:
            raise InputError(f"{path}: --patches {patches}: {exc}") from None
        source = "--patches"
    else:
        rois = _rois_from_detector(rgb, path)
        source = "detector"
    try:
        means, maxima = patch_means(rgb, rois)
    except ColorError as exc:
        raise InputError(f"{path}: {exc}") from None
    clipped = (maxima >= CLIP_FRACTION * clip).any(axis=1) if clip is not None else None
    try:
        result = calibrate_color(means, clipped=clipped, preserve_white=preserve_white)
    except ColorError as exc:
        raise InputError(f"{path}: {exc}") from None
    problems = plausibility_problems(result)
    if problems:
        raise InputError(f"{path}: the patches ({source}) are not a ColorChecker 24: {'; '.join(problems)}")
    doc: dict[str, Any] = {"file": str(path), "kind": im.kind, "patches_from": source,
                           "rois_px": [[round(v / scale) for v in r] for r in rois]}
    doc.update(result.to_dict())
    return {"doc": doc, "result": result}


def run(args: argparse.Namespace) -> int:
    check_output_folder("--plot", args.plot)
    out = analyze(args.file, patches=args.patches, linear=args.linear, preserve_white=not args.free_white)
    doc = out["doc"]
    from calibration.plots import color_png

    write_plot(doc, args.plot, lambda: color_png(out["result"]))
    return emit(doc, args.json, _text)


def _text(doc: dict[str, Any]) -> str:
    g = doc["wb_gains"]
    de = doc["delta_e2000"]
    lines = [f"{doc['file']}: ColorChecker 24 ({doc['patches_from']})",
             f"white balance gains R {g[0]:.4f}  G {g[1]:.4f}  B {g[2]:.4f}; "
             f"exposure scale {doc['exposure_scale']:.4g}",
             "colour correction matrix (reference = M @ balanced camera RGB"
             + (", rows sum to 1):" if doc["ccm_rows_sum_to_one"] else "):")]
    lines += ["  " + "  ".join(f"{v:+.4f}" for v in row) for row in doc["ccm"]]
    lines.append(f"CIEDE2000 before: mean {de['before']['mean']:.2f}  max {de['before']['max']:.2f};  "
                 f"after: mean {de['after']['mean']:.2f}  max {de['after']['max']:.2f}")
    unused = [p["name"] for p in doc["patches"] if not p["used"]]
    if unused:
        lines.append(f"left out of the fit (clipped): {', '.join(unused)}")
    if "plot" in doc:
        lines.append(f"plot: {doc['plot']}")
    return "\n".join(lines)

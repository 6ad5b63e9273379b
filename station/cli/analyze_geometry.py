"""``station analyze geometry FILE... --board SPEC``: camera intrinsics and distortion from board views.

``--board chessboard:COLSxROWS:SQUARE_MM`` (inner corners) or
``--board charuco:SXxSY:SQUARE_MM:MARKER_MM[:DICT][:legacy]`` (squares). Prints the OpenCV model
(K, [k1, k2, p1, p2, k3]), the RMS reprojection error and each view's error; views without a board
or that disagree with the others are listed as unused with the reason.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from calibration.cfa import BAYER_TO_BGR
from calibration.geometry import ChessboardSpec, calibrate_images
from station.cli.common import analyze_outputs, emit
from station.errors import InputError
from station.imageio import LoadedImage, load_image
from targets.charuco import CharucoSpec, parse_board_spec

_CHESS_RE = re.compile(r"^chessboard:(?P<cols>\d+)x(?P<rows>\d+):(?P<sq>[0-9.eE+-]+)\Z")


def register(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "geometry", help="intrinsics and distortion (OpenCV model) from chessboard or ChArUco views",
        description="Calibrate a camera from images of a planar board: K, [k1, k2, p1, p2, k3], RMS, per view.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="images of the board (PNG, JPEG, TIFF, DNG)")
    parser.add_argument("--board", required=True, metavar="SPEC",
                        help="chessboard:COLSxROWS:SQUARE_MM (inner corners) or "
                             "charuco:SXxSY:SQUARE_MM:MARKER_MM:DICT (squares), e.g. charuco:5x7:40:20:DICT_6X6_250")
    parser.add_argument("--fix-aspect", action="store_true", help="keep fx = fy")
    parser.add_argument("--no-reject", action="store_true", help="keep views that disagree with the others")
    parser.add_argument("--refine", choices=("saddle", "subpix", "opencv"), default="saddle",
                        help="corner refinement: saddle (default), subpix, or opencv (plain OpenCV detection)")
    analyze_outputs(parser, run)


def parse_board(text: str) -> ChessboardSpec | CharucoSpec:
    """A ``--board`` spec -> its board; InputError (one line) when it does not parse."""
    spec = text.strip()
    if spec.lower().startswith("chessboard:"):
        m = _CHESS_RE.match(spec)
        if not m:
            raise InputError(f"--board {text!r}: expected chessboard:COLSxROWS:SQUARE_MM (inner corners), "
                             "e.g. chessboard:9x6:25")
        try:
            return ChessboardSpec(int(m["cols"]), int(m["rows"]), float(m["sq"]))
        except ValueError as exc:
            raise InputError(f"--board {text!r}: {exc}") from None
    if spec.lower().startswith("charuco:"):
        try:
            return parse_board_spec(spec)
        except ValueError as exc:
            raise InputError(f"--board: {exc}") from None
    raise InputError(f"--board {text!r}: expected chessboard:COLSxROWS:SQUARE_MM or "
                     "charuco:SXxSY:SQUARE_MM:MARKER_MM:DICT")


def to_gray(image: LoadedImage) -> np.ndarray:
    """A float32 gray image for detection: RGB averaged with Rec. 709 weights; a CFA mosaic (DNG) as the
    green channel of OpenCV's bilinear demosaic (black removed, any of the four Bayer orders).

    Green only, not a luma of R, G and B: lateral chromatic aberration magnifies the R and B images about
    the optical axis, so a luma is a blend of three slightly different cameras; the G image is one camera
    (on twin views with +5e-4 / -4e-4 CA the model gap to the truth was 0.37 px from the luma, 0.06 px
    from green). The camera model calibrated is the green channel's.
    """
    data = image.data
    if image.kind == "rgb":
        return (data @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)).astype(np.float32)
    if image.kind == "cfa":
        return green_of_mosaic(data, image.cfa or "RGGB", image.black_level, image.white_level)
    return data.astype(np.float32, copy=False)


def green_of_mosaic(mosaic: np.ndarray, cfa: str, black_level: float, white_level: float) -> np.ndarray:
    """The G channel (float32, 0..65535) of OpenCV's bilinear demosaic of a Bayer ``mosaic`` in DN whose
    top-left 2x2 pattern is ``cfa`` (RGGB, BGGR, GRBG or GBRG)."""
    code = BAYER_TO_BGR.get(cfa.upper())
    if code is None:
        raise InputError(f"CFA pattern {cfa!r}: expected one of {', '.join(BAYER_TO_BGR)}")
    scale = 65535.0 / max(float(white_level) - float(black_level), 1.0)
    data = np.asarray(mosaic, dtype=np.float32)
    dn = np.clip((data - np.float32(black_level)) * np.float32(scale), 0, 65535).astype(np.uint16)
    return cv2.cvtColor(dn, code)[:, :, 1].astype(np.float32)


def analyze(files: list[str], board: ChessboardSpec | CharucoSpec, *, fix_aspect: bool = False,
            reject: bool = True, method: str = "saddle") -> dict[str, Any]:
    """Detect, calibrate (and re-refine from the model once) with ``calibrate_images``; the JSON document."""
    grays = ((name, to_gray(load_image(name, linear=True))) for name in files)
    try:
        result = calibrate_images(grays, board, fix_aspect=fix_aspect, reject=reject, method=method).result
    except ValueError as exc:
        raise InputError(f"board {board.to_text()} in {', '.join(files)}: {exc}") from None
    reports = {v.name: v for v in result.views}
    out_views: list[dict[str, Any]] = []
    for name in files:
        if name in reports:
            rep = reports[name]
            entry: dict[str, Any] = {"file": name, "used": rep.used, "error_px": rep.error_px,
                                     "n_points": rep.n_points}
            if rep.reason:
                entry["reason"] = rep.reason
        else:
            entry = {"file": name, "used": False, "error_px": None, "n_points": 0, "reason": "no board found"}
        out_views.append(entry)
    doc = result.to_dict()
    doc["views"] = out_views
    doc["board"] = board.to_text()
    doc["fix_aspect"] = bool(fix_aspect)
    doc["refine"] = method
    return doc


def run(args: argparse.Namespace) -> int:
    board = parse_board(args.board)
    for name in args.files:
        if not Path(name).is_file():
            raise InputError(f"{name}: no such file (expected an image of the board)")
    doc = analyze(args.files, board, fix_aspect=args.fix_aspect, reject=not args.no_reject, method=args.refine)
    return emit(doc, args.json, _text)


def _text(doc: dict[str, Any]) -> str:
    K = doc["camera_matrix"]
    k1, k2, p1, p2, k3 = doc["dist_coeffs"]
    lines = [
        f"board {doc['board']}, image {doc['image_size'][0]}x{doc['image_size'][1]}",
        f"fx {K[0][0]:.3f}  fy {K[1][1]:.3f}  cx {K[0][2]:.3f}  cy {K[1][2]:.3f}  (px)",
        f"k1 {k1:.6g}  k2 {k2:.6g}  p1 {p1:.6g}  p2 {p2:.6g}  k3 {k3:.6g}",
        f"RMS reprojection error {doc['rms_px']:.4f} px",
    ]
    used = sum(v["used"] for v in doc["views"])
    lines.append(f"views: {used} used of {len(doc['views'])}")
    for v in doc["views"]:
        err = "-" if v["error_px"] is None else f"{v['error_px']:.4f} px"
        state = "used" if v["used"] else f"not used: {v.get('reason', '')}"
        lines.append(f"  {v['file']}: {err}, {v['n_points']} points, {state}")
    return "\n".join(lines)

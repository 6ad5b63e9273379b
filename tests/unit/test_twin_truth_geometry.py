"""Camera geometry from twin ChArUco views (``calibration.geometry``), against the twin's true camera model.

Nine raw renders of a 48 x 36-square ChArUco board 1 m from an Elmarit-M 28 f/2.8 at f/16 (the catalog's
strongest M-lens distortion, k1 = -0.06), the camera panned and tilted to put the board across the whole
field (``twin_scenes.CALIBRATION_POSES``). Each raw CFA frame becomes the gray image ``station analyze geometry``
makes of a DNG (``station.cli.analyze_geometry.to_gray``: black removed, OpenCV's bilinear Bayer demosaic, its G
channel), and both methods below work on that same image. The true camera is the G image's; R and B are it
magnified about the principal point by the lens's lateral CA (+5e-4 and -4e-4 here), so a luma of the three
(what ``to_gray`` made before, ``COLOR_BayerBG2GRAY``) is a blend of three cameras: there the station's gap
was 0.37 px against OpenCV's 0.72 px; on G it is 0.06 against 0.30.

Compared: plain OpenCV (CharucoDetector's corners, ``cv2.calibrateCamera`` with default flags, every view)
and the station (saddle-point corners, one round of re-refinement from the model, outlier rejection), each
against the truth (``truth["intrinsics"]["camera_matrix"]``, ``truth["distortion_opencv"]``) with
``model_gap_px``: the largest distance anywhere in the frame between where the two models put a ray, raw
and after the best common rotation (a principal-point shift and a turn of every pose look alike to views
of a plane; the aligned gap is the part the views can observe).
"""

from __future__ import annotations

import numpy as np
import pytest

from calibration.geometry import calibrate_images, model_gap_px
from station.cli.analyze_geometry import to_gray
from station.imageio import LoadedImage
from targets.charuco import parse_board_spec
from tests.unit.twin_scenes import charuco_views

LENS, APERTURE = "elmarit-m-28-f2.8", 16.0


def station_gray(name: str, raw: np.ndarray, truth: dict) -> np.ndarray:
    """The gray image the station's CLI detects the board in, from a raw RGGB frame as a DNG loads it."""
    image = LoadedImage(raw.astype(np.float32), "cfa", f"{name}.dng", black_level=float(truth["black_level"]),
                        white_level=float(truth["white_level"]), bit_depth=10, cfa="RGGB")
    return to_gray(image)


@pytest.fixture(scope="module")
def gaps() -> dict[str, dict[str, float]]:
    views, board = charuco_views(LENS, APERTURE)
    images = [(name, station_gray(name, raw, truth)) for name, raw, truth in views]
    truth = views[0][2]
    k_true = np.array(truth["intrinsics"]["camera_matrix"])
    d_true = np.array(truth["distortion_opencv"])
    size = (truth["width"], truth["height"])
    spec = parse_board_spec(board)
    out: dict[str, dict[str, float]] = {}
    for name, kwargs in (("opencv", {"method": "opencv", "reject": False}), ("station", {})):
        result = calibrate_images(images, spec, **kwargs).result
        k, d = result.camera_matrix, result.dist_coeffs
        out[name] = {"gap_px": model_gap_px(k_true, d_true, k, d, size),
                     "aligned_gap_px": model_gap_px(k_true, d_true, k, d, size, align_rotation=True),
                     "rms_px": result.rms_px, "fx": float(k[0, 0]), "fy": float(k[1, 1]), "views_used": sum(
                         v.used for v in result.views), "cx": float(k[0, 2]), "cy": float(k[1, 2])}
    out["truth"] = {"fx": float(k_true[0, 0]), "fy": float(k_true[1, 1]), "cx": float(k_true[0, 2]),
                    "cy": float(k_true[1, 2]), "views": len(views)}
    print(f"\ntwin ChArUco, {LENS} f/{APERTURE:g}, {len(views)} views; truth fx {k_true[0, 0]:.2f} "
          f"cx {k_true[0, 2]:.2f} cy {k_true[1, 2]:.2f}")
    for name in ("opencv", "station"):
        g = out[name]
        print(f"  {name:8s}: model gap {g['gap_px']:.3f} px, after rotation {g['aligned_gap_px']:.3f} px, "
              f"RMS {g['rms_px']:.3f} px, fx {g['fx']:.2f} cx {g['cx']:.2f} cy {g['cy']:.2f}, "
              f"{g['views_used']} views used")
    return out


def test_station_model_gap_is_at_most_half_of_plain_opencv(gaps):
    """Issue 4: the largest gap to the true model, anywhere in the frame, at most half plain OpenCV's. Once the
    two models' rotation is aligned out both gaps are a few hundredths of a pixel, and on one noise realisation
    they can come within a factor 2 of each other (seeds 11-13 of the twin's noise: 0.022/0.033, 0.012/0.118,
    0.020/0.090 px): there the station must still be the better of the two."""
    assert gaps["station"]["gap_px"] <= 0.5 * gaps["opencv"]["gap_px"]
    assert gaps["station"]["aligned_gap_px"] <= gaps["opencv"]["aligned_gap_px"]


def test_station_model_gap_is_under_a_tenth_of_a_pixel(gaps):
    """The aim of issue 4."""
    assert gaps["station"]["gap_px"] < 0.1
    assert gaps["station"]["aligned_gap_px"] < 0.1


def test_station_uses_every_view_and_recovers_the_focal_length(gaps):
    station, truth = gaps["station"], gaps["truth"]
    assert station["views_used"] == truth["views"]  # the renders agree: nothing to reject
    assert station["fx"] == pytest.approx(truth["fx"], rel=1e-4)
    assert station["fy"] == pytest.approx(truth["fy"], rel=1e-4)
    assert station["rms_px"] < 0.05

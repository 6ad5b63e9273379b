"""Zhang's calibration as ``cv2.calibrateCamera`` implements it, with views that disagree with the others rejected
(one at a time, with a reason) and the model re-fitted."""

from __future__ import annotations

import cv2
import numpy as np

from calibration.geometry.views import GeometryResult, ViewPoints, ViewReport

#: Fewest points a view needs to be used (a homography needs 4; 6 keep the pose well conditioned).
MIN_POINTS_PER_VIEW = 6
#: A view is an outlier when its RMS error is above this many times the median of the views...
OUTLIER_FACTOR = 3.0
#: ... and above this floor (px), so that a set of excellent views does not reject a merely good one.
OUTLIER_FLOOR_PX = 0.3
#: Fewest views kept when rejecting outliers.
MIN_VIEWS = 3


def _flags(fix_aspect: bool, extra: int) -> int:
    return (cv2.CALIB_FIX_ASPECT_RATIO if fix_aspect else 0) | extra


def _fit(views: list[ViewPoints], image_size: tuple[int, int], fix_aspect: bool, extra_flags: int,
         camera_matrix: np.ndarray | None) -> tuple[float, np.ndarray, np.ndarray, list, list, np.ndarray]:
    obj = [v.object_points.astype(np.float32) for v in views]
    img = [v.image_points.astype(np.float32) for v in views]
    flags = _flags(fix_aspect, extra_flags)
    if camera_matrix is not None:
        K0 = np.asarray(camera_matrix, dtype=np.float64).copy()
        flags |= cv2.CALIB_USE_INTRINSIC_GUESS
    else:
        K0 = np.eye(3)  # with FIX_ASPECT_RATIO, fx/fy of the guess fixes the ratio (1, as OpenCV's sample)
    d0 = np.zeros(5)
    rms, K, d, rvecs, tvecs, _si, _se, per_view = cv2.calibrateCameraExtended(
        obj, img, (int(image_size[0]), int(image_size[1])), K0, d0, flags=flags,
        criteria=(cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-12),
    )
    return float(rms), K, np.asarray(d, dtype=np.float64).reshape(-1)[:5], list(rvecs), list(tvecs), \
        np.asarray(per_view, dtype=np.float64).reshape(-1)


def calibrate(views: list[ViewPoints], image_size: tuple[int, int], *, fix_aspect: bool = False,
              reject: bool = True, outlier_factor: float = OUTLIER_FACTOR,
              outlier_floor_px: float = OUTLIER_FLOOR_PX, min_points: int = MIN_POINTS_PER_VIEW,
              extra_flags: int = 0, camera_matrix: np.ndarray | None = None) -> GeometryResult:
    """Intrinsics and distortion [k1, k2, p1, p2, k3] from views of a planar target (Zhang; cv2.calibrateCamera).

    Views with fewer than ``min_points`` points are left out. With ``reject``, the view whose RMS error
    is above ``outlier_factor`` x the median view error and above ``outlier_floor_px`` is rejected and
    the model re-fitted, one view at a time, until none is (keeping at least ``MIN_VIEWS``).
    ``fix_aspect`` keeps fx = fy (CALIB_FIX_ASPECT_RATIO with a unit-aspect start).
    Raises ValueError when fewer than two usable views remain.
    """
    reports: dict[str, ViewReport] = {}
    usable: list[ViewPoints] = []
    names = [v.name for v in views]
    if len(set(names)) != len(names):
        raise ValueError("view names must be unique")
    for v in views:
        if len(v.image_points) < min_points:
            reports[v.name] = ViewReport(v.name, False, None, len(v.image_points),
                                         f"too few points ({len(v.image_points)} < {min_points})")
        else:
            usable.append(v)
    if len(usable) < 2:
        raise ValueError(f"need at least two views with >= {min_points} points, got {len(usable)}")
    while True:
        rms, K, d, rvecs, tvecs, per_view = _fit(usable, image_size, fix_aspect, extra_flags, camera_matrix)
        if not reject or len(usable) <= MIN_VIEWS:
            break
        median = float(np.median(per_view))
        threshold = max(outlier_factor * median, outlier_floor_px)
        worst = int(np.argmax(per_view))
        if per_view[worst] <= threshold:
            break
        v = usable.pop(worst)
        reports[v.name] = ViewReport(
            v.name, False, float(per_view[worst]), len(v.image_points),
            f"disagrees with the other views: error {per_view[worst]:.3f} px > {outlier_factor:g} x median"
            f" {median:.3f} px",
        )
    poses = {}
    for v, e, rv, tv in zip(usable, per_view, rvecs, tvecs, strict=True):
        reports[v.name] = ViewReport(v.name, True, float(e), len(v.image_points))
        poses[v.name] = (np.asarray(rv, dtype=np.float64).reshape(3), np.asarray(tv, dtype=np.float64).reshape(3))
    return GeometryResult(K, d, rms, [reports[n] for n in names], (int(image_size[0]), int(image_size[1])),
                          poses, fix_aspect)

"""Board detection: chessboards (OpenCV's detector) and ChArUco boards (OpenCV 5 CharucoDetector; corners (N,2),
ids (N,)), refined to saddle points; corners whose window would leave the frame are dropped."""

from __future__ import annotations

import cv2
import numpy as np

from calibration.geometry.saddle import (
    CHESSBOARD_WINDOW_FRACTION,
    as_gray_u8,
    charuco_window_fraction,
    half_window_for,
    inside_frame,
    nearest_neighbour_px,
    refine_corners,
    refine_saddle,
    refine_subpix,
)
from calibration.geometry.views import Board, ChessboardSpec
from targets.charuco import CharucoSpec

#: The longest side ChArUco markers are looked for on: a larger image is block-averaged by a whole factor
#: first (a 50 MP frame by 4, to the CI readout's 2048 px), and the corners refined at full resolution.
DETECT_MAX_SIDE_PX = 2560


def detect_chessboard(gray: np.ndarray, cols: int, rows: int, *, method: str = "saddle") -> np.ndarray | None:
    """Inner corners (N,2) of a ``cols`` x ``rows`` chessboard, row-major, or None when not found.

    ``method``: ``saddle`` (default; saddle-point refinement, window from the local square size),
    ``subpix`` (cornerSubPix, same adaptive window), or ``opencv`` (OpenCV's calibration.cpp sample:
    findChessboardCorners then cornerSubPix 11x11, eps 0.1, 30 iterations) to reproduce its results.
    """
    img = as_gray_u8(gray)
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
    found, corners = cv2.findChessboardCorners(img, (cols, rows), flags=flags | cv2.CALIB_CB_FAST_CHECK)
    if not found:
        found, corners = cv2.findChessboardCorners(img, (cols, rows), flags=flags)
    if not found and method != "opencv":
        found, corners = cv2.findChessboardCornersSB(img, (cols, rows), flags=cv2.CALIB_CB_EXHAUSTIVE)
    if not found or corners is None:
        return None
    corners = np.asarray(corners, dtype=np.float32).reshape(-1, 1, 2)
    if method == "opencv":
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 30, 0.1)
        cv2.cornerSubPix(img, corners, (11, 11), (-1, -1), criteria)
        return corners.reshape(-1, 2).astype(np.float64)
    pts = corners.reshape(-1, 2).astype(np.float64)
    return refine_corners(gray, pts, CHESSBOARD_WINDOW_FRACTION, method)


def detect_charuco(gray: np.ndarray, spec: CharucoSpec, *, method: str = "saddle",
                   min_corners: int = 4) -> tuple[np.ndarray, np.ndarray] | None:
    """ChArUco corners (N,2) and their ids (N,) found by OpenCV's CharucoDetector, or None.

    ``method``: ``saddle`` (default) or ``subpix`` re-refine OpenCV's corners with a window kept inside
    the white margin around each corner; ``opencv`` returns CharucoDetector's corners as they are
    (plain OpenCV, default parameters).
    """
    found = _charuco_opencv(gray, spec, reduce_by=1 if method == "opencv" else detection_factor(gray))
    if found is None:
        return None
    pts, ids = found
    if len(ids) < min_corners:
        return None
    if method != "opencv":
        board_xy, _ = spec.chessboard_corners_mm()
        pts = _refine_on_board(gray, pts, board_xy[ids], charuco_window_fraction(spec), method)
    return pts, ids


def detection_factor(gray: np.ndarray) -> int:
    """The whole factor that brings the image's longer side to at most ``DETECT_MAX_SIDE_PX``."""
    return max(1, -(-max(np.asarray(gray).shape[:2]) // DETECT_MAX_SIDE_PX))


def _charuco_opencv(gray: np.ndarray, spec: CharucoSpec, reduce_by: int) -> tuple[np.ndarray, np.ndarray] | None:
    """CharucoDetector's corners (full-resolution px) and ids, found on the image block-averaged by
    ``reduce_by`` (pixel centres map back as ``x f + (f - 1) / 2``); also at full resolution when that finds
    under half the board's corners (markers too small there), keeping the detection with more corners."""
    img = np.asarray(gray)
    reduced = None
    if reduce_by > 1:
        if img.ndim == 3:
            img = as_gray_u8(img)
        h, w = img.shape[:2]
        small = cv2.resize(img[: h - h % reduce_by, : w - w % reduce_by], (w // reduce_by, h // reduce_by),
                           interpolation=cv2.INTER_AREA)
        found = _charuco_opencv(small, spec, 1)
        if found is not None:
            reduced = (found[0] * reduce_by + 0.5 * (reduce_by - 1), found[1])
            if 2 * len(reduced[1]) >= len(spec.chessboard_corners_mm()[1]):
                return reduced
    detector = cv2.aruco.CharucoDetector(spec.cv_board())
    corners, ids, _marker_corners, _marker_ids = detector.detectBoard(as_gray_u8(img))
    if corners is None or ids is None:
        return reduced
    # OpenCV 5: (N,2) and (N,); 4.x: (N,1,2) and (N,1)
    full = np.asarray(corners, dtype=np.float64).reshape(-1, 2), np.asarray(ids, dtype=np.int32).reshape(-1)
    return full if reduced is None or len(full[1]) >= len(reduced[1]) else reduced


def _refine_on_board(gray: np.ndarray, pts: np.ndarray, board_xy: np.ndarray, fraction: float,
                     method: str) -> np.ndarray:
    """Refine with windows from the local board scale: px per square from a homography of the view."""
    halves = _local_square_px(pts, board_xy) * fraction
    if method == "saddle":
        return refine_saddle(gray, pts, halves)
    if method == "subpix":
        return refine_subpix(gray, pts, halves)
    raise ValueError(f"unknown corner refinement {method!r}: expected saddle, subpix or opencv")


def _local_square_px(pts: np.ndarray, board_xy: np.ndarray) -> np.ndarray:
    """Image size (px) of one square at each corner: through a homography board -> image, the distance
    to the nearest of the four board neighbours one square away (with < 4 points: the nearest point)."""
    nn = nearest_neighbour_px(pts)
    fallback = np.where(np.isfinite(nn), nn, 20.0)
    if len(pts) < 4:
        return fallback
    bnn = nearest_neighbour_px(board_xy)
    square = float(np.min(bnn)) if np.isfinite(bnn).any() else 1.0
    H, _ = cv2.findHomography(board_xy.astype(np.float64), pts.astype(np.float64), 0)
    if H is None:
        return fallback
    offsets = np.array([[square, 0], [-square, 0], [0, square], [0, -square]])
    around = (board_xy[:, None, :] + offsets[None, :, :]).reshape(-1, 2)
    proj = cv2.perspectiveTransform(around.reshape(-1, 1, 2), H).reshape(len(pts), 4, 2)
    centre = cv2.perspectiveTransform(board_xy.reshape(-1, 1, 2).astype(np.float64), H).reshape(-1, 2)
    dist = np.linalg.norm(proj - centre[:, None, :], axis=2).min(axis=1)
    return np.where(np.isfinite(dist) & (dist > 0), dist, fallback)


def detect_board(gray: np.ndarray, board: Board, *, method: str = "saddle") -> tuple[np.ndarray, np.ndarray,
                                                                                      np.ndarray] | None:
    """Detect ``board`` in an image: (object points (N,3) mm, image points (N,2) px, ids (N,)) or None."""
    if isinstance(board, ChessboardSpec):
        pts = detect_chessboard(gray, board.cols, board.rows, method=method)
        if pts is None:
            return None
        obj, ids, fraction = board.object_points(), np.arange(len(pts), dtype=np.int32), CHESSBOARD_WINDOW_FRACTION
    else:
        found = detect_charuco(gray, board, method=method)
        if found is None:
            return None
        pts, ids = found
        board_xy, _ = board.chessboard_corners_mm()
        obj, fraction = np.column_stack([board_xy[ids], np.zeros(len(ids))]), charuco_window_fraction(board)
    if method != "opencv":
        # A corner whose refinement window leaves the frame was fitted on a reflected border: drop it.
        keep = inside_frame(pts, half_window_for(pts, fraction) + 1.0, np.asarray(gray).shape)
        obj, pts, ids = obj[keep], pts[keep], ids[keep]
    return obj, pts, ids

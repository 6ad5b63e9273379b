"""A two-camera rig refined as one bundle (bundle adjustment, Triggs et al. 2000, on Zhang 2000's planar-board
camera model as OpenCV's ``projectPoints`` computes it): every view's board pose in camera 1's frame, camera 2's
pose against camera 1 and camera 2's intrinsics and distortion, fitted together to every corner each camera
found (not only the corners both found), camera 1's intrinsics held.

Why: a long lens's narrow view, calibrated on its own, trades its focal length against the board's distance
(``f / Z``): a focal length 0.07 % off moves its centre 0.7 mm along its axis at 1 m. Tied to the wide camera's
board poses by the rig, its focal length and its place along its axis are fixed by the wide camera's view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.optimize import least_squares

from calibration.stereo import StereoPose, StereoPoseError, View

#: Fewest corners of camera 1 that pin a view's board pose (a homography needs 4; 6 keep it well conditioned).
MIN_POINTS_1 = 6
#: Camera 2's intrinsics in the bundle: fx, fy, cx, cy, then the distortion k1, k2, p1, p2, k3.
N_INTRINSICS = 9


@dataclass(frozen=True)
class RigFit:
    """The refined rig: camera 2's pose against camera 1, and camera 2's intrinsics it rests on."""

    pose: StereoPose
    camera_matrix_2: np.ndarray  # 3x3
    dist_coeffs_2: np.ndarray  # (5,) k1, k2, p1, p2, k3


def _matrix(k: np.ndarray) -> np.ndarray:
    return np.array([[k[0], 0.0, k[2]], [0.0, k[1], k[3]], [0.0, 0.0, 1.0]])


def _compose(rig: np.ndarray, board: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The board's pose in camera 2: ``X_2 = R X_1 + T`` after ``X_1 = R_b X_board + t_b`` (Rodrigues)."""
    rotation = cv2.Rodrigues(rig[:3])[0]
    return cv2.Rodrigues(rotation @ cv2.Rodrigues(board[:3])[0])[0], rotation @ board[3:] + rig[3:]


def _board_poses(views: list[tuple[np.ndarray, np.ndarray, np.ndarray]], camera_1: tuple[np.ndarray, np.ndarray]
                 ) -> np.ndarray:
    """Each view's board pose in camera 1 (rvec, tvec) from its corners, ``solvePnP``: (V, 6)."""
    k1, d1 = camera_1
    poses = []
    for obj, img, _ in views:
        ok, rvec, tvec = cv2.solvePnP(obj.astype(np.float64), img.astype(np.float64), k1, d1)
        if not ok:
            raise StereoPoseError("camera 1: a view's board pose could not be found")
        poses.append(np.r_[rvec.ravel(), tvec.ravel()])
    return np.asarray(poses, dtype=np.float64)


def initial_rig(boards_1: np.ndarray, views_2: list[tuple[int, View]], camera_2: tuple[np.ndarray, np.ndarray]
                ) -> np.ndarray:
    """Camera 2's pose against camera 1 (rvec, tvec) where camera 2 alone pins the board: per view
    ``R = R_2 R_1^T``, ``T = t_2 - R t_1``; the median over views (rotation vectors, translations)."""
    rigs = []
    for j, view in views_2:
        if len(view[2]) < MIN_POINTS_1:
            continue
        (board_2,) = _board_poses([view], camera_2)
        r1, r2 = cv2.Rodrigues(boards_1[j, :3])[0], cv2.Rodrigues(board_2[:3])[0]
        rotation = r2 @ r1.T
        rigs.append(np.r_[cv2.Rodrigues(rotation)[0].ravel(), board_2[3:] - rotation @ boards_1[j, 3:]])
    if not rigs:
        raise StereoPoseError(f"camera 2 found {MIN_POINTS_1} or more corners in no view: no starting pose")
    return np.median(np.asarray(rigs), axis=0)


def refine_rig(views_1: Sequence[View], views_2: Sequence[View], camera_1: tuple[np.ndarray, np.ndarray],
               camera_2: tuple[np.ndarray, np.ndarray], initial: StereoPose | None = None) -> RigFit:
    """Camera 2's pose and intrinsics refined with every view's board pose (Levenberg-Marquardt on the
    reprojection errors of both cameras), from ``camera_2``'s own calibration and ``initial`` (``stereo_pose``;
    None: ``initial_rig``).

    A view counts when camera 1 found at least ``MIN_POINTS_1`` corners of it; camera 2's corners of it count
    when it found any. Camera 1's ``(K, dist)`` is held."""
    if len(views_1) != len(views_2):
        raise StereoPoseError(f"{len(views_1)} views of camera 1 against {len(views_2)} of camera 2")
    pairs = [(v1, v2) for v1, v2 in zip(views_1, views_2, strict=True) if v1 is not None and len(v1[2]) >= MIN_POINTS_1]
    seen_1 = [v1 for v1, _ in pairs]
    seen_2 = [(j, v2) for j, (_, v2) in enumerate(pairs) if v2 is not None and len(v2[2]) > 0]
    if len(seen_2) < 2:
        raise StereoPoseError(f"{len(seen_2)} views with the board seen by both cameras; the bundle needs 2 or more")
    k1 = np.asarray(camera_1[0], np.float64)
    d1 = np.asarray(camera_1[1], np.float64).reshape(-1)
    k2, d2 = np.asarray(camera_2[0], np.float64), np.asarray(camera_2[1], np.float64).reshape(-1)
    boards = _board_poses(seen_1, (k1, d1))
    rig = initial_rig(boards, seen_2, (k2, d2)) if initial is None else \
        np.r_[cv2.Rodrigues(initial.rotation)[0].ravel(), initial.translation_mm]
    start = np.concatenate([[k2[0, 0], k2[1, 1], k2[0, 2], k2[1, 2]], np.r_[d2[:5], np.zeros(5)][:5], rig,
                            boards.ravel()])
    obj_1 = [v[0].astype(np.float64) for v in seen_1]
    obj_2 = [(j, v[0].astype(np.float64)) for j, v in seen_2]
    observed = np.concatenate([v[1].reshape(-1) for v in seen_1] + [v[1].reshape(-1) for _, v in seen_2])

    def residuals(params: np.ndarray) -> np.ndarray:
        k2_now, d2_now = _matrix(params[:4]), params[4:N_INTRINSICS]
        rig, boards = params[N_INTRINSICS:N_INTRINSICS + 6], params[N_INTRINSICS + 6:].reshape(-1, 6)
        out = [cv2.projectPoints(o, b[:3], b[3:], k1, d1)[0].reshape(-1) for o, b in zip(obj_1, boards, strict=True)]
        for j, o in obj_2:
            rvec, tvec = _compose(rig, boards[j])
            out.append(cv2.projectPoints(o, rvec, tvec, k2_now, d2_now)[0].reshape(-1))
        return np.concatenate(out) - observed

    fit = least_squares(residuals, start, method="lm", x_scale="jac", max_nfev=200 * len(start))
    if not fit.success:
        raise StereoPoseError(f"the rig's bundle adjustment did not converge: {fit.message}")
    rotation = cv2.Rodrigues(fit.x[N_INTRINSICS:N_INTRINSICS + 3])[0]
    rms = float(np.sqrt(np.mean(fit.fun ** 2)))
    pose = StereoPose(rotation, fit.x[N_INTRINSICS + 3:N_INTRINSICS + 6].copy(), rms, len(seen_2),
                      int(sum(len(v[2]) for _, v in seen_2)))
    return RigFit(pose, _matrix(fit.x[:4]), fit.x[4:N_INTRINSICS].copy())

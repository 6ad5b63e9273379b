"""The pose of one camera relative to another from ChArUco views both see at once (OpenCV ``stereoCalibrate``
with each camera's intrinsics fixed, after Zhang 2000 / Bouguet's stereo calibration), written as Android's
``LENS_POSE_ROTATION`` / ``LENS_POSE_TRANSLATION`` / ``LENS_POSE_REFERENCE`` (CameraCharacteristics).

Conventions: ``X_2 = R X_1 + T`` takes a point from camera 1's frame (the reference, the main camera) to
camera 2's (x right, y down, z forward, mm). Android: ``LENS_POSE_REFERENCE`` ``PRIMARY_CAMERA``;
``LENS_POSE_ROTATION`` the quaternion ``(x, y, z, w)`` of ``R`` (reference frame -> this camera's);
``LENS_POSE_TRANSLATION`` this camera's optical centre in the reference frame, ``C = -R^T T``, metres.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

#: A view (object points (N,3) mm, image points (N,2) px, corner ids (N,)) or None where the board was not found.
View = tuple[np.ndarray, np.ndarray, np.ndarray] | None


class StereoPoseError(ValueError):
    """Too few shared views or corners to find the pose."""


@dataclass(frozen=True)
class StereoPose:
    """Camera 2's pose in camera 1's frame, how well it fits, and on how much it rests."""

    rotation: np.ndarray  # R, 3x3
    translation_mm: np.ndarray  # T, (3,)
    rms_px: float
    views: int
    corners: int

    @property
    def centre_mm(self) -> np.ndarray:
        """Camera 2's optical centre in camera 1's frame, ``-R^T T``."""
        return -self.rotation.T @ self.translation_mm

    def android(self) -> dict[str, Any]:
        """``LENS_POSE_*`` of camera 2 with camera 1 the primary camera."""
        quat = Rotation.from_matrix(self.rotation).as_quat()  # (x, y, z, w)
        if quat[3] < 0:
            quat = -quat
        return {"LENS_POSE_REFERENCE": "PRIMARY_CAMERA", "LENS_POSE_ROTATION": [float(v) for v in quat],
                "LENS_POSE_TRANSLATION": [float(v) / 1000.0 for v in self.centre_mm]}

    def to_dict(self) -> dict[str, Any]:
        return {"rotation": self.rotation.tolist(), "translation_mm": self.translation_mm.tolist(),
                "centre_mm": self.centre_mm.tolist(), "rotation_deg": rotation_angle_deg(self.rotation),
                "rms_px": self.rms_px, "views": self.views, "corners": self.corners, **self.android()}


def rotation_angle_deg(rotation: np.ndarray) -> float:
    """The angle of a rotation matrix, degrees."""
    cos = (float(np.trace(rotation)) - 1.0) / 2.0
    return math.degrees(math.acos(min(max(cos, -1.0), 1.0)))


def pose_from_android(quat_xyzw: Sequence[float], centre_m: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """``(R, T mm)`` back from ``LENS_POSE_ROTATION`` and ``LENS_POSE_TRANSLATION``."""
    rotation = Rotation.from_quat(np.asarray(quat_xyzw, dtype=np.float64)).as_matrix()
    return rotation, -rotation @ (np.asarray(centre_m, dtype=np.float64) * 1000.0)


def shared_corners(views_1: Sequence[View], views_2: Sequence[View], min_corners: int = 8
                   ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Per view pair, the board corners both cameras found (matched by id): object, image 1, image 2."""
    if len(views_1) != len(views_2):
        raise StereoPoseError(f"{len(views_1)} views of camera 1 against {len(views_2)} of camera 2")
    obj, img1, img2 = [], [], []
    for v1, v2 in zip(views_1, views_2, strict=True):
        if v1 is None or v2 is None:
            continue
        common, i1, i2 = np.intersect1d(v1[2], v2[2], return_indices=True)
        if len(common) < min_corners:
            continue
        obj.append(np.asarray(v1[0][i1], np.float32).reshape(-1, 1, 3))
        img1.append(np.asarray(v1[1][i1], np.float32).reshape(-1, 1, 2))
        img2.append(np.asarray(v2[1][i2], np.float32).reshape(-1, 1, 2))
    return obj, img1, img2


def stereo_pose(views_1: Sequence[View], views_2: Sequence[View], camera_1: tuple[np.ndarray, np.ndarray],
                camera_2: tuple[np.ndarray, np.ndarray], image_size: tuple[int, int],
                min_views: int = 3) -> StereoPose:
    """Camera 2's pose relative to camera 1 from simultaneous views, intrinsics ``(K, dist)`` fixed."""
    obj, img1, img2 = shared_corners(views_1, views_2)
    if len(obj) < min_views:
        raise StereoPoseError(f"{len(obj)} views with the board seen by both cameras; need {min_views} or more")
    (k1, d1), (k2, d2) = camera_1, camera_2
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 200, 1e-12)
    rms, *_, rotation, translation, _, _ = cv2.stereoCalibrate(
        obj, img1, img2, np.asarray(k1, np.float64), np.asarray(d1, np.float64), np.asarray(k2, np.float64),
        np.asarray(d2, np.float64), tuple(int(v) for v in image_size), flags=cv2.CALIB_FIX_INTRINSIC,
        criteria=criteria)
    return StereoPose(np.asarray(rotation, np.float64), np.asarray(translation, np.float64).reshape(3), float(rms),
                      len(obj), int(sum(len(o) for o in obj)))

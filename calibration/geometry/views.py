"""Boards and views of camera geometry: the target's spec, detected points per view, per-view reports and the
fitted model (OpenCV's pinhole camera with 5-term Brown-Conrady distortion ``[k1, k2, p1, p2, k3]``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from targets.charuco import CharucoSpec


@dataclass(frozen=True)
class ChessboardSpec:
    """A plain chessboard: inner corners across (cols) and down (rows), square side in mm."""

    cols: int
    rows: int
    square_mm: float

    def __post_init__(self) -> None:
        if self.cols < 2 or self.rows < 2:
            raise ValueError(f"chessboard needs at least 2x2 inner corners, got {self.cols}x{self.rows}")
        if not self.square_mm > 0:
            raise ValueError(f"chessboard square side must be > 0 mm, got {self.square_mm}")

    def object_points(self) -> np.ndarray:
        """Inner corners (N,3) in mm, row-major from the top-left corner, as findChessboardCorners orders them."""
        grid = np.mgrid[0 : self.cols, 0 : self.rows].T.reshape(-1, 2).astype(np.float64)
        return np.column_stack([grid * self.square_mm, np.zeros(len(grid))])

    def to_text(self) -> str:
        return f"chessboard:{self.cols}x{self.rows}:{self.square_mm:g}"


Board = ChessboardSpec | CharucoSpec


@dataclass(frozen=True)
class ViewPoints:
    """One view of a planar target: board points (N,3) in board units and their image points (N,2) in px."""

    name: str
    object_points: np.ndarray
    image_points: np.ndarray
    ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        obj = np.asarray(self.object_points, dtype=np.float64).reshape(-1, 3)
        img = np.asarray(self.image_points, dtype=np.float64).reshape(-1, 2)
        if len(obj) != len(img):
            raise ValueError(f"view {self.name}: {len(obj)} object points but {len(img)} image points")
        object.__setattr__(self, "object_points", obj)
        object.__setattr__(self, "image_points", img)
        if self.ids is not None:
            object.__setattr__(self, "ids", np.asarray(self.ids, dtype=np.int32).reshape(-1))


@dataclass(frozen=True)
class ViewReport:
    """How one view fared: used or not, its RMS reprojection error (px) and why it was left out."""

    name: str
    used: bool
    error_px: float | None
    n_points: int
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "used": self.used, "error_px": self.error_px,
                               "n_points": self.n_points}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class GeometryResult:
    """A calibrated camera: K (3,3), distortion [k1, k2, p1, p2, k3], RMS over used views, per-view reports."""

    camera_matrix: np.ndarray
    dist_coeffs: np.ndarray
    rms_px: float
    views: list[ViewReport]
    image_size: tuple[int, int]
    #: Pose (rvec, tvec) of every used view, by name.
    poses: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    fix_aspect: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_size": [int(self.image_size[0]), int(self.image_size[1])],
            "camera_matrix": np.asarray(self.camera_matrix, dtype=float).tolist(),
            "dist_coeffs": np.asarray(self.dist_coeffs, dtype=float).reshape(-1).tolist(),
            "rms_px": float(self.rms_px),
            "views": [v.to_dict() for v in self.views],
        }

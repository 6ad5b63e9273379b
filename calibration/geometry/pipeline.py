"""From images to a camera model: detect, calibrate, re-refine every corner from the model's reprojection (picking
up ChArUco corners the detector missed near the frame edges), re-calibrate."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from calibration.geometry.calibrate import calibrate
from calibration.geometry.camera_model import plausible_projections
from calibration.geometry.detection import detect_board
from calibration.geometry.saddle import (
    CHESSBOARD_WINDOW_FRACTION,
    MODEL_PATCH_SMOOTH_FRACTION,
    MODEL_PATCH_SMOOTH_PX,
    as_gray_float,
    as_gray_u8,
    charuco_window_fraction,
    inside_frame,
    refine_subpix,
    saddle_points,
    saddle_points_on_model,
)
from calibration.geometry.spill import ViewImages
from calibration.geometry.views import Board, GeometryResult, ViewPoints
from targets.charuco import CharucoSpec


@dataclass
class ImageCalibration:
    """``calibrate_images`` output: the model, the views it used, and names of images without a board."""

    result: GeometryResult
    views: list[ViewPoints]
    not_found: list[str]


def _check_size(name: str, gray: np.ndarray, size: tuple[int, int] | None) -> tuple[int, int]:
    h, w = np.asarray(gray).shape[:2]
    if size is not None and (w, h) != size:
        raise ValueError(f"{name}: image is {w}x{h}, the others are {size[0]}x{size[1]}")
    return (w, h)


def _kept_gray(image: np.ndarray, method: str) -> np.ndarray:
    """The image a view keeps for re-refinement: a 2-D image as it is for ``saddle`` (its windows are converted
    where they are sampled; a 50 MP uint16 green stays 100 MB), float32 for ``subpix``, 8-bit for ``opencv``."""
    if method == "opencv":
        return as_gray_u8(image)
    if method == "saddle" and np.ndim(image) == 2:
        return np.asarray(image)
    return as_gray_float(image)


def refine_views_from_model(images: Mapping[str, np.ndarray] | ViewImages, views: list[ViewPoints],
                            result: GeometryResult, board: Board, method: str = "saddle", *,
                            on_model: bool = False) -> list[ViewPoints]:
    """Re-refine every used view's corners starting at their reprojection under ``result``.

    The window of each corner comes from the projected board (the image distance to the corners one
    square away), which stays right on oblique and distorted views. Corners whose refinement ends more
    than a third of a square from their reprojection are dropped as unreliable. On a ChArUco board
    (``saddle``), inner corners the detector missed (markers cut by the frame edge, low contrast) are
    looked for where the model puts them, and kept when they are saddles at least half as strong as
    the detected ones and lie within a sixth of a square of the prediction: they bring points near the
    frame edges, where the distortion is least constrained. Only missing corners the model can place are
    looked for (``plausible_projections``: in front, distortion-free projection within the frame grown by
    5 %, inside the distortion polynomial's monotonic radius): a fitted k3 of -0.67 folded corners from
    far outside the field back into the frame, onto other corners. ``on_model``: fit the saddles on the board
    plane through the model (``saddle_points_on_model``) rather than in the image. ``images[name]`` is taken
    once per view and let go of before the next (a ``ViewImages`` spill maps one view at a time).
    """
    fraction = charuco_window_fraction(board) if isinstance(board, CharucoSpec) else CHESSBOARD_WINDOW_FRACTION
    square = board.square_mm
    K, d = result.camera_matrix, result.dist_coeffs
    offsets = np.array([[square, 0, 0], [-square, 0, 0], [0, square, 0], [0, -square, 0]])
    out: list[ViewPoints] = []
    for v in views:
        pose = result.poses.get(v.name)
        if pose is None:
            out.append(v)
            continue
        rvec, tvec = pose
        obj, ids = v.object_points, v.ids
        n_found = len(obj)
        if isinstance(board, CharucoSpec) and ids is not None and method == "saddle":
            all_xy, all_ids = board.chessboard_corners_mm()
            missing = np.setdiff1d(all_ids, ids)
            extra = np.column_stack([all_xy[missing], np.zeros(len(missing))])
            trusted = plausible_projections(extra, rvec, tvec, K, d, result.image_size)
            obj = np.vstack([obj, extra[trusted]])
            ids = np.concatenate([ids, missing[trusted]]).astype(np.int32)
        start, _ = cv2.projectPoints(obj, rvec, tvec, K, d)
        start = start.reshape(-1, 2)
        around = (obj[:, None, :] + offsets[None]).reshape(-1, 3)
        proj, _ = cv2.projectPoints(around, rvec, tvec, K, d)
        spacing = np.linalg.norm(proj.reshape(len(start), 4, 2) - start[:, None, :], axis=2).min(axis=1)
        halves = np.clip(fraction * spacing, 2.0, 25.0)
        image = images[v.name]
        if method == "saddle" and not on_model:
            refined, strength = saddle_points(image, start, halves)
        elif method == "saddle":
            half_px = float(np.median(halves))
            refined, strength = saddle_points_on_model(
                image, obj, rvec, tvec, K, d, fraction * square, samples=int(np.clip(round(half_px), 3, 8)),
                smooth_sigma=float(np.clip(MODEL_PATCH_SMOOTH_FRACTION * half_px, 0.5, MODEL_PATCH_SMOOTH_PX)))
        else:
            refined, strength = refine_subpix(image, start, halves), np.ones(len(start))
        drift = np.linalg.norm(refined - start, axis=1)
        keep = (drift < spacing / 3.0) & (strength > 0)
        keep[n_found:] = False
        if len(start) > n_found and keep[:n_found].any():
            inside = inside_frame(start, np.ceil(halves) + 2, np.asarray(image).shape)
            floor = 0.5 * float(np.median(strength[:n_found][keep[:n_found]]))
            new = inside & (strength >= floor) & (drift < spacing / 6.0)
            keep[n_found:] = new[n_found:]
        del image  # a spilled view's map goes before the next view's is made
        out.append(ViewPoints(v.name, obj[keep], refined[keep], None if ids is None else ids[keep]))
    return out


def calibrate_images(images: Iterable[tuple[str, np.ndarray]], board: Board, *, fix_aspect: bool = False,
                     reject: bool = True, method: str = "saddle", iterations: int = 1,
                     on_model: bool = False, spill: bool | None = None) -> ImageCalibration:
    """Detect ``board`` in each (name, image), calibrate, then (``iterations`` times) re-refine the corners
    from the model's reprojection and re-calibrate (``refine_views_from_model``). ``method="opencv"`` is
    plain OpenCV: its detector's corners, one calibration, no re-refinement (pass ``reject=False`` too
    for OpenCV's defaults, and no image is kept).

    The images are taken one at a time and each is let go of once its board is found: the one kept for the
    re-refinement goes to a ``ViewImages`` (``spill``: True to a temporary file, False in memory, None by
    size: a 50 MP view is spilled), so a generator of 50 MP views holds about one at a time. The temporary
    files go when this returns or raises. Spilled or not, the corners and the model are the same.

    Raises ValueError when fewer than two images show the board.
    """
    with ViewImages(spill) as grays:
        size: tuple[int, int] | None = None
        views: list[ViewPoints] = []
        not_found: list[str] = []
        for name, image in images:
            size = _check_size(name, image, size)
            found = detect_board(image, board, method=method)
            if found is None:
                not_found.append(name)
            else:
                obj, pts, ids = found
                if method != "opencv":
                    grays.add(name, _kept_gray(image, method))
                views.append(ViewPoints(name, obj, pts, ids))
            del image  # not held while the next view is made (a 50 MP RAW converted to its green)
        if len(views) < 2 or size is None:
            found_in = f"only in {views[0].name}" if views else "in none of them: no board"
            raise ValueError(f"board found {found_in}; calibration needs at least two views")
        result = calibrate(views, size, fix_aspect=fix_aspect, reject=reject)
        if method != "opencv":
            for _ in range(iterations):
                views = refine_views_from_model(grays, views, result, board, method, on_model=on_model)
                result = calibrate(views, size, fix_aspect=fix_aspect, reject=reject)
    return ImageCalibration(result, views, not_found)

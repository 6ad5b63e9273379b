"""Corner re-refinement from a fitted model (``calibration.geometry``): where it may look, and at any scale.

The images are analytic lattices of point-symmetric saddles (``tanh(3 sin(pi u / P)) tanh(3 sin(pi v / P))``,
a smooth chessboard whose corners sit exactly on the lattice), drawn in the image or on a board 1000 mm from
a pinhole of 1000 px focal length (OpenCV's model): every true corner position is known.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from calibration.geometry import (
    GeometryResult,
    ViewPoints,
    monotonic_radius,
    plausible_projections,
    refine_views_from_model,
    saddle_points,
    saddle_points_on_model,
    undistort_normalized,
)
from targets.charuco import parse_board_spec

SQUARE_PX = 40.0
WIDTH, HEIGHT = 400, 300
K = np.array([[1000.0, 0.0, (WIDTH - 1) / 2.0], [0.0, 1000.0, (HEIGHT - 1) / 2.0], [0.0, 0.0, 1.0]])


def saddle_lattice(width: int, height: int, period_px: float, x0: float, y0: float) -> np.ndarray:
    """Smooth chessboard (float32, 28..228) with corners at (x0 + i P, y0 + j P)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.tanh(3 * np.sin(np.pi * (xx - x0) / period_px)) * np.tanh(3 * np.sin(np.pi * (yy - y0) / period_px))
    return (128.0 + 100.0 * img).astype(np.float32)


def test_monotonic_radius_is_where_the_distorted_radius_turns():
    k3 = -3.0  # r_d = r (1 + k3 r^6): d r_d / d r = 1 + 7 k3 r^6 = 0 at r = (7 |k3|)^(-1/6)
    assert monotonic_radius([0, 0, 0, 0, k3]) == pytest.approx((7 * 3.0) ** (-1 / 6), rel=1e-9)
    assert monotonic_radius([-0.2, 0, 0, 0, 0]) == pytest.approx((1 / 0.6) ** 0.5, rel=1e-9)  # 1 - 3 * 0.2 r^2
    assert monotonic_radius([0.02, 0.1, 0, 0, 0]) == float("inf")  # barrel-free: always growing


def test_missing_corners_come_only_from_where_the_model_holds():
    """A strong barrel k1 = -1.65 (26 px at this 400 x 300 frame's corners, the true lens and the model
    alike) turns back at 0.45 focal lengths: board corners 0.55 to 0.78 focal lengths off the axis project
    back into the frame, onto other corners of the board. They must not be picked up as corners the
    detector 'missed', with the wrong ids (on twin views they were, 4500 px off their true place)."""
    board = parse_board_spec("charuco:34x34:40:20:DICT_5X5_1000")
    board_xy, all_ids = board.chessboard_corners_mm()
    obj_all = np.column_stack([board_xy, np.zeros(len(board_xy))])
    centre = np.array([17.0 * 40.0 + 13.3, 17.0 * 40.0 - 7.6])  # board point on the axis, off the lattice
    rvec, tvec = np.zeros(3), np.array([-centre[0], -centre[1], 1000.0])
    dist = np.array([-1.65, 0.0, 0.0, 0.0, 0.0])
    # the image: each pixel's ray (the model inverted on its monotonic branch) meets the board at 1000 mm
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    rays = undistort_normalized(np.column_stack([(xx.ravel() - K[0, 2]) / K[0, 0],
                                                 (yy.ravel() - K[1, 2]) / K[1, 1]]), dist)
    bx, by = (rays * 1000.0 + centre).T
    image = (128.0 + 100.0 * np.tanh(3 * np.sin(np.pi * bx / SQUARE_PX)) * np.tanh(3 * np.sin(np.pi * by / SQUARE_PX))
             ).reshape(HEIGHT, WIDTH).astype(np.float32)
    true_px = cv2.projectPoints(obj_all, rvec, tvec, K, dist)[0].reshape(-1, 2)
    radius = np.hypot(*(board_xy - centre).T) / 1000.0
    found = (radius < 0.3) & (true_px[:, 0] > 20) & (true_px[:, 0] < WIDTH - 21) & (true_px[:, 1] > 20) & (
        true_px[:, 1] < HEIGHT - 21)
    folded = (radius > monotonic_radius(dist)) & (true_px[:, 0] > 10) & (true_px[:, 0] < WIDTH - 11) & (
        true_px[:, 1] > 10) & (true_px[:, 1] < HEIGHT - 11)
    assert folded.sum() > 20  # the trap is set: dozens of far corners project into the frame
    view = ViewPoints("v", obj_all[found], true_px[found], all_ids[found])
    result = GeometryResult(K, dist, 0.01, [], (WIDTH, HEIGHT), {"v": (rvec, tvec)})

    (out,) = refine_views_from_model({"v": image}, [view], result, board)
    out_radius = np.hypot(*(out.object_points[:, :2] - centre).T) / 1000.0
    errors = np.hypot(*(out.image_points - true_px[out.ids]).T)
    assert len(out.ids) >= 0.9 * found.sum()
    assert out_radius.max() < 0.3, f"{(out_radius > 0.3).sum()} corners taken from beyond the fold"
    assert errors.max() < 0.3

    mask = plausible_projections(obj_all, rvec, tvec, K, dist, (WIDTH, HEIGHT))
    assert mask[found].all() and not mask[folded].any()
    behind = plausible_projections(np.zeros((1, 3)), rvec, np.array([0.0, 0.0, -5.0]), K, dist, (WIDTH, HEIGHT))
    assert not behind.any()


@pytest.fixture(scope="module")
def many_corners() -> tuple[np.ndarray, np.ndarray]:
    """1936 corners on a 28 px lattice: more windows than one ``cv2.remap`` map may hold (SHRT_MAX rows)."""
    period, x0, y0 = 28.0, 14.37, 14.81
    image = saddle_lattice(1300, 1300, period, x0, y0)
    k = np.arange(1, 45)
    cx, cy = np.meshgrid(x0 + k * period, y0 + k * period)
    return image, np.column_stack([cx.ravel(), cy.ravel()])


def test_saddle_points_refine_more_corners_than_one_remap_holds(many_corners):
    image, true = many_corners
    assert len(true) * 25 > 32767  # half window 12: 25 rows per corner
    pts, strength = saddle_points(image, true + [0.7, -0.4], 12.0)
    assert (strength > 0).all()
    assert np.abs(pts - true).max() < 0.01


def test_saddle_points_on_model_refine_more_corners_than_one_remap_holds(many_corners):
    image, true = many_corners
    obj = np.column_stack([true + [0.5, -0.3], np.zeros(len(true))])  # 1 board mm = 1 px, start off by ~0.6
    pts, strength = saddle_points_on_model(image, obj, np.zeros(3), np.array([0.0, 0.0, 1000.0]),
                                           np.diag([1000.0, 1000.0, 1.0]), np.zeros(5), 8.0, samples=8,
                                           iterations=4)
    assert len(true) * 17 > 32767  # 8 samples: 17 rows per corner
    assert (strength > 0).all()
    assert np.abs(pts - true).max() < 0.05

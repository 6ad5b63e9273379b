"""Distortion model conversions: OpenCV <-> Android / DNG / lensfun, exact round trips and reported residuals.

Ground truth is OpenCV itself (``cv2.projectPoints`` of the ray through each corrected pixel) and each
format's own equations written out here from its documentation, not the module's code.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from calibration.distortion_models import (
    AndroidLens,
    BrownConrady,
    DngWarpRectilinear,
    LensfunDistortion,
    android_to_opencv,
    distortion_residual_px,
    dng_to_opencv,
    frame_grid,
    lensfun_to_opencv,
    opencv_to_android,
    opencv_to_dng,
    opencv_to_lensfun,
    with_image_size,
)

SIZE = (640, 480)
K = np.array([[560.0, 0.0, 321.3], [0.0, 560.0, 238.9], [0.0, 0.0, 1.0]])
DIST = np.array([-0.21, 0.09, 0.0012, -0.0007, -0.02])  # k1 k2 p1 p2 k3


def opencv_source(camera_matrix: np.ndarray, dist: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Where OpenCV puts the ray through corrected pixel (u, v) (newCameraMatrix = cameraMatrix)."""
    y = (v - camera_matrix[1, 2]) / camera_matrix[1, 1]
    x = (u - camera_matrix[0, 2] - camera_matrix[0, 1] * y) / camera_matrix[0, 0]
    rays = np.stack([x, y, np.ones_like(x)], axis=1)
    projected, _ = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), camera_matrix, dist)
    return projected.reshape(-1, 2)


def android_equations(intrinsic: list[float], kappa: list[float], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """camera2 LENS_DISTORTION mapping equations, pixel centres at half-integers (Android 9+ docs)."""
    fx, fy, cx, cy, s = intrinsic
    k1, k2, k3, k4, k5 = kappa
    yi = (v + 0.5 - cy) / fy
    xi = (u + 0.5 - cx - s * yi) / fx
    r2 = xi**2 + yi**2
    xc = xi * (1 + k1 * r2 + k2 * r2**2 + k3 * r2**3) + k4 * (2 * xi * yi) + k5 * (r2 + 2 * xi**2)
    yc = yi * (1 + k1 * r2 + k2 * r2**2 + k3 * r2**3) + k5 * (2 * xi * yi) + k4 * (r2 + 2 * yi**2)
    return np.stack([fx * xc + s * yc + cx - 0.5, fy * yc + cy - 0.5], axis=1)


def dng_sdk_source(planes: tuple, center: tuple[float, float], size: tuple[int, int], u, v) -> np.ndarray:
    """dng_filter_warp::GetSrcPixelPosition for plane 0 (square pixels), from the DNG SDK."""
    kr0, kr1, kr2, kr3, kt0, kt1 = planes[0]
    w, h = size
    ch, cv = center[0] * w, center[1] * h
    m = max(math.hypot(px - ch, py - cv) for px in (0, w) for py in (0, h))
    dh, dv = (u - ch) / m, (v - cv) / m
    rr = np.minimum(dh**2 + dv**2, 1.0)
    ratio = kr0 + kr1 * rr + kr2 * rr**2 + kr3 * rr**3
    tan_v = kt0 * (rr + 2 * dv**2) + 2 * kt1 * dh * dv
    tan_h = kt1 * (rr + 2 * dh**2) + 2 * kt0 * dh * dv
    return np.stack([ch + m * (dh * ratio + tan_h), cv + m * (dv * ratio + tan_v)], axis=1)


@pytest.fixture()
def grid() -> tuple[np.ndarray, np.ndarray]:
    return frame_grid(SIZE, 40)


def test_brown_conrady_is_opencv(grid):
    k = K.copy()
    k[1, 1] = 571.0  # fx != fy
    model = BrownConrady.from_opencv(k, DIST, SIZE)
    u, v = grid
    su, sv = model.source_px(u, v)
    assert np.max(np.abs(np.stack([su, sv], 1) - opencv_source(k, DIST, u, v))) < 1e-9


def test_opencv_android_round_trip_is_exact(grid):
    model = BrownConrady.from_opencv(K, DIST, SIZE)
    android = opencv_to_android(model)
    back = android_to_opencv(android)
    assert np.max(np.abs(back.camera_matrix - K)) <= 1e-6
    assert np.max(np.abs(back.dist_coeffs - DIST)) <= 1e-6
    # Android's own equations with the exported values land where OpenCV does
    u, v = grid
    got = android_equations(list(android.intrinsic_calibration), list(android.distortion), u, v)
    assert np.max(np.abs(got - opencv_source(K, DIST, u, v))) < 1e-9
    assert list(android.distortion) == [DIST[0], DIST[1], DIST[4], DIST[2], DIST[3]]
    assert android.intrinsic_calibration[2:4] == (K[0, 2] + 0.5, K[1, 2] + 0.5)


def test_opencv_dng_round_trip_is_exact_for_square_pixels(grid):
    model = BrownConrady.from_opencv(K, DIST, SIZE)
    conversion = opencv_to_dng(model)
    assert conversion.exact and conversion.residual_px == 0.0
    dng = conversion.model
    # Android DngCreator's normalizeLensDistortion: m to the farthest corner of (0,0)..(W,H), a = m / f
    cx, cy, f = K[0, 2], K[1, 2], K[0, 0]
    m = math.hypot(max(SIZE[0] - cx, cx), max(SIZE[1] - cy, cy))
    a = m / f
    expected = [1.0, DIST[0] * a**2, DIST[1] * a**4, DIST[4] * a**6, DIST[2] * a, DIST[3] * a]
    assert np.allclose(dng.planes[0], expected, rtol=1e-12, atol=0)
    assert dng.center == pytest.approx((cx / SIZE[0], cy / SIZE[1]), abs=1e-15)
    u, v = grid
    assert np.max(np.abs(dng_sdk_source(dng.planes, dng.center, SIZE, u, v) - opencv_source(K, DIST, u, v))) < 1e-9
    back = dng_to_opencv(dng, f)
    assert back.exact
    assert np.max(np.abs(back.model.camera_matrix - K)) <= 1e-6
    assert np.max(np.abs(back.model.dist_coeffs - DIST)) <= 1e-6


def test_dng_with_unequal_focal_lengths_is_fitted_and_reports_its_residual(grid):
    k = K.copy()
    k[1, 1] = 566.0  # 1 % anisotropy
    model = BrownConrady.from_opencv(k, DIST, SIZE)
    conversion = opencv_to_dng(model)
    assert not conversion.exact
    dng = conversion.model
    u, v = frame_grid(SIZE, 160)
    gap = np.hypot(*(dng_sdk_source(dng.planes, dng.center, SIZE, u, v) - opencv_source(k, DIST, u, v)).T)
    assert conversion.residual_px == pytest.approx(gap.max(), rel=0.05)
    # the fit beats the naive rescale with fx alone
    naive = opencv_to_dng(BrownConrady.from_opencv(K, DIST, SIZE)).model
    naive_gap = np.hypot(*(dng_sdk_source(naive.planes, naive.center, SIZE, u, v) - opencv_source(k, DIST, u, v)).T)
    assert 0.0 < conversion.residual_px < naive_gap.max()
    print(f"\nDNG fit with fy = 1.01 fx: residual {conversion.residual_px:.3f} px "
          f"(fx-only rescale {naive_gap.max():.3f} px)")


def test_opencv_lensfun_poly5_round_trip_is_exact(grid):
    dist = np.array([-0.21, 0.09, 0.0, 0.0, 0.0])
    model = BrownConrady.from_opencv(K, dist, SIZE)
    conversion = opencv_to_lensfun(model)
    assert conversion.exact
    lf = conversion.model
    # lensfun 0.3 normalisation, independently: unit = half-diagonal over pixel centres / sqrt(aspect^2 + 1)
    aspect = SIZE[0] / SIZE[1]
    unit = 0.5 * math.hypot(SIZE[0] - 1, SIZE[1] - 1) / math.sqrt(aspect**2 + 1)
    assert lf.terms == pytest.approx((dist[0] * (unit / 560) ** 2, dist[1] * (unit / 560) ** 4), rel=1e-12)
    centre = ((SIZE[0] - 1) / 2 + lf.center[0] * unit, (SIZE[1] - 1) / 2 + lf.center[1] * unit)
    assert centre == pytest.approx((K[0, 2], K[1, 2]), abs=1e-9)
    u, v = grid
    ru = np.hypot(u - centre[0], v - centre[1]) / unit
    ratio = 1 + lf.terms[0] * ru**2 + lf.terms[1] * ru**4
    lensfun_src = np.stack([centre[0] + (u - centre[0]) * ratio, centre[1] + (v - centre[1]) * ratio], 1)
    assert np.max(np.abs(lensfun_src - opencv_source(K, dist, u, v))) < 1e-9
    back = lensfun_to_opencv(lf, 560.0)
    assert back.exact
    assert np.max(np.abs(back.model.dist_coeffs - dist)) <= 1e-6
    assert np.max(np.abs(back.model.camera_matrix - K)) <= 1e-6


@pytest.mark.parametrize("dist", [[-0.21, 0.09, 0.0, 0.0, -0.02], [-0.21, 0.09, 0.0012, -0.0007, 0.0]])
def test_lensfun_inexact_conversion_reports_residual(dist):
    dist = np.array(dist)
    model = BrownConrady.from_opencv(K, dist, SIZE)
    conversion = opencv_to_lensfun(model)
    assert not conversion.exact
    u, v = frame_grid(SIZE, 160)
    lu, lv = conversion.model.source_px(u, v)
    gap = np.hypot(lu - opencv_source(K, dist, u, v)[:, 0], lv - opencv_source(K, dist, u, v)[:, 1]).max()
    assert conversion.residual_px == pytest.approx(gap, rel=0.05)
    assert conversion.residual_px > 0.01
    # no other poly5 does better on the frame than the fit (perturb each term a little)
    for i in range(2):
        for step in (-1e-4, 1e-4):
            terms = list(conversion.model.terms)
            terms[i] += step
            other = LensfunDistortion("poly5", tuple(terms), conversion.model.center, conversion.model.aspect_ratio,
                                      SIZE)
            ou, ov = other.source_px(u, v)
            src = opencv_source(K, dist, u, v)
            assert np.sum((ou - src[:, 0]) ** 2 + (ov - src[:, 1]) ** 2) >= np.sum(
                (lu - src[:, 0]) ** 2 + (lv - src[:, 1]) ** 2)
    print(f"\nlensfun poly5 fit of k1 k2 p1 p2 k3 = {dist.tolist()}: residual {conversion.residual_px:.3f} px")


@pytest.mark.parametrize("kind", ["poly3", "ptlens"])
def test_other_lensfun_models_are_fitted(kind):
    model = BrownConrady.from_opencv(K, [-0.21, 0.09, 0.0, 0.0, 0.0], SIZE)
    conversion = opencv_to_lensfun(model, kind)
    assert not conversion.exact and conversion.model.model == kind
    assert conversion.residual_px == pytest.approx(distortion_residual_px(conversion.model, model, SIZE), rel=1e-9)
    back = lensfun_to_opencv(conversion.model, 560.0)
    assert not back.exact and back.residual_px >= 0.0


def test_residual_of_a_known_radial_term():
    a = BrownConrady(560.0, 560.0, 300.0, 200.0, image_size=SIZE)
    b = BrownConrady(560.0, 560.0, 300.0, 200.0, k1=0.01, image_size=SIZE)
    assert distortion_residual_px(a, a, SIZE) == 0.0
    # the gap k1 r^3 / f^2 is largest at the farthest corner (639, 479)
    r = math.hypot(639 - 300, 479 - 200)
    assert distortion_residual_px(a, b, SIZE) == pytest.approx(0.01 * r**3 / 560**2, rel=1e-12)


def test_with_image_size_scales_continuous_coordinates(grid):
    model = BrownConrady.from_opencv(K, DIST, SIZE)
    big = with_image_size(model, (2 * SIZE[0], 2 * SIZE[1]))
    u, v = grid
    su, sv = model.source_px(u, v)
    bu, bv = big.source_px(2 * (u + 0.5) - 0.5, 2 * (v + 0.5) - 0.5)
    assert np.max(np.abs(bu - (2 * (su + 0.5) - 0.5))) < 1e-9
    assert np.max(np.abs(bv - (2 * (sv + 0.5) - 0.5))) < 1e-9


def test_bad_models_are_refused():
    with pytest.raises(ValueError, match="camera_matrix"):
        BrownConrady.from_opencv(np.eye(2), DIST, SIZE)
    with pytest.raises(ValueError, match="dist_coeffs"):
        BrownConrady.from_opencv(K, [0.1, np.nan, 0, 0, 0], SIZE)
    with pytest.raises(ValueError, match="lensfun"):
        LensfunDistortion("poly7", (0.1,), (0.0, 0.0), 4 / 3, SIZE)
    with pytest.raises(ValueError, match="image_size"):
        BrownConrady.from_opencv(K, DIST, (1, 480))
    assert isinstance(opencv_to_android(BrownConrady.from_opencv(K, DIST, SIZE)), AndroidLens)
    assert isinstance(opencv_to_dng(BrownConrady.from_opencv(K, DIST, SIZE)).model, DngWarpRectilinear)

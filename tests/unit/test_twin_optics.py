"""The twin's optics against independent maths: OpenCV's camera model, the thin lens, exact coverage."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from matplotlib.path import Path as MplPath

from station.errors import ConfigError
from station.twin import optics
from station.twin.coverage import coverage_raster
from station.twin.lenses import M_LENSES, MAIN_LENS, catalog_truth, get_lens

ALL_LENSES = [MAIN_LENS, *M_LENSES.values()]


# --- projection model -------------------------------------------------------------------------

@pytest.mark.parametrize("lens", ALL_LENSES, ids=lambda lens: lens.id)
def test_distortion_is_opencvs_model_and_inverts(lens):
    rng = np.random.default_rng(7)
    half_w, half_h = 13.1072 / 2 / lens.focal_length_mm, 9.8304 / 2 / lens.focal_length_mm
    x = rng.uniform(-1.1 * half_w, 1.1 * half_w, 2000)
    y = rng.uniform(-1.1 * half_h, 1.1 * half_h, 2000)
    xd, yd = optics.distort(x, y, lens.distortion)
    pts = np.stack([x, y, np.ones_like(x)], axis=1)
    ref, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), np.eye(3), np.array(lens.distortion))
    assert np.abs(ref.reshape(-1, 2) - np.stack([xd, yd], axis=1)).max() < 1e-12
    xu, yu = optics.undistort(xd, yd, lens.distortion)
    assert max(np.abs(xu - x).max(), np.abs(yu - y).max()) < 1e-12


def test_tilted_sensor_term_is_opencvs():
    dist = MAIN_LENS.distortion
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-0.5, 0.5, 500), rng.uniform(-0.4, 0.4, 500)
    xd, yd = optics.distort(x, y, dist)
    h = optics.tilt_matrix(0.4, -0.25)
    q = h @ np.stack([xd, yd, np.ones_like(xd)])
    ref, _ = cv2.projectPoints(np.stack([x, y, np.ones_like(x)], axis=1), np.zeros(3), np.zeros(3), np.eye(3),
                               np.array(optics.opencv_distortion(dist, 0.4, -0.25)))
    assert np.abs(ref.reshape(-1, 2) - (q[:2] / q[2]).T).max() < 1e-12


def test_pan_and_tilt_turn_the_camera_as_a_gimbal_does():
    # independent construction: camera -> world = rotation about world y (pan: the optical axis z turns
    # towards +x) then about the camera's x (tilt: the axis turns towards -y, up)
    pan, tilt = 12.0, -7.0
    r_pan = cv2.Rodrigues(np.array([0.0, math.radians(pan), 0.0]))[0]
    r_tilt = cv2.Rodrigues(np.array([math.radians(tilt), 0.0, 0.0]))[0]
    assert (r_pan @ np.array([0, 0, 1.0]))[0] > 0 and (cv2.Rodrigues(np.array([0.1, 0, 0]))[0] @ [0, 0, 1.0])[1] < 0
    assert np.allclose(optics.camera_rotation(pan, tilt), (r_pan @ r_tilt).T, atol=1e-12)
    # panning right moves the chart centre (on the world axis) left in the image, tilting up moves it down
    centre = np.array([0.0, 0.0, 1000.0])
    assert (optics.camera_rotation(10, 0) @ centre)[0] < 0
    assert (optics.camera_rotation(0, 10) @ centre)[1] > 0
    rotation, t = optics.chart_extrinsics(0, 0, 800.0, 400.0, 300.0)
    assert np.allclose(rotation @ np.array([200.0, 150.0, 0.0]) + t, [0, 0, 800.0])


# --- thin lens --------------------------------------------------------------------------------

@pytest.mark.parametrize("lens", list(M_LENSES.values()), ids=lambda lens: lens.id)
def test_focus_ring_follows_the_thin_lens(lens):
    f = lens.focal_length_mm
    assert lens.extension_for_ring_mm(0.0) == 0.0  # infinity
    v_close = lens.focal_length_mm + lens.extension_for_ring_mm(lens.focus_throw_deg)
    assert 1 / v_close + 1 / lens.close_focus_mm == pytest.approx(1 / f, rel=1e-12)
    assert lens.extension_for_ring_mm(lens.focus_throw_deg + 40) == lens.extension_for_ring_mm(lens.focus_throw_deg)
    for s in (lens.close_focus_mm, 1000.0, 2500.0, 10000.0):
        v = f + lens.extension_for_ring_mm(lens.ring_for_distance_deg(s))
        assert 1 / s + 1 / v == pytest.approx(1 / f, rel=1e-12)
        assert optics.object_distance_mm(f, v) == pytest.approx(s, rel=1e-9)


def test_depth_of_field_limits_have_the_acceptable_blur():
    f, n, s, coc = 52.3, 4.0, 1500.0, 0.0128
    v = f * s / (s - f)
    near, far = optics.depth_of_field_mm(f, n, v, coc)
    assert near < s < far
    for limit in (near, far):
        v_o = f * limit / (limit - f)
        assert (f / n) * abs(v - v_o) / v_o == pytest.approx(coc, rel=1e-9)


@pytest.mark.parametrize("diameter", [3.0, 8.0, 21.5])
def test_pillbox_is_a_uniform_disc(diameter):
    kernel = optics.pillbox_kernel(diameter).astype(np.float64)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(kernel, kernel[::-1, ::-1]) and np.allclose(kernel, kernel.T)
    half = kernel.shape[0] // 2
    x = np.arange(kernel.shape[0]) - half
    var_x = float((kernel.sum(axis=0) * x * x).sum())
    # a uniform disc of radius R has variance R^2 / 4 per axis; binning it into pixel taps adds up to 1/12
    assert var_x == pytest.approx((diameter / 2) ** 2 / 4 + 1 / 24, abs=0.06)


# --- exact coverage ---------------------------------------------------------------------------

def _supersampled(poly: np.ndarray, width: int, height: int, n: int = 160) -> np.ndarray:
    offs = (np.arange(n) + 0.5) / n
    xs = (np.arange(width)[:, None] + offs[None, :]).ravel()
    ys = (np.arange(height)[:, None] + offs[None, :]).ravel()
    gx, gy = np.meshgrid(xs, ys)
    inside = MplPath(poly).contains_points(np.stack([gx.ravel(), gy.ravel()], axis=1))
    return inside.reshape(height, n, width, n).mean(axis=(1, 3))


def _edges(poly: np.ndarray, weight: float) -> list[np.ndarray]:
    """Directed edges of a polygon that, as coverage_raster documents, adds +weight times its coverage."""
    nxt = np.roll(poly, -1, axis=0)
    shoelace = 0.5 * np.sum(poly[:, 0] * nxt[:, 1] - nxt[:, 0] * poly[:, 1])
    w = np.full(len(poly), -np.sign(shoelace) * weight)
    return [poly[:, 0], poly[:, 1], nxt[:, 0], nxt[:, 1], w]


def test_coverage_is_the_exact_area_of_each_pixel():
    rng = np.random.default_rng(11)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
    radii = rng.uniform(2.5, 8.0, 9)
    star = np.stack([7 + radii * np.cos(angles), 5 + radii * np.sin(angles)], axis=1)  # leaves the grid
    tri = np.array([[3.2, 2.1], [9.7, 3.4], [5.5, 8.9]])[::-1]
    parts = [_edges(star, 0.7), _edges(tri, -0.2)]
    xa, ya, xb, yb, w = (np.concatenate([p[i] for p in parts]) for i in range(5))
    got = coverage_raster(xa, ya, xb, yb, w, 12, 10)
    want = 0.7 * _supersampled(star, 12, 10) - 0.2 * _supersampled(tri, 12, 10)
    assert np.abs(got - want).max() < 2e-3  # the reference's own sampling error is ~1/160
    assert got.sum() == pytest.approx(want.sum(), abs=1e-3)


# --- catalog ----------------------------------------------------------------------------------

def test_lens_catalog_is_complete_and_consistent():
    assert set(M_LENSES) == {"summicron-m-50-f2", "summilux-m-35-f1.4", "elmarit-m-28-f2.8", "noctilux-m-50-f0.95"}
    codes = [lens.code for lens in M_LENSES.values()]
    assert len(set(codes)) == 4 and all(0 < c < 64 for c in codes)
    for lens in M_LENSES.values():
        assert list(lens.apertures) == sorted(lens.apertures)
        assert lens.focus_throw_deg > 0 and lens.close_focus_mm > 10 * lens.focal_length_mm
        a2_open = lens.falloff_coefficients(lens.apertures[0])[0]
        a2_stopped = lens.falloff_coefficients(lens.apertures[-1])[0]
        assert a2_open < a2_stopped <= 0  # stopping down reduces the lens falloff
        sigmas = [lens.psf_sigma_um(n, "g") for n in lens.apertures]
        assert lens.psf_sigma_um(16, "r") > lens.psf_sigma_um(16, "b")  # diffraction grows with wavelength
        assert min(sigmas) < sigmas[0] and min(sigmas) < sigmas[-1]  # a sweet spot in between
    json.dumps(catalog_truth())


def test_unknown_lens_is_a_config_error_listing_the_catalog():
    with pytest.raises(ConfigError) as err:
        get_lens("summarit-m-75")
    assert "summicron-m-50-f2" in str(err.value) and "noctilux-m-50-f0.95" in str(err.value)
    with pytest.raises(ConfigError, match="f/2 to f/16"):
        get_lens("summicron-m-50-f2").check_f_number(1.4)

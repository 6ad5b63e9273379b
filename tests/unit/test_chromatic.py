"""Lateral chromatic aberration: per-plane magnification about the centre from points and from edges."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import erf

from calibration.chromatic import CaError, edge_shifts, lateral_ca, lateral_ca_from_edges

W, H = 4000, 3000
CENTRE = ((W - 1) / 2, (H - 1) / 2)
S_R, S_B = 1 + 412e-6, 1 - 655e-6  # R magnified, B shrunk relative to G
T_R, T_B = (0.25, -0.1), (-0.3, 0.2)  # plane misregistration (px)


def _grid_points(rng: np.random.Generator) -> np.ndarray:
    gx, gy = np.meshgrid(np.linspace(100, W - 100, 15), np.linspace(100, H - 100, 11))
    return np.column_stack([gx.ravel(), gy.ravel()]) + rng.normal(0, 3, (gx.size, 2))


def _plane(g: np.ndarray, s: float, t: tuple[float, float], centre=CENTRE) -> np.ndarray:
    c = np.asarray(centre)
    return c + s * (g - c) + np.asarray(t)


def test_point_sets_recover_scale_and_corner_shift() -> None:
    rng = np.random.default_rng(5)
    g = _grid_points(rng)
    noise = 0.02  # px, a good sub-pixel corner detector
    pts = {"G": g + rng.normal(0, noise, g.shape),
           "R": _plane(g, S_R, T_R) + rng.normal(0, noise, g.shape),
           "B": _plane(g, S_B, T_B) + rng.normal(0, noise, g.shape)}
    res = lateral_ca(pts, image_size=(W, H))
    assert res.center_px == pytest.approx(CENTRE)
    assert abs(res.planes["R"].scale - S_R) < 1e-4 and abs(res.planes["B"].scale - S_B) < 1e-4
    assert abs(res.planes["R"].scale - S_R) < 5e-6  # in fact far better than 1e-4 at this noise
    assert res.planes["R"].scale_ppm == pytest.approx(412, abs=5)
    assert res.planes["B"].scale_pct == pytest.approx(-0.0655, abs=5e-4)
    assert res.planes["R"].translation_px == pytest.approx(T_R, abs=0.01)
    assert res.planes["R"].rms_px == pytest.approx(noise * math.sqrt(2) * math.sqrt(2), rel=0.3)
    corner = math.hypot(*CENTRE)
    assert res.corner_shift_px("R") == pytest.approx((S_R - 1) * corner, rel=0.01)
    assert res.corner_shift_px("B") == pytest.approx((1 - S_B) * corner, rel=0.01)
    doc = res.to_dict()
    assert set(doc["planes"]) == {"R", "B"} and doc["planes"]["B"]["corner_shift_px"] > 1.0


def test_off_centre_optical_axis_given() -> None:
    rng = np.random.default_rng(8)
    g = _grid_points(rng)
    centre = (2100.0, 1400.0)
    res = lateral_ca({"G": g, "R": _plane(g, S_R, (0, 0), centre)}, center_px=centre, image_size=(W, H))
    assert res.planes["R"].scale == pytest.approx(S_R, abs=1e-9)
    assert res.planes["R"].translation_px == pytest.approx((0, 0), abs=1e-6)


def test_bad_point_sets_raise() -> None:
    g = _grid_points(np.random.default_rng(1))
    with pytest.raises(CaError, match="matched"):
        lateral_ca({"G": g, "R": g[:-1]})
    with pytest.raises(CaError, match="reference plane"):
        lateral_ca({"R": g, "B": g})
    with pytest.raises(CaError, match="need at least"):
        lateral_ca({"G": g[:3], "R": g[:3]})


def _edge_roi(shift_px: dict[int, float], angle_deg: float, size: int = 48, sigma: float = 1.2) -> np.ndarray:
    """A near-vertical dark-to-light edge through the ROI centre, per channel moved along its normal."""
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    a = math.radians(angle_deg)
    n = np.array([math.cos(a), -math.sin(a)])  # normal of the line x cos a - y sin a = const
    c = (size - 1) / 2
    roi = np.empty((size, size, 3))
    for ch in range(3):
        d = (xx - c) * n[0] + (yy - c) * n[1] - shift_px.get(ch, 0.0)
        roi[..., ch] = 0.1 + 0.8 * 0.5 * (1 + erf(d / (sigma * math.sqrt(2))))
    return roi


def test_edge_shifts_measure_the_normal_shift() -> None:
    for angle in (3.0, 8.0):
        roi = _edge_roi({0: 0.3, 2: -0.45}, angle)
        shifts = edge_shifts(roi)
        assert shifts[0] == pytest.approx(0.3, abs=0.01) and shifts[2] == pytest.approx(-0.45, abs=0.01)
        horizontal = edge_shifts(np.transpose(roi, (1, 0, 2)), vertical=False)
        assert horizontal[0] == pytest.approx(0.3, abs=0.01)
    with pytest.raises(CaError, match="no edge"):
        edge_shifts(np.full((20, 20, 3), 0.5))


def test_edges_across_the_field_recover_scale() -> None:
    """Edges on two rings of the field, normals along x or y: shifts rendered, measured, fitted."""
    positions, normals, shifts_r, shifts_b = [], [], [], []
    for i in range(16):
        phi = 2 * math.pi * i / 16
        rad = 1300.0 if i % 2 else 700.0
        p = np.array(CENTRE) + rad * np.array([math.cos(phi), math.sin(phi)])
        vertical = abs(math.cos(phi)) >= abs(math.sin(phi))
        n = np.array([1.0, 0.0]) if vertical else np.array([0.0, 1.0])
        d_r = float(((S_R - 1) * (p - CENTRE) + T_R) @ n)
        d_b = float(((S_B - 1) * (p - CENTRE) + T_B) @ n)
        roi = _edge_roi({0: d_r, 2: d_b}, 5.0)
        measured = edge_shifts(roi if vertical else np.transpose(roi, (1, 0, 2)), vertical=vertical)
        positions.append(p)
        normals.append(n)
        shifts_r.append(measured[0])
        shifts_b.append(measured[2])
    res = lateral_ca_from_edges(np.array(positions), np.array(normals), {"R": shifts_r, "B": shifts_b},
                                image_size=(W, H))
    assert abs(res.planes["R"].scale - S_R) < 1e-4 and abs(res.planes["B"].scale - S_B) < 1e-4
    assert res.planes["B"].translation_px == pytest.approx(T_B, abs=0.02)

"""Chart rendering is an exact area average: checked against coverage fractions computed here by hand."""

from __future__ import annotations

import numpy as np
import pytest

from targets.base import HOLDER_REFLECTANCE
from targets.polygons import PolygonSet
from targets.registry import CHARTS, get_chart
from targets.slanted_edge import DARK, LIGHT, SlantedEdgeChart
from targets.steps import StepChart, step_reflectances


def test_vertical_edge_pixel_is_its_coverage_fraction() -> None:
    chart = StepChart()
    x, y, w, h = chart.patch_rects_mm()[0]
    ppm = 2.0
    for frac in (0.1, 0.3, 0.77):  # part of pixel 0 left of the patch's left edge
        x0 = x - frac / ppm
        img = chart.raster(x0, y + h / 2, ppm, 3, 1)
        expected = frac * HOLDER_REFLECTANCE + (1 - frac) * step_reflectances()[0]
        assert img[0, 0, 0] == pytest.approx(expected, abs=1e-6)
        assert img[0, 1, 0] == pytest.approx(step_reflectances()[0], abs=1e-6)


def test_rectangle_raster_is_separable_overlap_product() -> None:
    x0, x1, y0, y1 = 0.37, 5.61, 0.23, 3.9
    poly = PolygonSet([np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])], np.ones((1, 3)))
    ppm, ox, oy = 3.3, -0.2, -0.1
    img = poly.raster(ox, oy, ppm, 22, 15, np.zeros(3))[..., 0]
    cx, cy = ox + np.arange(23) / ppm, oy + np.arange(16) / ppm
    over_x = np.clip(np.minimum(cx[1:], x1) - np.maximum(cx[:-1], x0), 0, None) * ppm
    over_y = np.clip(np.minimum(cy[1:], y1) - np.maximum(cy[:-1], y0), 0, None) * ppm
    np.testing.assert_allclose(img, np.outer(over_y, over_x), atol=1e-6)


def test_slanted_edge_pixels_are_trapezoid_areas() -> None:
    """Pixels the 5-degree left edge of the centre square crosses top to bottom: coverage = trapezoid."""
    chart = SlantedEdgeChart()
    quad = chart.squares_mm()[0]
    p0, p1 = quad[3], quad[0]  # left side, bottom-left to top-left
    ppm = 1.0 / 0.05
    mid = (p0 + p1) / 2
    x0, y0 = mid[0] - 10 / ppm, mid[1] - 10 / ppm
    img = chart.raster(x0, y0, ppm, 20, 20)[..., 0]
    checked = 0
    for r in range(20):
        ya, yb = y0 + r / ppm, y0 + (r + 1) / ppm
        xa = p0[0] + (ya - p0[1]) * (p1[0] - p0[0]) / (p1[1] - p0[1])
        xb = p0[0] + (yb - p0[1]) * (p1[0] - p0[0]) / (p1[1] - p0[1])
        c = int(np.floor((min(xa, xb) - x0) * ppm))
        left, right = x0 + c / ppm, x0 + (c + 1) / ppm
        if not (left <= min(xa, xb) and max(xa, xb) < right):
            continue
        dark = (right - (xa + xb) / 2) * ppm  # fraction of the pixel right of the edge: the square
        assert img[r, c] == pytest.approx(dark * DARK + (1 - dark) * LIGHT, abs=1e-6)
        checked += 1
    assert checked >= 10


def test_raster_converges_to_point_samples() -> None:
    """Brute-force supersampling of reflectance_at tends to raster() as the samples grow."""
    chart = get_chart("siemens")
    x0, y0, ppm = chart.width_mm / 2 + 25, chart.height_mm / 2 + 10, 2.0  # spokes 2.4 mm apart
    img = chart.raster(x0, y0, ppm, 12, 12)
    errors = []
    for ss in (8, 64):
        g = (np.arange(12 * ss) + 0.5) / (ss * ppm)
        X, Y = np.meshgrid(x0 + g, y0 + g)
        brute = chart.reflectance_at(X, Y).reshape(12, ss, 12, ss, 3).mean(axis=(1, 3))
        errors.append(np.abs(brute - img).max())
    assert errors[1] < errors[0] / 4 and errors[1] < 0.01


@pytest.mark.parametrize("name", list(CHARTS))
def test_mean_of_raster_is_mean_reflectance(name: str) -> None:
    """Area averages add up: a coarse raster equals the mean of a fine one over the same pixels."""
    chart = get_chart(name)
    fine = chart.raster(-5.0, -5.0, 2.0, 8 * 41, 8 * 31)
    coarse = chart.raster(-5.0, -5.0, 0.25, 41, 31)
    np.testing.assert_allclose(fine.reshape(31, 8, 41, 8, 3).mean(axis=(1, 3)), coarse, atol=2e-5)
    assert fine.min() >= 0.0 and fine.max() <= 1.0 + 1e-6
    # outside the chart: the holder
    out = chart.reflectance_at(np.array([-1.0, chart.width_mm + 1]), np.array([5.0, 5.0]))
    np.testing.assert_allclose(out, np.tile(chart.background, (2, 1)), atol=1e-7)

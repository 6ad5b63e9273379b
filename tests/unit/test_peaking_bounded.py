"""Issue 13's bounded-memory peaking paths equal the whole-frame ones bit for bit: the response worked out a
band of rows at a time (histogram, counts, sharpness) and the edge profiles sampled from bands of the linear
frame. The references are the whole-frame computations as they stood before the change."""

from __future__ import annotations

import numpy as np
import pytest

import calibration.peaking as peaking
import calibration.peaking_edges as peaking_edges
from calibration.peaking import (
    _counts,
    histogram,
    peaking_response,
    response_counts,
    response_histogram,
)
from calibration.peaking_edges import PROFILE_STEP_PX, _decode_lut, chart_edges, lsf_variance
from calibration.peaking_sweep import mean_square, sharpness
from tests.unit.test_peaking import checkerboard, render


@pytest.fixture(scope="module")
def star_like() -> list[np.ndarray]:
    """A sharp and a blurred frame of the batch tests' chart (odd sizes: bands end short)."""
    chart = checkerboard()
    return [np.ascontiguousarray(render(chart, blur, seed)[:-3, :-1]) for blur, seed in ((0.5, 1), (5.0, 2))]


@pytest.mark.parametrize("band_rows", [1, 7, 64])
def test_response_in_bands_equals_the_whole_frame(star_like, band_rows, monkeypatch) -> None:
    monkeypatch.setattr(peaking, "_RESPONSE_BAND_ROWS", band_rows)
    luma = star_like[0]
    whole = peaking_response(luma)
    banded = np.concatenate([p for _, _, p in peaking.response_bands(luma)])
    assert np.array_equal(banded, whole) and whole.max() > 100
    where = chart_edges(luma).edge_mask
    assert np.array_equal(response_histogram(luma), histogram(whole))
    assert np.array_equal(response_counts(luma), _counts(whole))
    assert np.array_equal(response_counts(luma, where), _counts(whole, where))
    assert mean_square(response_histogram(luma), luma.size) == sharpness(whole)


def _profiles_whole_frame(luma: np.ndarray, edges: peaking_edges.ChartEdges, reach_px: float) -> np.ndarray:
    """The edge profiles as one ``cv2.remap`` of the whole linear frame sampled them."""
    import cv2

    lin = _decode_lut("srgb")[luma]
    t = np.arange(-reach_px, reach_px + 1e-6, PROFILE_STEP_PX, dtype=np.float32)
    mx = edges.points[:, :1] + edges.normals[:, :1] * t
    my = edges.points[:, 1:] + edges.normals[:, 1:] * t
    return cv2.remap(lin, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@pytest.mark.parametrize("band_rows", [5, 16, 4096])
def test_profiles_in_bands_equal_one_remap_of_the_whole_frame(star_like, band_rows, monkeypatch) -> None:
    monkeypatch.setattr(peaking_edges, "_PROFILE_BAND_ROWS", band_rows)
    reach = 8.0
    edges = chart_edges(star_like[0], reach_px=reach)
    # profiles reaching past the frame's top and bottom: the border is replicated where it is the frame's
    h = star_like[0].shape[0]
    extra = np.array([[40.0, 1.0], [60.0, h - 2.0], [30.5, 0.0]], np.float32)
    normals = np.array([[0.0, -1.0], [0.6, 0.8], [0.0, 1.0]], np.float32)
    edges = peaking_edges.ChartEdges(edges.dark_code, edges.light_code, edges.binary, edges.edge_mask,
                               np.concatenate([edges.points, extra]), np.concatenate([edges.normals, normals]))
    t = np.arange(-reach, reach + 1e-6, PROFILE_STEP_PX, dtype=np.float32)
    for luma in star_like:
        whole = _profiles_whole_frame(luma, edges, reach)
        assert np.array_equal(peaking_edges._profiles(luma, _decode_lut("srgb"), edges, t), whole)
    assert len(edges.points) > 100


def test_lsf_variance_is_unchanged_by_the_bands(star_like, monkeypatch) -> None:
    edges = chart_edges(star_like[0], reach_px=8.0)
    before = [lsf_variance(luma, edges, reach_px=8.0) for luma in star_like]
    monkeypatch.setattr(peaking_edges, "_PROFILE_BAND_ROWS", 9)
    assert [lsf_variance(luma, edges, reach_px=8.0) for luma in star_like] == before
    assert before[1] > 4 * before[0]


def _chart_edges_whole_frame(luma: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
    """The levels, masks and light-side pixels as the whole-frame code found them (boolean-indexed medians)."""
    import cv2

    lut = _decode_lut("srgb")
    otsu, _ = cv2.threshold(luma, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    dark, light = float(np.median(luma[luma <= otsu])), float(np.median(luma[luma > otsu]))
    mid = 0.5 * (np.interp(dark, np.arange(256), lut) + np.interp(light, np.arange(256), lut))
    binary = cv2.medianBlur((lut >= mid).astype(np.uint8)[luma], 3)
    kernel = np.ones((3, 3), np.uint8)
    edge_mask = cv2.morphologyEx(binary, cv2.MORPH_GRADIENT, kernel) > 0
    light_side = (binary > 0) & (cv2.erode(binary, kernel) == 0)
    return dark, light, binary > 0, edge_mask, np.argwhere(light_side)


def test_chart_edges_without_frame_copies_equal_the_whole_frame_code(star_like) -> None:
    for luma in star_like:
        edges = chart_edges(luma)
        dark, light, binary, edge_mask, light_side = _chart_edges_whole_frame(luma)
        assert (edges.dark_code, edges.light_code) == (dark, light)
        assert edges.binary.dtype == edges.edge_mask.dtype == bool
        assert np.array_equal(edges.binary, binary) and np.array_equal(edges.edge_mask, edge_mask)
        # every profile starts on a light-side pixel of the whole-frame code
        on_side = {(int(y), int(x)) for y, x in light_side}
        assert all((int(y), int(x)) in on_side for x, y in edges.points) and len(edges.points) > 100

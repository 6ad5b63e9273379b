"""Lens shading: gain map (Android LENS_SHADING_MAP layout) and radial vignetting fit on synthetic flats.

The flats are made here with independent maths: per CFA channel, natural cos^4 falloff of a pinhole at
focal length F_PX times a lens polynomial, about a channel-specific centre, with Poisson (shot) noise.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from calibration.shading import ShadingError, apply_shading, lens_shading

H, W = 768, 1024
BLACK, WHITE = 64, 4095
F_PX = 900.0
HALF_DIAG = math.hypot(W, H) / 2
#: channel -> (centre x, centre y, lens poly a, b in (r / half-diagonal)^2, ^4, peak DN above black)
CHANNELS = {"R": (540.0, 370.0, -0.10, 0.02, 1500.0), "Gr": (512.0, 384.0, -0.05, 0.0, 3000.0),
            "Gb": (512.0, 384.0, -0.05, 0.0, 3000.0), "B": (480.0, 400.0, 0.02, -0.04, 2000.0)}
RGGB = {"R": (0, 0), "Gr": (0, 1), "Gb": (1, 0), "B": (1, 1)}
BGGR = {"B": (0, 0), "Gb": (0, 1), "Gr": (1, 0), "R": (1, 1)}


def illumination(x: np.ndarray, y: np.ndarray, channel: str) -> np.ndarray:
    """Relative illumination (1 at the channel's centre): cos^4 of the field angle times a lens polynomial."""
    cx, cy, a, b, _ = CHANNELS[channel]
    dist = np.hypot(x - cx, y - cy)
    r2 = (dist / HALF_DIAG) ** 2
    return (F_PX / np.sqrt(F_PX ** 2 + dist ** 2)) ** 4 * (1 + a * r2 + b * r2 * r2)


def flat(layout: dict[str, tuple[int, int]], rng: np.random.Generator, model=illumination) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W].astype(float)
    signal = np.zeros((H, W))
    for ch, (r, c) in layout.items():
        signal[r::2, c::2] = CHANNELS[ch][4] * model(xx[r::2, c::2], yy[r::2, c::2], ch)
    return (rng.poisson(signal) + BLACK).astype(np.uint16)


def truth_gains(grid: tuple[int, int], channel: str, model=illumination) -> np.ndarray:
    """Android's definition: the gain at pixel ((W-1)/(N-1) x, (H-1)/(M-1) y), least shaded point = 1."""
    rows, cols = grid
    gx, gy = np.meshgrid(np.arange(cols) * (W - 1) / (cols - 1), np.arange(rows) * (H - 1) / (rows - 1))
    ill = model(gx, gy, channel)
    return ill.max() / ill


@pytest.fixture(scope="module")
def flats() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [flat(RGGB, rng) for _ in range(3)]


@pytest.fixture(scope="module")
def result(flats):
    return lens_shading(flats[:2], cfa="RGGB", black_level=BLACK, white_level=WHITE)


def test_gain_map_matches_inverse_relative_illumination(result) -> None:
    assert result.gain_map.shape == (13, 17, 4)
    assert result.channels == ("R", "Gr", "Gb", "B")
    for k, ch in enumerate(("R", "Gr", "Gb", "B")):
        err = result.gain_map[..., k] / truth_gains((13, 17), ch) - 1
        assert np.abs(err).max() < 0.01, (ch, np.abs(err).max())
        assert result.gain_map[..., k].min() == pytest.approx(1.0, abs=1e-6)  # Android: least shaded = 1
    assert result.gain_map.min() >= 1.0 - 1e-6  # MINIMUM_GAIN_FACTOR
    assert result.gain_map.max() > 2.0  # the synthetic lens really vignettes


def test_android_order_for_bggr_and_other_grid() -> None:
    """G_even is the green of the even rows: Gb for BGGR; channel 0 is R wherever it sits."""
    rng = np.random.default_rng(3)
    res = lens_shading(flat(BGGR, rng), cfa="BGGR", black_level=BLACK, white_level=WHITE, grid=(5, 7))
    assert res.channels == ("R", "Gb", "Gr", "B")
    assert res.gain_map.shape == (5, 7, 4)
    for k, ch in enumerate(res.channels):
        assert np.abs(res.gain_map[..., k] / truth_gains((5, 7), ch) - 1).max() < 0.01


def test_corner_falloff_matches_truth(result) -> None:
    for ch in ("R", "Gr", "Gb", "B"):
        g = truth_gains((13, 17), ch)
        corners = np.array([g[0, 0], g[0, -1], g[-1, 0], g[-1, -1]])
        fall = result.corner_falloff(ch)
        assert fall["mean_pct"] == pytest.approx(100 * np.mean(1 - 1 / corners), abs=0.3)
        assert fall["mean_ev"] == pytest.approx(np.mean(np.log2(corners)), abs=0.01)
        assert fall["max_pct"] == pytest.approx(100 * np.max(1 - 1 / corners), abs=0.4)


def poly_model(k: tuple[float, float, float]):
    def model(x, y, channel):
        cx, cy = CHANNELS[channel][:2]
        r2 = (np.hypot(x - cx, y - cy) / HALF_DIAG) ** 2
        return 1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
    return model


def test_radial_fit_recovers_coefficients_and_centre() -> None:
    k_true = (-0.45, 0.12, -0.03)
    model = poly_model(k_true)
    frame = flat(RGGB, np.random.default_rng(11), model)
    res = lens_shading(frame, cfa="RGGB", black_level=BLACK, white_level=WHITE)
    for ch in ("R", "Gr", "B"):
        fit = res.radial[ch]
        cx, cy = CHANNELS[ch][:2]
        assert fit.center_px == pytest.approx((cx, cy), abs=1.5)
        assert fit.k == pytest.approx(k_true, abs=0.02)
        corners_x, corners_y = np.array([0, W - 1, 0, W - 1.0]), np.array([0, 0, H - 1, H - 1.0])
        truth = model(corners_x, corners_y, ch)
        assert fit.corner_falloff_pct == pytest.approx(100 * (1 - truth.mean()), abs=0.3)
        assert fit.corner_falloff_ev == pytest.approx(np.mean(-np.log2(truth)), abs=0.01)
        assert fit.rms_pct < 0.5


def test_apply_shading_flattens_the_flat(result, flats) -> None:
    frame = flats[2]  # not used to make the map
    corrected = apply_shading(frame, result.gain_map, cfa="RGGB", black_level=BLACK)
    for r, c in RGGB.values():
        before = (frame[r::2, c::2].astype(float) - BLACK).reshape(12, 32, 16, 32).mean(axis=(1, 3))
        after = corrected[r::2, c::2].reshape(12, 32, 16, 32).mean(axis=(1, 3))
        assert before.std() / before.mean() > 0.1
        assert after.std() / after.mean() < 0.005
        assert after.max() / after.min() < 1.02


def test_rgb_input_gives_equal_greens(result) -> None:
    yy, xx = np.mgrid[0:H // 2, 0:W // 2].astype(float) * 2
    img = np.stack([illumination(xx, yy, ch) for ch in ("R", "Gr", "B")], axis=-1).astype(np.float32) * 0.5
    res = lens_shading(img, cfa=None, white_level=1.0)
    assert res.channels == ("R", "G", "G", "B")
    np.testing.assert_array_equal(res.gain_map[..., 1], res.gain_map[..., 2])
    flat_img = apply_shading(img, res.gain_map, cfa=None)
    assert flat_img.max() / flat_img.min() < 1.02


def test_not_a_flat_field_raises() -> None:
    yy, xx = np.mgrid[0:H, 0:W]
    chart = np.where(((xx // 64) + (yy // 64)) % 2 == 0, 3000, 300).astype(np.uint16) + BLACK
    with pytest.raises(ShadingError, match="not a flat field"):
        lens_shading(chart, cfa="RGGB", black_level=BLACK, white_level=WHITE)


def test_dark_clipped_and_mismatched_frames_raise(flats) -> None:
    with pytest.raises(ShadingError, match="too dark"):
        lens_shading(np.full((H, W), BLACK + 2, np.uint16), cfa="RGGB", black_level=BLACK, white_level=WHITE)
    with pytest.raises(ShadingError, match="clipped"):
        lens_shading(np.full((H, W), WHITE, np.uint16), cfa="RGGB", black_level=BLACK, white_level=WHITE)
    with pytest.raises(ShadingError, match="expected 1024x768"):
        lens_shading([flats[0], flats[1][:, :512]], cfa="RGGB", black_level=BLACK)


def test_to_json_round_trips(result) -> None:
    import json

    doc = json.loads(result.to_json())
    assert np.array(doc["gain_map"]).shape == (13, 17, 4)
    assert set(doc["corner_falloff"]) == {"R", "Gr", "Gb", "B"}
    assert len(doc["radial_fit"]["R"]["k"]) == 3

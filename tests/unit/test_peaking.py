"""calibration.peaking: DESIGN 7's response against an independent Laplacian and the twin's golden firmware;
the threshold calibration on a synthetic focus sweep whose true blur is known, checked against that truth
(not the calibration's own estimate); errors for a sweep never in focus and for conflicting limits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from calibration.peaking import (
    MAX_FAR_COVERAGE,
    MAX_FLAT_RATE,
    MIN_IN_FOCUS_COVERAGE,
    PeakingCalibrationError,
    calibrate_peaking,
    edge_coverage,
    peaking_mask,
    peaking_response,
    verify_peaking,
    verify_peaking_flat,
)

# --- the synthetic camera: a tilted checkerboard, pillbox defocus of known diameter -----------------

OVERSAMPLE = 4
SIZE_PX = 192
SQUARE_PX = 32.0
ANGLE_DEG = 7.0
COC_PX = 2.0
BASE_SIGMA_PX = 0.4  # the lens's Gaussian base PSF
NOISE = (0.0002, 2e-6)  # linear variance = a * signal + b


def chart_coordinates(size: int = SIZE_PX, oversample: int = OVERSAMPLE) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) in the chart's rotated frame (px) at the centres of the sub-pixels (size*oversample)^2."""
    c = (np.arange(size * oversample) + 0.5) / oversample - size / 2.0
    xx, yy = np.meshgrid(c, c)
    a = np.deg2rad(ANGLE_DEG)
    return xx * np.cos(a) + yy * np.sin(a), -xx * np.sin(a) + yy * np.cos(a)


def checkerboard(size: int = SIZE_PX, oversample: int = OVERSAMPLE) -> np.ndarray:
    u, v = chart_coordinates(size, oversample)
    return ((np.floor(u / SQUARE_PX) + np.floor(v / SQUARE_PX)) % 2).astype(np.float32)


def true_edge_pixels(size: int = SIZE_PX) -> np.ndarray:
    """Preview pixels whose centre is within 1 px of a light/dark boundary: every grid line of a
    checkerboard is one, so the distance is the distance to the nearest grid line."""
    u, v = chart_coordinates(size, 1)
    du = np.abs(u - SQUARE_PX * np.round(u / SQUARE_PX))
    dv = np.abs(v - SQUARE_PX * np.round(v / SQUARE_PX))
    return np.minimum(du, dv) <= 1.0


def pillbox(diameter_px: float, oversample: int = OVERSAMPLE, sub: int = 4) -> np.ndarray:
    """A uniform disc of ``diameter_px`` preview pixels on the oversampled grid (area-weighted), sum 1."""
    r = diameter_px * oversample / 2.0
    if r < 0.25:
        return np.ones((1, 1), np.float32)
    n = int(np.ceil(r)) + 1
    g = -n - 0.5 + (np.arange((2 * n + 1) * sub) + 0.5) / sub
    xx, yy = np.meshgrid(g, g)
    k = (xx**2 + yy**2 <= r * r).astype(np.float32).reshape(2 * n + 1, sub, 2 * n + 1, sub).mean(axis=(1, 3))
    return k / k.sum()


def srgb8(linear: np.ndarray) -> np.ndarray:
    v = np.clip(linear, 0.0, 1.0)
    enc = np.where(v <= 0.0031308, 12.92 * v, 1.055 * v ** (1 / 2.4) - 0.055)
    return np.floor(enc * 255.0 + 0.5).astype(np.uint8)


def render(chart: np.ndarray, blur_px: float, seed: int, dark: float = 0.06, light: float = 0.7,
           noise: tuple[float, float] = NOISE) -> np.ndarray:
    """8-bit luma of ``chart`` through a pillbox of ``blur_px``, the base PSF, square pixels, noise, sRGB."""
    import cv2

    img = (dark + (light - dark) * chart).astype(np.float32)
    kernel = pillbox(blur_px)
    if kernel.size > 1:
        img = cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT)
    img = cv2.GaussianBlur(img, (0, 0), BASE_SIGMA_PX * OVERSAMPLE)
    h, w = img.shape
    img = img.reshape(h // OVERSAMPLE, OVERSAMPLE, w // OVERSAMPLE, OVERSAMPLE).mean(axis=(1, 3), dtype=np.float64)
    rng = np.random.default_rng(seed)
    img += rng.standard_normal(img.shape) * np.sqrt(noise[0] * img + noise[1])
    return srgb8(img)


def flat(level: float, seed: int, noise: tuple[float, float] = NOISE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = level + rng.standard_normal((SIZE_PX, SIZE_PX)) * np.sqrt(noise[0] * level + noise[1])
    return srgb8(img)


#: Focus positions (mount units), best focus and blur per unit: true blur = SLOPE |p - P0| px.
POSITIONS = np.arange(-7, 8) * 0.5
P0, SLOPE = 0.2, 2.0


def true_blur(p: np.ndarray | float) -> np.ndarray:
    return SLOPE * np.abs(np.asarray(p) - P0)


def sweep(positions: np.ndarray = POSITIONS) -> list[tuple[float, np.ndarray]]:
    chart = checkerboard()
    return [(float(p), render(chart, float(true_blur(p)), seed=i)) for i, p in enumerate(positions)]


@pytest.fixture(scope="module")
def focus_sweep() -> list[tuple[float, np.ndarray]]:
    return sweep()


@pytest.fixture(scope="module")
def flats() -> list[np.ndarray]:
    return [flat(0.3, 100), flat(0.3, 101)]


# --- the response -----------------------------------------------------------------------------------

def test_response_against_scipy_laplacian_and_the_twin_firmware() -> None:
    from station.twin import firmware as fw

    rng = np.random.default_rng(4)
    luma = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    kernel = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]])
    expected = np.abs(ndimage.correlate(luma.astype(np.int64), kernel, mode="nearest"))
    got = peaking_response(luma)
    assert got.dtype == np.int16 and np.array_equal(got, expected)
    assert np.array_equal(got, fw.peaking_response(luma))
    for t in (1, 60, 300, 1020):
        twin = fw.peaking_mask(luma, {"enabled": True, "threshold": t}, "golden")
        assert np.array_equal(twin != 0, peaking_mask(luma, t))
    assert peaking_response(np.full((4, 4), 255, np.uint8)).max() == 0  # flat, border replicated
    assert peaking_response(np.array([[0, 255]], np.uint8)).tolist() == [[255, 255]]
    rgb = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    assert np.array_equal(peaking_response(rgb), fw.peaking_response(fw.luma(rgb)))


# --- the calibration on a sweep of known blur ---------------------------------------------------------

def test_calibration_finds_the_true_in_focus_range_and_blur(focus_sweep, flats) -> None:
    result = calibrate_peaking(focus_sweep, flats, coc_px=COC_PX)
    truth = true_blur(POSITIONS)
    assert np.max(np.abs(np.array(result.blur_px) - truth)[truth <= 6.0]) < 0.35
    assert result.in_focus_frames == (truth <= COC_PX).tolist()
    assert result.beyond_2dof_frames == (truth > 2 * COC_PX).tolist()
    in_focus = POSITIONS[truth <= COC_PX]
    assert result.in_focus == (in_focus.min(), in_focus.max())
    assert abs(result.best_focus - P0) < 0.1
    lo, hi = result.feasible
    assert lo <= result.threshold <= hi
    assert result.threshold == pytest.approx(np.sqrt(lo * hi), abs=0.5)


def test_threshold_meets_the_three_limits_against_the_true_focus_state(focus_sweep, flats) -> None:
    result = calibrate_peaking(focus_sweep, flats, coc_px=COC_PX)
    t = result.threshold
    edges = true_edge_pixels()
    truth = true_blur(POSITIONS)
    for (p, luma), blur in zip(focus_sweep, truth, strict=True):
        coverage = edge_coverage(peaking_mask(luma, t), edges)
        if blur <= COC_PX:
            assert coverage >= MIN_IN_FOCUS_COVERAGE, (p, blur, coverage)
        elif blur > 2 * COC_PX:
            assert coverage <= MAX_FAR_COVERAGE, (p, blur, coverage)
    for f in [*flats, flat(0.3, 202), flat(0.15, 203)]:  # and flats the calibration never saw
        assert verify_peaking_flat(peaking_mask(f, t))["pass"]
    # between twice the DoF and the DoF itself: no limit, but coverage falls with blur
    cov = [edge_coverage(peaking_mask(luma, t), edges) for _, luma in focus_sweep]
    order = np.argsort(truth)
    assert cov[order[0]] > cov[order[-1]]


def test_verify_peaking_on_true_state(focus_sweep, flats) -> None:
    result = calibrate_peaking(focus_sweep, flats, coc_px=COC_PX)
    edges = true_edge_pixels()
    sharp = focus_sweep[int(np.argmin(true_blur(POSITIONS)))][1]
    far = focus_sweep[0][1]  # blur 7.4 px
    assert verify_peaking(peaking_mask(sharp, result.threshold), edges, in_focus=True)["pass"]
    assert verify_peaking(peaking_mask(far, result.threshold), edges, in_focus=False)["pass"]
    # a firmware with peaking off: an empty mask fails in focus
    assert not verify_peaking(np.zeros_like(sharp), edges, in_focus=True)["pass"]
    # a threshold far too low flags the far frame and the flats
    assert not verify_peaking(peaking_mask(far, 5), edges, in_focus=False)["pass"]
    assert not verify_peaking_flat(peaking_mask(flats[0], 5))["pass"]
    assert MAX_FLAT_RATE == 0.001


def test_sweep_never_in_focus_gives_no_threshold(flats) -> None:
    positions = np.linspace(1.6, 4.0, 7)  # true blur 2.8 .. 7.6 px, all beyond the 2 px CoC
    with pytest.raises(PeakingCalibrationError, match=r"focus sweep never reaches focus: smallest blur "
                                                      r"\d+\.\d\d px > coc 2 px"):
        calibrate_peaking(sweep(positions), flats, coc_px=COC_PX)


def test_conflicting_limits_name_the_constraints(focus_sweep) -> None:
    noisy = [flat(0.3, 300, noise=(0.01, 1e-4))]  # flats far noisier than the chart frames' edges
    with pytest.raises(PeakingCalibrationError, match=r"no peaking threshold meets all constraints: "
                                                      r"flat-field noise needs T >= \d+.*but in-focus frames need "
                                                      r"T <= \d+"):
        calibrate_peaking(focus_sweep, noisy, coc_px=COC_PX)


def test_bad_inputs() -> None:
    with pytest.raises(PeakingCalibrationError, match="no flat-field frames"):
        calibrate_peaking([(0.0, np.zeros((8, 8), np.uint8)), (1.0, np.zeros((8, 8), np.uint8))], [])
    with pytest.raises(PeakingCalibrationError, match="uniform: no chart edges"):
        calibrate_peaking([(0.0, np.full((32, 32), 9, np.uint8)), (1.0, np.full((32, 32), 9, np.uint8))],
                          [np.full((32, 32), 9, np.uint8)])
    with pytest.raises(ValueError, match="8-bit"):
        peaking_response(np.zeros((4, 4), np.uint16))

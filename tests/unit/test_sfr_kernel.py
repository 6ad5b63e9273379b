"""The compiled e-SFR kernels (calibration._sfrk) against the numpy reference path of calibration.sfr.

The kernels change no maths: on varied edges (angles, orientations, polarities, sizes, curvature, noise,
memory layouts, every option) every figure of the result must equal the reference's to ~1e-9, the fit must
choose the same order and rows, and unmeasurable ROIs must fail with the same message.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr

from calibration import sfr_fit, sfr_steps
from calibration.sfr import SfrError, mtf_at, mtf_crossing, sfr
from calibration.sfr_fit import FitError, fit_edge
from tests.unit.sfr_synth import edge_image

pytest.importorskip("calibration._sfrk", reason="the optional C kernel is not built (no C compiler)")

TOL = 1e-9


def _curved_edge(h: int, w: int, angle_deg: float, sagitta_coef: float, sigma: float, noise: float,
                 seed: int) -> np.ndarray:
    """A Gaussian-blurred edge ``x = x0 + tan(a) y + c y^2`` (point-sampled), 0.2..0.8, with noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    yc = yy - (h - 1) / 2
    t = math.radians(angle_deg)
    edge_x = (w - 1) / 2 + math.tan(t) * yc + sagitta_coef * yc ** 2
    img = 0.2 + 0.6 * ndtr((xx - edge_x) * math.cos(t) / sigma)
    return img + np.random.default_rng(seed).normal(0.0, noise, img.shape)


def _cases() -> list[tuple[str, np.ndarray]]:
    cases = []
    rng = np.random.default_rng(7)
    for i in range(24):
        h = int(rng.integers(40, 160))
        w = int(rng.integers(32, 140))
        angle = float(rng.uniform(2.0, 30.0)) * (1 if i % 2 else -1)
        sagitta = float(rng.choice([0.0, 0.0, 2e-4, 6e-4])) * (1 if i % 3 else -1)
        img = _curved_edge(h, w, angle, sagitta, float(rng.uniform(0.5, 2.5)), float(rng.choice([0, 0.002, 0.01])),
                           i)
        if i % 4 >= 2:
            img = 1.0 - img
        if i % 5 == 1:
            img = img.T  # a Fortran-order view, read in place by the kernel
        elif i % 5 == 2:
            img = np.ascontiguousarray(img.T)
        elif i % 5 == 3:
            img = img[::-1, 1:]  # negative strides: copied first
        cases.append((f"edge{i}", img))
    cases.append(("uint16", np.round(_curved_edge(96, 80, 5.0, 0.0, 1.0, 0.003, 99) * 1000).astype(np.uint16)))
    # power-of-two ESF lengths: the MTF of the C rfft, vertical and turned, square and not
    cases.append(("square128", _curved_edge(128, 128, 7.0, 0.0, 1.0, 0.004, 100)))
    cases.append(("turned64x128", 1.0 - _curved_edge(128, 64, -9.0, 3e-4, 0.8, 0.002, 101).T))
    cases.append(("wide64x128", _curved_edge(64, 128, 11.0, 0.0, 1.3, 0.0, 102)))
    return cases


def _assert_same(fast, ref, shape: tuple[int, int]) -> None:
    for name in ("mtf50_cy_px", "mtf_nyq2", "angle_deg", "esf_pitch_px", "fit_rms_px", "contrast"):
        got, want = getattr(fast, name), getattr(ref, name)
        assert got == pytest.approx(want, rel=TOL, abs=TOL, nan_ok=True), name
    for name in ("freq_cy_px", "mtf", "esf", "lsf"):
        np.testing.assert_allclose(getattr(fast, name), getattr(ref, name), rtol=TOL, atol=TOL, err_msg=name)
    assert fast.orientation == ref.orientation
    assert fast.empty_bins == ref.empty_bins
    nlin = shape[1] if ref.orientation == "horizontal" else shape[0]
    rows = np.arange(nlin, dtype=np.float64)  # the edge polynomials over the ROI's rows, compared as curves
    np.testing.assert_allclose(np.polyval(fast.edge_fit, rows), np.polyval(ref.edge_fit, rows), rtol=0, atol=1e-9,
                               err_msg="edge_fit")
    if ref.fit_rms_px > 1e-6:
        # (on a noise-free synthetic edge that a polynomial fits to rounding, every order above the true one
        # fits as well as it, and which one the F-test keeps is decided by rounding noise: equal curves suffice)
        assert fast.extra["fit_order"] == ref.extra["fit_order"]
    assert fast.extra["rows_used"] == ref.extra["rows_used"]
    for key in ("rise_10_90_px", "lsf_half_width_px", "noise"):
        assert fast.extra[key] == pytest.approx(ref.extra[key], rel=TOL, abs=TOL), key
    assert fast.flags == ref.flags
    for key in ("modulation", "contrast_to_noise", "bend_px"):
        assert fast.quality[key] == pytest.approx(ref.quality[key], rel=TOL, abs=TOL), key


OPTIONS = [
    {},
    {"fit_order": 1},
    {"fit_order": 3},
    {"fit_order": 5, "window": "hamming"},
    {"window": "none", "lsf_span": "full"},
    {"oversample": 3, "correct_binning": False},
    {"integer_cycles": False, "tukey_alpha": 0.3},
    {"bin_phase": True},
    {"plateau_slope": True},
    {"clip_level": 0.79},
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_kernel_path_equals_the_numpy_reference_on_varied_edges(options: dict) -> None:
    measured = 0
    orders = set()
    for name, img in _cases():
        try:
            ref = sfr(img, kernel=False, **options)
        except SfrError as exc:
            with pytest.raises(SfrError) as got:
                sfr(img, **options)
            assert str(got.value) == str(exc), name
            continue
        fast = sfr(img, **options)
        _assert_same(fast, ref, img.shape)
        measured += 1
        orders.add(ref.extra["fit_order"])
    assert measured >= 20
    if options.get("fit_order", "auto") == "auto":
        assert len(orders) >= 2  # straight and bent edges both took part


@pytest.mark.parametrize(("roi", "message"), [
    (np.full((64, 64), 0.5), "no edge"),
    (np.random.default_rng(3).normal(0.5, 0.05, (64, 64)), "no edge"),
    (edge_image((64, 64), 0.5, 1.0), "too close to the pixel axis"),
    (np.where(np.arange(64)[None, :] < 20, 0.2, 0.8) + np.zeros((64, 1)), "too close to the pixel axis"),
])
def test_kernel_path_refuses_what_the_reference_refuses(roi: np.ndarray, message: str) -> None:
    for kernel in (True, False):
        with pytest.raises(SfrError, match=message):
            sfr(roi, kernel=kernel)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_kernel_path_refuses_non_finite_pixels_in_any_layout(bad: float) -> None:
    img = edge_image((64, 64), 5.0, 1.0)
    img[40, 3] = bad
    for roi in (img, img.T, img[:, 1:]):
        with pytest.raises(SfrError, match="non-finite"):
            sfr(roi)


def test_fit_kernel_equals_the_numpy_fit() -> None:
    rng = np.random.default_rng(3)
    orders = []
    for trial in range(150):
        n = int(rng.integers(12, 200))
        y = np.arange(n, dtype=np.float64)
        yc = y - n / 2
        x = 50 + 0.1 * y + rng.choice([0, 1e-3, 3e-3]) * yc ** 2 + rng.choice([0, 1e-5]) * yc ** 3
        x = x + rng.normal(0, rng.choice([0.01, 0.1, 0.3]), n)
        if trial % 3 == 0:
            x[rng.integers(0, n, 3)] += 5.0  # outliers
        if trial % 5 == 0:
            x[rng.integers(0, n, 2)] = np.nan
        for max_order, select in ((1, True), (5, True), (5, False), (3, False), (2, True)):
            fast = fit_edge(y, x, max_order, select=select)
            ref = fit_edge(y, x, max_order, select=select, kernel=False)
            assert fast.order == ref.order
            np.testing.assert_array_equal(fast.keep, ref.keep)
            np.testing.assert_allclose(fast(y), ref(y), rtol=0, atol=1e-9)
            np.testing.assert_allclose(fast.fitted(y), ref(y), rtol=0, atol=1e-9)
            assert fast.slope_px == pytest.approx(ref.slope_px, abs=1e-12)
            assert fast.bend_px == pytest.approx(ref.bend_px, abs=1e-9)
            kept = fast.keep
            rms = math.sqrt(float(np.mean((x[kept] - ref(y)[kept]) ** 2)))
            assert fast.rms_px == pytest.approx(rms, rel=1e-9, abs=1e-12)
            orders.append(fast.order)
    assert set(orders) >= {1, 2, 3, 5}


def test_fit_kernel_raises_when_too_few_rows() -> None:
    y = np.arange(20, dtype=np.float64)
    x = np.full(20, np.nan)
    x[:4] = 1.0
    for kernel in (True, False):
        with pytest.raises(FitError):
            fit_edge(y, x, 5, kernel=kernel)


def test_crossing_kernel_equals_the_python_steps() -> None:
    rng = np.random.default_rng(5)
    freq = np.arange(200) / 256.0
    for _ in range(200):
        mtf = np.exp(-(freq / rng.uniform(0.05, 0.6)) ** rng.uniform(1.0, 3.0)) + rng.normal(0, 0.01, freq.size)
        for level in (0.5, 0.1, 0.9):
            want = mtf_crossing(freq, mtf, level, kernel=False)
            got = mtf_crossing(freq, mtf, level)
            assert got == pytest.approx(want, abs=1e-12, nan_ok=True)
    assert math.isnan(mtf_crossing(freq, np.ones_like(freq)))


def test_without_the_kernel_module_the_numpy_path_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    img = _curved_edge(96, 96, 6.0, 4e-4, 1.0, 0.002, 11)
    fast = sfr(img)
    monkeypatch.setattr(sfr_steps, "_kernel", None)
    monkeypatch.setattr(sfr_fit, "_kernel", None)
    _assert_same(fast, sfr(img), img.shape)


def test_edges_measured_on_threads_equal_the_serial_ones() -> None:
    # the kernels release the GIL while they compute: two threads must not disturb each other's results
    from concurrent.futures import ThreadPoolExecutor

    rois = [img for _, img in _cases()[:12]]

    def mtf50(roi: np.ndarray) -> float:
        try:
            return sfr(roi).mtf50_cy_px
        except SfrError:
            return -1.0

    serial = [mtf50(roi) for roi in rois]
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = list(pool.map(mtf50, rois * 3))
    assert threaded == serial * 3


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 1.0])
def test_centroid_kernel_decides_the_window_region_of_every_sample_as_the_reference(alpha: float) -> None:
    # the C kernel finds the Tukey window's tapers and flat top per row from where its edges fall: centres on whole
    # and half pixels (samples exactly on a region's bound), near and beyond the ROI's sides, and half-widths whose
    # flat top ends exactly on a sample must give the reference's centroids
    rng = np.random.default_rng(int(alpha * 100))
    nlin, npix = 160, 64
    a = np.cumsum(rng.uniform(0.0, 1.0, (nlin, npix)), axis=1)  # rising rows: every weight counts
    centres = np.concatenate([rng.uniform(-3.0, npix + 3.0, 100), np.round(rng.uniform(5, npix - 5, 30)),
                              np.round(rng.uniform(5, npix - 5, 30)) + 0.5])
    for half_width in (3.0, 6.0, 8.0, 12.4, 20.0):
        ref = sfr_steps._row_centroids(a, centres, half_width, "tukey", alpha)
        got = sfr_steps._row_centroids(a, centres, half_width, "tukey", alpha, use_kernel=True)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12, err_msg=f"half width {half_width}")


@pytest.mark.parametrize("nbin", [4, 8, 64, 512, 2048, 384])
def test_mtf_kernel_equals_numpys_rfft_and_steps(nbin: int) -> None:
    # a power-of-two LSF goes through the C rfft, any other length through np.fft.rfft: both as the numpy steps
    rng = np.random.default_rng(nbin)
    lsf = np.exp(-0.5 * ((np.arange(nbin) - nbin / 2) / max(nbin / 40, 0.7)) ** 2) + rng.normal(0, 1e-3, nbin)
    pitch = 0.2437
    freq, mtf, mtf50, nyq2, nreport = sfr_steps.mtf_kernel(lsf, True, pitch, 1.0 + 1e-12, 0.25)
    kk, divisor = sfr_steps._spectrum_axis(nbin, True)
    spec = np.abs(np.fft.rfft(lsf))
    want = spec / spec[0] / divisor
    np.testing.assert_allclose(mtf, want, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(freq, kk / pitch)
    assert nreport == int(np.count_nonzero(kk / pitch <= 1.0 + 1e-12))
    assert mtf50 == pytest.approx(mtf_crossing(kk / pitch, want, 0.5, kernel=False), rel=1e-12, nan_ok=True)
    assert nyq2 == pytest.approx(mtf_at(kk / pitch, want, 0.25), rel=1e-12, nan_ok=True)
    assert sfr_steps.mtf_kernel(np.zeros(nbin), True, pitch, 1.0, 0.25) is None  # integrates to zero

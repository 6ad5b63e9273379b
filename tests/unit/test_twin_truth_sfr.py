"""ISO 12233 e-SFR (``calibration.edges`` + ``calibration.sfr``) on the twin's slanted-edge chart, against the
twin's optics truth.

The capture: the SFR chart 1.3 m from a Noctilux-M 50 f/0.95 wide open, focused on it (44 edges across the
field). Its Gaussian PSF (sigma 0.78 px) is the widest the catalog has in focus: the MTF50 of a G plane
(0.245 c/px) stays under the plane's Nyquist (0.25 c/px); sharper lenses (sigma ~0.2 px: Summicron at f/5.6,
the main camera) put MTF50 near 0.57 c/px, past even the full mosaic's Nyquist, where no CFA plane can
measure it. The mosaic is divided by a flat field at the same settings (ISO 12233 practice: the f/0.95
lens loses 30 % to the corners, and an illumination slope across an edge tilts its ESF plateaus); edges are
found and measured as ``station analyze sfr --plane G`` does for a DNG (found on the 2x2-binned mosaic,
measured on the Gr and Gb planes, MTFs averaged).

The true MTF normal to an edge at angle t off the pixel axis is what the truth names (``truth["psf"]``:
``station.twin.optics.PSF_MODEL``) and ``station.twin.optics.edge_mtf`` computes from the twin's own kernels:
the square 6.4 um CI pixel (the render integrates the irradiance exactly over it), the defocus disc
(``truth["focus"]["blur_circle_px"]``, ~0 here) and the lens's Gaussian of ``truth["psf"]["sigma_px"]["g"]``,
which the twin applies to the area-sampled image as Lindeberg's discrete Gaussian, response
``exp(s^2 (cos 2 pi fx - 1)) exp(s^2 (cos 2 pi fy - 1))``: 6 % above a continuous ``exp(-2 pi^2 s^2 f^2)``
at 0.2 c/px (MTF50 +8.8 % here), which is why the truth names the discrete model and not "Gaussian".
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from calibration.edges import find_edges
from calibration.sfr import SfrError, cfa_at, sfr_cfa
from station.twin import optics
from tests.unit.twin_scenes import sfr_raw, sfr_scene

LENS, APERTURE, DISTANCE_MM = "noctilux-m-50-f0.95", 0.95, 1300.0
#: The issue's targets over the edges measured.
MEAN_ABS_ERROR_PCT, MAX_ABS_ERROR_PCT = 0.5, 1.5


def true_mtf50(sigma_px: float, blur_px: float, angle_deg: float) -> float:
    """Frequency (c/px) where the twin's own MTF (``optics.edge_mtf``) falls to 0.5 (monotonic below 1 c/px here)."""
    return brentq(lambda f: float(optics.edge_mtf(f, angle_deg, sigma_px, blur_px)) - 0.5, 1e-4, 0.999)


def measure_g_plane(mosaic: np.ndarray, **options) -> list[tuple[tuple[int, int, int, int], float, float]]:
    """Every usable edge of an RGGB mosaic (linear, above black): ((x, y, w, h) in sensor px, MTF50 in cycles
    per sensor px, angle deg), found on the 2x2-binned mosaic and measured on the G planes, as the station
    does for a DNG (``options`` go to ``sfr``)."""
    m = np.asarray(mosaic, dtype=np.float32)
    binned = 0.25 * (m[0::2, 0::2] + m[0::2, 1::2] + m[1::2, 0::2] + m[1::2, 1::2])
    out = []
    for e in find_edges(binned, roi_along_px=64, roi_across_px=32, min_along_px=12):
        x, y, w, h = 2 * e.x, 2 * e.y, 2 * e.w, 2 * e.h
        try:
            res = sfr_cfa(m[y:y + h, x:x + w], cfa_at("RGGB", x, y), "G", **options)
        except SfrError:
            continue  # found on the binned mosaic, too short on a plane: the station skips it too
        out.append(((x, y, w, h), 0.5 * res.mtf50_cy_px, res.angle_deg))  # plane px are 2 sensor px
    return out


def mtf50_errors_pct(mosaic: np.ndarray, truth: dict, **options) -> np.ndarray:
    sigma = truth["psf"]["sigma_px"]["g"]
    blur = truth["focus"]["blur_circle_px"]
    edges = measure_g_plane(mosaic, **options)
    return np.array([100.0 * (mtf50 / true_mtf50(sigma, blur, angle) - 1.0) for _, mtf50, angle in edges])


def _flat_fielded() -> tuple[np.ndarray, dict]:
    chart, flat, truth = sfr_scene(LENS, APERTURE, DISTANCE_MM)
    return chart / flat, truth


def _summary(errors: np.ndarray) -> str:
    return (f"{len(errors)} edges: mean {errors.mean():+.2f}%, mean |error| {np.abs(errors).mean():.2f}%, "
            f"largest {np.abs(errors).max():.2f}%")


def test_scene_is_in_focus_with_the_widest_in_focus_psf():
    _, truth = _flat_fielded()
    assert truth["lens"] == LENS and truth["focus"]["in_focus"]
    assert truth["focus"]["blur_circle_px"] < 0.01
    assert truth["psf"]["sigma_px"]["g"] == pytest.approx(0.78, abs=0.01)


def test_truth_names_the_psf_the_render_applies():
    """The truth's PSF is the discrete Gaussian on area-sampled pixels (not a continuous Gaussian), and
    ``optics.system_mtf`` is exactly the transfer function of ``optics.blur`` (its impulse response's DFT)."""
    _, truth = _flat_fielded()
    assert truth["psf"]["model"] == optics.PSF_MODEL
    assert truth["psf"]["model"].startswith("discrete-gaussian") and "area-sampled" in truth["psf"]["model"]
    n = 96
    f = np.fft.fftfreq(n)
    fx, fy = np.meshgrid(f, f)
    pixel = np.abs(np.sinc(fx) * np.sinc(fy))
    for sigma, diameter in ((0.78, 0.0), (0.3, 0.2), (0.5, 5.0)):  # Gaussian; disc folded in; Gaussian * disc
        impulse = np.zeros((n, n), np.float32)
        impulse[n // 2, n // 2] = 1.0
        rendered = np.abs(np.fft.fft2(np.fft.ifftshift(optics.blur(impulse, sigma, diameter))))
        np.testing.assert_allclose(rendered * pixel, optics.system_mtf(fx, fy, sigma, diameter), atol=1e-6)
    # ... which is not the continuous Gaussian: 6 % above it at 0.2 c/px for sigma 0.78 px
    continuous = np.exp(-2.0 * np.pi**2 * 0.78**2 * 0.2**2) * np.sinc(0.2)
    assert float(optics.system_mtf(0.2, 0.0, 0.78, 0.0)) / continuous == pytest.approx(1.06, abs=0.01)


def test_g_plane_mtf50_matches_the_truths_psf_across_the_field():
    """Noise-free capture (the mean of infinitely many frames), flat-fielded: the issue's targets against the
    MTF of the PSF the truth names (was an expected failure while the truth said "Gaussian": +8.8 %)."""
    mosaic, truth = _flat_fielded()
    errors = mtf50_errors_pct(mosaic, truth)
    print(f"\ntwin SFR, {LENS} f/{APERTURE:g} at {DISTANCE_MM:g} mm, G plane vs the truth's PSF: {_summary(errors)}")
    assert len(errors) >= 40  # the 13 squares' edges across the field, corners included
    assert np.abs(errors).mean() <= MEAN_ABS_ERROR_PCT
    assert np.abs(errors).max() <= MAX_ABS_ERROR_PCT


def test_g_plane_mtf50_on_one_raw_frame_is_unbiased():
    """One raw frame (shot noise at 68 % of full well on the white, read noise, PRNU, DSNU, 10-bit ADC),
    flat-fielded with the noise-free flat: the noise scatters each edge (SNR ~100 on the plane) but the
    mean over the field stays within the issue's 0.5 %."""
    raw, truth = sfr_raw(LENS, APERTURE, DISTANCE_MM)
    _, flat, _ = sfr_scene(LENS, APERTURE, DISTANCE_MM)
    mosaic = (raw.astype(np.float32) - np.float32(truth["black_level"])) / flat
    errors = mtf50_errors_pct(mosaic, truth)
    print(f"\ntwin SFR on one raw frame: {_summary(errors)}")
    assert len(errors) >= 40
    assert abs(errors.mean()) <= MEAN_ABS_ERROR_PCT
    assert np.abs(errors).max() <= 6.0  # gross failures only: one frame's noise, not the method


def test_without_a_flat_the_plateau_fit_takes_the_vignetting_out():
    """The same capture not flat-fielded: the f/0.95 falloff across each ROI biases MTF50 up to 1.25 %
    (mean |error| 0.49 %); ``plateau_slope`` fits the shading to each ROI's plateaus and divides it out
    (0.28 %, 0.11 %: as good as the flat)."""
    chart, _, truth = sfr_scene(LENS, APERTURE, DISTANCE_MM)
    plain = mtf50_errors_pct(chart, truth)
    fitted = mtf50_errors_pct(chart, truth, plateau_slope=True)
    print(f"\ntwin SFR without a flat: {_summary(plain)} as measured; {_summary(fitted)} with the plateau fit")
    assert np.abs(plain).max() > MAX_ABS_ERROR_PCT * 0.8  # what the fit is for
    assert np.abs(fitted).mean() <= MEAN_ABS_ERROR_PCT
    assert np.abs(fitted).max() <= MAX_ABS_ERROR_PCT

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

The true MTF normal to an edge at angle t off the pixel axis, from the truth's factors:
``|sinc(f cos t) sinc(f sin t)|`` (the square 6.4 um CI pixel: the render integrates the irradiance exactly
over it) x ``|2 J1(pi d f) / (pi d f)|`` (the defocus disc, ``truth["focus"]["blur_circle_px"]``, ~0 here)
x the Gaussian PSF of ``truth["psf"]["sigma_px"]["g"]``. The twin applies that Gaussian to the area-sampled
image as Lindeberg's discrete Gaussian (``station.twin.optics.gaussian_taps``), whose response
``exp(s^2 (cos 2 pi fx - 1)) exp(s^2 (cos 2 pi fy - 1))`` lies 6 % above the continuous
``exp(-2 pi^2 s^2 f^2)`` at 0.2 c/px: the measurement follows the discrete one, and the comparison with the
continuous Gaussian (what ``truth["psf"]["model"]`` names) is an expected failure until the twin's PSF and
its truth agree.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import j1

from calibration.edges import find_edges
from calibration.sfr import SfrError, cfa_at, sfr_cfa
from tests.unit.twin_scenes import sfr_raw, sfr_scene

LENS, APERTURE, DISTANCE_MM = "noctilux-m-50-f0.95", 0.95, 1300.0
#: The issue's targets over the edges measured.
MEAN_ABS_ERROR_PCT, MAX_ABS_ERROR_PCT = 0.5, 1.5


def true_mtf(freq_cy_px: float, sigma_px: float, blur_px: float, angle_deg: float, *, discrete: bool) -> float:
    """MTF normal to an edge ``angle_deg`` off the pixel axis: pixel aperture x defocus disc x Gaussian PSF
    (continuous, or Lindeberg's discrete Gaussian on the pixel grid with ``discrete``)."""
    t = math.radians(angle_deg)
    fx, fy = freq_cy_px * math.cos(t), freq_cy_px * math.sin(t)
    pixel = abs(np.sinc(fx) * np.sinc(fy))
    x = math.pi * blur_px * freq_cy_px
    disc = abs(2.0 * j1(x) / x) if x > 1e-9 else 1.0
    s2 = sigma_px * sigma_px
    if discrete:
        gauss = math.exp(s2 * (math.cos(2 * math.pi * fx) - 1.0) + s2 * (math.cos(2 * math.pi * fy) - 1.0))
    else:
        gauss = math.exp(-2.0 * math.pi**2 * s2 * freq_cy_px**2)
    return pixel * disc * gauss


def true_mtf50(sigma_px: float, blur_px: float, angle_deg: float, *, discrete: bool) -> float:
    """Frequency (c/px) where ``true_mtf`` falls to 0.5 (it falls monotonically below 1 c/px here)."""
    return brentq(lambda f: true_mtf(f, sigma_px, blur_px, angle_deg, discrete=discrete) - 0.5, 1e-4, 0.999)


def measure_g_plane(mosaic: np.ndarray) -> list[tuple[tuple[int, int, int, int], float, float]]:
    """Every usable edge of an RGGB mosaic (linear, above black): ((x, y, w, h) in sensor px, MTF50 in cycles
    per sensor px, angle deg), found on the 2x2-binned mosaic and measured on the G planes, as the station
    does for a DNG."""
    m = np.asarray(mosaic, dtype=np.float32)
    binned = 0.25 * (m[0::2, 0::2] + m[0::2, 1::2] + m[1::2, 0::2] + m[1::2, 1::2])
    out = []
    for e in find_edges(binned, roi_along_px=64, roi_across_px=32, min_along_px=12):
        x, y, w, h = 2 * e.x, 2 * e.y, 2 * e.w, 2 * e.h
        try:
            res = sfr_cfa(m[y:y + h, x:x + w], cfa_at("RGGB", x, y), "G")
        except SfrError:
            continue  # found on the binned mosaic, too short on a plane: the station skips it too
        out.append(((x, y, w, h), 0.5 * res.mtf50_cy_px, res.angle_deg))  # plane px are 2 sensor px
    return out


def mtf50_errors_pct(mosaic: np.ndarray, truth: dict, *, discrete: bool) -> np.ndarray:
    sigma = truth["psf"]["sigma_px"]["g"]
    blur = truth["focus"]["blur_circle_px"]
    edges = measure_g_plane(mosaic)
    return np.array([100.0 * (mtf50 / true_mtf50(sigma, blur, angle, discrete=discrete) - 1.0)
                     for _, mtf50, angle in edges])


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


def test_g_plane_mtf50_matches_the_rendered_psf_across_the_field():
    """Noise-free capture (the mean of infinitely many frames), flat-fielded: the issue's targets."""
    mosaic, truth = _flat_fielded()
    errors = mtf50_errors_pct(mosaic, truth, discrete=True)
    print(f"\ntwin SFR, {LENS} f/{APERTURE:g} at {DISTANCE_MM:g} mm, G plane vs the rendered PSF: {_summary(errors)}")
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
    errors = mtf50_errors_pct(mosaic, truth, discrete=True)
    print(f"\ntwin SFR on one raw frame: {_summary(errors)}")
    assert len(errors) >= 40
    assert abs(errors.mean()) <= MEAN_ABS_ERROR_PCT
    assert np.abs(errors).max() <= 6.0  # gross failures only: one frame's noise, not the method


@pytest.mark.xfail(strict=True, reason="twin PSF: station.twin.optics.blur applies Lindeberg's discrete Gaussian "
                                       "to the area-sampled image, MTF50 +8.8 % over the continuous Gaussian that "
                                       "truth['psf']['model'] names")
def test_g_plane_mtf50_matches_the_truths_continuous_gaussian():
    mosaic, truth = _flat_fielded()
    errors = mtf50_errors_pct(mosaic, truth, discrete=False)
    print(f"\ntwin SFR vs a continuous Gaussian PSF: {_summary(errors)}")
    assert np.abs(errors).mean() <= MEAN_ABS_ERROR_PCT
    assert np.abs(errors).max() <= MAX_ABS_ERROR_PCT

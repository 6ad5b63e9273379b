"""EMVA 1288 4.0 nonuniformity with and without the low-frequency part (``calibration.emva1288``).

EMVA 1288 4.0's DSNU1288 / PRNU1288 take the total spatial variance of the averaged frames, so a shading of
the light (or an optics' falloff) counts as nonuniformity; its correction for uneven illumination (8.1) is a
highpass: each image less a 7x7 box, 11x11 box, 3x3 binomial smoothing of itself. Both are reported:
``prnu_pct`` / ``dsnu_e`` (total) and ``prnu_highpass_pct`` / ``dsnu_highpass_e``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from calibration.emva1288 import analyze_pairs, highpass_1288

GAIN_DN_PER_E, BLACK, READ_NOISE_DN = 0.25, 64.0, 1.5
PRNU, DSNU_DN = 0.006, 0.8
SHAPE = (240, 320)


def test_highpass_is_the_standards_filter():
    """Against scipy.ndimage (independent code): y - binomial3(box11(box7(y))), borders reflected."""
    rng = np.random.default_rng(1)
    y = rng.normal(100.0, 5.0, (40, 52)) + np.linspace(0, 30, 52)[None, :]
    smooth = ndimage.uniform_filter(ndimage.uniform_filter(y, 7, mode="reflect"), 11, mode="reflect")
    binomial = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    expected = y - ndimage.convolve(smooth, binomial, mode="reflect")
    np.testing.assert_allclose(highpass_1288(y), expected, atol=1e-9)


@pytest.fixture(scope="module")
def shaded_sensor():
    """A mono sensor with white PRNU and DSNU under a light that falls off by 30 % to the corners."""
    rng = np.random.default_rng(7)
    rows, cols = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    r2 = ((rows - SHAPE[0] / 2) ** 2 + (cols - SHAPE[1] / 2) ** 2) / ((SHAPE[0] / 2) ** 2 + (SHAPE[1] / 2) ** 2)
    shading = 1.0 - 0.3 * r2
    gain_map = 1.0 + PRNU * rng.standard_normal(SHAPE)
    offset = BLACK + DSNU_DN * rng.standard_normal(SHAPE)

    def frame(electrons: float) -> np.ndarray:
        e = rng.poisson(electrons * shading * gain_map).astype(np.float64)
        return offset + GAIN_DN_PER_E * e + rng.normal(0.0, READ_NOISE_DN, SHAPE)

    flats = [(t, frame(t * 4e6), frame(t * 4e6)) for t in np.linspace(0.1e-3, 0.9e-3, 6)]
    darks = [(t, frame(0.0), frame(0.0)) for t in (0.1e-3, 0.9e-3)]
    result = analyze_pairs(flats, darks, cfa=None)["Y"]
    shading_pct = 100.0 * float(np.std(shading) / np.mean(shading))
    return result, shading_pct


def test_prnu_highpass_is_the_pixels_own_and_the_total_holds_the_shading(shaded_sensor):
    result, shading_pct = shaded_sensor
    print(f"\nshaded flats: PRNU total {result.prnu_pct:.3f} %, highpass {result.prnu_highpass_pct:.3f} % "
          f"(truth {100 * PRNU:.3f} %, shading {shading_pct:.2f} % RMS)")
    assert result.prnu_highpass_pct == pytest.approx(100.0 * PRNU, rel=0.05)
    assert result.prnu_pct == pytest.approx(np.hypot(100.0 * PRNU, shading_pct), rel=0.05)


def test_dsnu_highpass_of_a_white_offset_pattern_is_the_total(shaded_sensor):
    result, _ = shaded_sensor
    truth_e = DSNU_DN / GAIN_DN_PER_E
    assert result.dsnu_highpass_e == pytest.approx(truth_e, rel=0.05)
    assert result.dsnu_e == pytest.approx(truth_e, rel=0.05)
    doc = result.to_dict()
    assert doc["prnu_highpass_pct"] == pytest.approx(result.prnu_highpass_pct)
    assert doc["dsnu_highpass_e"] == pytest.approx(result.dsnu_highpass_e)

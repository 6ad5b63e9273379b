"""``station analyze geometry``'s gray image of a CFA mosaic: the green channel of a bilinear demosaic.

A luma mixes R and B, which lateral chromatic aberration magnifies about the axis (three cameras in one
image); the G channel is one camera. Checked against the bilinear demosaic's definition, computed here:
at a G site its own sample, at an R or B site the mean of its four G neighbours, for all four Bayer orders.
"""

from __future__ import annotations

import numpy as np
import pytest

from station.cli.analyze_geometry import to_gray
from station.errors import InputError
from station.imageio import LoadedImage

BLACK, WHITE = 64.0, 1023.0


def _mosaic(cfa: str, green: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A mosaic with ``green`` at the G sites, R at white and B at black (so any R/B leak shows), and the
    mask of G sites."""
    h, w = green.shape
    mosaic = np.empty((h, w), np.float32)
    is_green = np.zeros((h, w), bool)
    for i in range(2):
        for j in range(2):
            colour = cfa[2 * i + j]
            site = (slice(i, None, 2), slice(j, None, 2))
            mosaic[site] = {"G": green[site], "R": WHITE, "B": BLACK}[colour]
            is_green[site] = colour == "G"
    return mosaic, is_green


@pytest.mark.parametrize("cfa", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_cfa_gray_is_the_bilinear_green_channel(cfa):
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:40, 0:48]
    green = (300.0 + 200.0 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + rng.uniform(0, 20, xx.shape)).round()
    mosaic, is_green = _mosaic(cfa, green.astype(np.float32))
    gray = to_gray(LoadedImage(mosaic, "cfa", "test.dng", black_level=BLACK, white_level=WHITE, cfa=cfa))
    scale = 65535.0 / (WHITE - BLACK)
    expected = (mosaic - BLACK) * scale
    neighbours = 0.25 * (expected[:-2, 1:-1] + expected[2:, 1:-1] + expected[1:-1, :-2] + expected[1:-1, 2:])
    inner = np.where(is_green[1:-1, 1:-1], expected[1:-1, 1:-1], neighbours)
    np.testing.assert_allclose(gray[1:-1, 1:-1], inner, atol=2.0)  # uint16 truncation, then rounding


def test_unknown_cfa_order_is_one_line_input_error():
    image = LoadedImage(np.zeros((8, 8), np.float32), "cfa", "x.dng", white_level=1023.0, cfa="RGBW")
    with pytest.raises(InputError, match="RGBW"):
        to_gray(image)

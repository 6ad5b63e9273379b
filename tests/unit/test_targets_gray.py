"""targets.base.to_gray_u8 of an 8-bit RGB capture in integers (issue 13: no float64 frame of a 50 MP preview)
equals the float mean it replaces, rounded, for every sum of three codes."""

from __future__ import annotations

import numpy as np

from targets.base import to_gray_u8


def test_integer_gray_of_rgb8_equals_the_rounded_float_mean() -> None:
    r, g, b = np.meshgrid(np.arange(256), np.arange(256), [0, 1, 2, 85, 128, 170, 253, 254, 255], indexing="ij")
    rgb = np.stack([r, g, b], axis=-1).reshape(256 * 256, 9, 3).astype(np.uint8)
    assert len(np.unique(rgb.astype(int).sum(axis=2))) == 766  # every sum 0..765
    expected = rgb.mean(axis=2).round().astype(np.uint8)
    got = to_gray_u8(rgb)
    assert got.dtype == np.uint8 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(to_gray_u8(rgb[::3, ::2]), expected[::3, ::2])  # a strided view too

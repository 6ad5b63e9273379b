"""The phone's 8-bit preview as the zebra and peaking overlays see it: its BT.709 luma (DESIGN 7)."""

from __future__ import annotations

import numpy as np

#: Rows per band in the luma computation (bounds the int32 temporaries on a 50 MP preview: three of
#: 256 x 8192 x 4 bytes, 24 MB, issue 13).
_BAND_ROWS = 256


def preview_luma(rgb8: np.ndarray) -> np.ndarray:
    """Y' = round(0.2126 R' + 0.7152 G' + 0.0722 B') of an 8-bit RGB preview (H, W, 3) -> uint8 (H, W).

    ITU-R BT.709 luma weights as DESIGN 7; exact integer arithmetic, halves rounded up. A 2-D uint8
    array is taken as luma already and returned as it is.
    """
    rgb8 = np.asarray(rgb8)
    if rgb8.dtype != np.uint8 or not (rgb8.ndim == 2 or (rgb8.ndim == 3 and rgb8.shape[2] == 3)):
        raise ValueError(f"preview luma needs an 8-bit RGB preview (H, W, 3), got {rgb8.dtype} {rgb8.shape}")
    if rgb8.ndim == 2:
        return rgb8
    height = rgb8.shape[0]
    out = np.empty(rgb8.shape[:2], dtype=np.uint8)
    for r0 in range(0, height, _BAND_ROWS):
        band = rgb8[r0:r0 + _BAND_ROWS]
        acc = band[..., 0].astype(np.int32)
        acc *= 2126
        green = band[..., 1].astype(np.int32)
        green *= 7152
        acc += green
        green[...] = band[..., 2]
        green *= 722
        acc += green
        acc += 5000
        acc //= 10000
        out[r0:r0 + _BAND_ROWS] = acc
    return out

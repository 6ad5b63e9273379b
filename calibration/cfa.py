"""The Bayer CFA layout, once: where each colour sits in the 2x2 tile for each pattern (the pattern names the
tile's colours row by row from the top-left pixel, as DNG's CFAPattern and Android's
``SENSOR_INFO_COLOR_FILTER_ARRANGEMENT`` do).

Two namings of the greens: EMVA 1288 / station ``Gr`` (the green on the red row) and ``Gb`` (on the blue row);
Android's ``LENS_SHADING_MAP`` and DngCreator ``G_even`` (the green on tile row 0) and ``G_odd`` (row 1).
"""

from __future__ import annotations

import cv2

#: The four Bayer patterns.
CFA_PATTERNS = ("RGGB", "GRBG", "GBRG", "BGGR")
#: Station channel order (EMVA 1288 per-channel results, SFR planes).
CHANNELS = ("R", "Gr", "Gb", "B")
#: Android's channel order of ``LENS_SHADING_MAP`` and ``SENSOR_BLACK_LEVEL_PATTERN``.
ANDROID_CHANNELS = ("R", "G_even", "G_odd", "B")
#: OpenCV's demosaic code to RGB for each pattern (OpenCV names a mosaic by its second row's second pixel:
#: an RGGB mosaic is OpenCV's "BG").
BAYER_TO_RGB = {"RGGB": cv2.COLOR_BayerBG2RGB, "BGGR": cv2.COLOR_BayerRG2RGB,
                "GRBG": cv2.COLOR_BayerGB2RGB, "GBRG": cv2.COLOR_BayerGR2RGB}
BAYER_TO_BGR = {"RGGB": cv2.COLOR_BayerBG2BGR, "BGGR": cv2.COLOR_BayerRG2BGR,
                "GRBG": cv2.COLOR_BayerGB2BGR, "GBRG": cv2.COLOR_BayerGR2BGR}


class CfaError(ValueError):
    """A CFA pattern that is not one of the four Bayer patterns."""


def check_cfa(cfa: str) -> str:
    """``cfa`` upper-cased, or ``CfaError`` naming the allowed patterns."""
    pattern = str(cfa).upper()
    if pattern not in CFA_PATTERNS:
        raise CfaError(f"CFA pattern must be one of {', '.join(CFA_PATTERNS)}, got {cfa!r}")
    return pattern


def channel_offsets(cfa: str) -> dict[str, tuple[int, int]]:
    """(row, col) in the 2x2 tile of R, Gr (green on the red row), Gb (green on the blue row) and B."""
    p = check_cfa(cfa)
    red_row = p.index("R") // 2
    out: dict[str, tuple[int, int]] = {}
    for i, colour in enumerate(p):
        r, c = divmod(i, 2)
        out[("Gr" if r == red_row else "Gb") if colour == "G" else colour] = (r, c)
    return {name: out[name] for name in CHANNELS}


def android_offsets(cfa: str) -> dict[str, tuple[int, int]]:
    """(row, col) in the 2x2 tile of Android's R, G_even (green on row 0), G_odd (green on row 1) and B."""
    p = check_cfa(cfa)
    out: dict[str, tuple[int, int]] = {}
    for i, colour in enumerate(p):
        r, c = divmod(i, 2)
        out[("G_even" if r == 0 else "G_odd") if colour == "G" else colour] = (r, c)
    return {name: out[name] for name in ANDROID_CHANNELS}


def android_to_station(cfa: str) -> dict[str, str]:
    """Android channel name -> station channel name (``G_even`` is ``Gr`` when row 0 is the red row)."""
    station = {pos: name for name, pos in channel_offsets(cfa).items()}
    return {name: station[pos] for name, pos in android_offsets(cfa).items()}


def channel_slices(cfa: str) -> dict[str, tuple[slice, slice]]:
    """Per station channel, the (rows, cols) slices of its samples in a mosaic (views, no copy)."""
    return {name: (slice(r, None, 2), slice(c, None, 2)) for name, (r, c) in channel_offsets(cfa).items()}


def cfa_at(cfa: str, x: int, y: int) -> str:
    """The 2x2 pattern seen from pixel (x, y) of a mosaic whose (0, 0) pattern is ``cfa`` (a crop's pattern)."""
    p = check_cfa(cfa)
    return "".join(p[((y + i) % 2) * 2 + (x + j) % 2] for i in range(2) for j in range(2))

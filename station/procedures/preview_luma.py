"""A shot's preview as its luma (DESIGN 7, ``calibration.preview.preview_luma``), decoded off the shot a band
of rows at a time (``calibration.preview.png_luma``) so a 50 MP preview never lives as a 150 MB RGB frame on
the analysis pool (issue 13); a PNG that path does not take is decoded whole, as before."""

from __future__ import annotations

from typing import Any

import numpy as np

from calibration.preview import png_luma, preview_luma
from station.procedures.captures import decode_png

#: Previews from this size up are decoded in bands: a 50 MP one (150 MB as RGB); the CI readout's 3 MP one
#: (9 MB) is decoded whole, a quarter faster (80 against 104 ms on this machine), to the same luma.
BANDED_FROM_PIXELS = 16_000_000


def shot_luma(shot: Any) -> np.ndarray | None:
    """The luma (uint8 (H, W)) of ``shot``'s preview, None when it has none; its PNG payload is let go."""
    payload = shot.pngs.pop("preview", None)
    if payload is None:
        preview = shot.preview
        return None if preview is None else preview_luma(preview)
    luma = png_luma(payload, min_pixels=BANDED_FROM_PIXELS)
    return luma if luma is not None else preview_luma(decode_png(payload, "preview"))

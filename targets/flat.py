"""Flat field: a uniform diffuser of reflectance 1.0 filling the whole view (shading, PRNU, EMVA 1288).

There is no pattern to locate: ``detect`` only checks the frame is lit (median above 2 % of the
input's full scale) and returns a centre ROI (the middle 10 % x 10 %) and the whole frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from targets.base import Chart, ChartNotFound, Detection, Painter, Roi

#: Median level, as a fraction of full scale, under which a frame counts as unlit.
LIT_FRACTION = 0.02


def _full_scale(a: np.ndarray) -> float:
    if a.dtype == np.uint8:
        return 255.0
    if a.dtype == np.uint16:
        return 1023.0 if int(a.max(initial=0)) <= 1023 else 65535.0
    return 1.0


class FlatField(Chart):
    name = "flat"
    title = "flat field: uniform diffuser, reflectance 1.0 over the whole view"

    def __init__(self, width_mm: float = 400.0, height_mm: float = 300.0, **kwargs: Any) -> None:
        kwargs.setdefault("background", 1.0)
        super().__init__(width_mm, height_mm, **kwargs)

    def paint(self, painter: Painter) -> None:
        painter.rect(0, 0, self.width_mm, self.height_mm, 1.0, self.background)

    def features_mm(self) -> dict[str, Any]:
        return {"area": np.array([0.0, 0.0, self.width_mm, self.height_mm])}

    def detect(self, image: np.ndarray) -> Detection:
        a = np.asarray(image)
        if a.size == 0 or a.ndim not in (2, 3):
            raise ChartNotFound(self.name, f"the image is empty (shape {a.shape})")
        gray = a.mean(axis=2) if a.ndim == 3 else a
        level = float(np.nanmedian(gray)) if np.isfinite(gray).any() else float("nan")
        if not level > LIT_FRACTION * _full_scale(a):
            raise ChartNotFound(self.name, f"frame is dark (median {level:g}): no light on the diffuser")
        h, w = gray.shape
        cw, ch = max(1, w // 10), max(1, h // 10)
        x0, y0 = (w - cw) // 2, (h - ch) // 2

        def quad(x: float, y: float, ww: float, hh: float) -> np.ndarray:
            return np.array([[x - 0.5, y - 0.5], [x + ww - 0.5, y - 0.5], [x + ww - 0.5, y + hh - 0.5],
                             [x - 0.5, y + hh - 0.5]])

        rois = [Roi("centre", (x0, y0, cw, ch), quad(x0, y0, cw, ch), reflectance=(1.0, 1.0, 1.0)),
                Roi("frame", (0, 0, w, h), quad(0, 0, w, h), reflectance=(1.0, 1.0, 1.0))]
        return Detection(self.name, True, None, rois=rois)

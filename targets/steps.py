"""Grey step chart for the OECF (ISO 14524): 20 neutral patches, densities 0.0 to 1.9 in 0.1 D steps.

Patch i has optical density D_i = 0.1 i and reflectance 0.9 * 10**-D_i (0.9 down to 0.0113,
a 79:1 range), laid out as 2 rows of 10 squares on an 18 % grey sheet, in reading order: step 0
top-left, step 9 top-right, step 10 bottom-left, step 19 bottom-right.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from targets.base import HOLDER_REFLECTANCE, Detection, roi_from_quad
from targets.patches import PatchChart

STEPS = 20
DENSITY_STEP = 0.1
WHITE_STEP = 0.9
COLUMNS = 10


def step_densities(n: int = STEPS, step: float = DENSITY_STEP) -> np.ndarray:
    """Optical densities of the patches, in chart order."""
    return np.arange(n) * step


def step_reflectances(n: int = STEPS, step: float = DENSITY_STEP) -> np.ndarray:
    """Linear reflectances of the patches, in chart order: 0.9 * 10**-D."""
    return WHITE_STEP * 10.0 ** (-step_densities(n, step))


class StepChart(PatchChart):
    name = "steps"
    title = "grey step chart, 20 steps 0.0-1.9 D (OECF, ISO 14524)"
    sheet_reflectance_value = HOLDER_REFLECTANCE

    def patch_rects_mm(self) -> np.ndarray:
        """Patch rectangles (20, 4) as x, y, w, h mm in chart order."""
        gap = 0.01 * self.width_mm
        keep = self.fiducial_keepout_mm() + gap
        rows = STEPS // COLUMNS
        side = min((self.width_mm - 2 * self.fiducial_margin_mm - (COLUMNS - 1) * gap) / COLUMNS,
                   (self.height_mm - 2 * keep - (rows - 1) * gap) / rows)
        if side <= 0:
            raise ValueError(f"steps chart {self.width_mm} x {self.height_mm} mm is too small for 20 patches")
        x0 = (self.width_mm - COLUMNS * side - (COLUMNS - 1) * gap) / 2
        y0 = (self.height_mm - rows * side - (rows - 1) * gap) / 2
        i = np.arange(STEPS)
        return np.stack([x0 + (i % COLUMNS) * (side + gap), y0 + (i // COLUMNS) * (side + gap),
                         np.full(STEPS, side), np.full(STEPS, side)], axis=1)

    def patch_reflectances(self) -> np.ndarray:
        return step_reflectances()

    def features_mm(self) -> dict[str, Any]:
        d = super().features_mm()
        d["densities"] = step_densities()
        return d

    def info(self) -> dict[str, Any]:
        d = super().info()
        d["patches"] = [
            {"index": i, "density": round(float(dens), 3), "reflectance": round(float(r), 6),
             "rect_mm": [round(float(v), 4) for v in rect]}
            for i, (dens, r, rect) in enumerate(
                zip(step_densities(), step_reflectances(), self.patch_rects_mm(), strict=True))
        ]
        d["order"] = "reading order: 2 rows of 10, step 0 top-left"
        return d

    def locate_rois(self, detection: Detection, image_shape: tuple[int, ...]) -> None:
        for i, (quad, refl) in enumerate(zip(self.roi_quads_mm(), step_reflectances(), strict=True)):
            roi = roi_from_quad(f"step{i:02d}", quad, detection.homography, image_shape,
                                reflectance=(float(refl),) * 3,
                                extra={"index": i, "density": round(float(step_densities()[i]), 3)})
            if roi is not None:
                detection.rois.append(roi)

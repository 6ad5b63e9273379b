"""Charts of flat square patches on a sheet (the ColorChecker, the grey steps): painting, ROIs and the
patches' ground truth from the rectangles and reflectances each chart defines."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from targets.base import Painter, centre_quads
from targets.fiducials import FiducialChart

#: Fraction (linear) of each patch that its ROI covers, centred.
ROI_FRACTION = 0.5


class PatchChart(FiducialChart):
    """A fiducial chart of patches: a subclass gives their rectangles and reflectances, in chart order."""

    @abstractmethod
    def patch_rects_mm(self) -> np.ndarray:
        """Patch rectangles (N, 4) as x, y, w, h mm in chart order."""

    @abstractmethod
    def patch_reflectances(self) -> np.ndarray:
        """Reflectance of each patch (N,) or (N, 3), in chart order."""

    def paint(self, painter: Painter) -> None:
        sheet = self.sheet_reflectance_value
        painter.rect(0, 0, self.width_mm, self.height_mm, sheet, self.background)
        for (x, y, w, h), refl in zip(self.patch_rects_mm(), self.patch_reflectances(), strict=True):
            painter.rect(x, y, w, h, refl, sheet)
        self.paint_fiducials(painter)

    def roi_quads_mm(self) -> np.ndarray:
        """ROI quads (N, 4, 2) mm: the centre ``ROI_FRACTION`` of each patch."""
        return centre_quads(self.patch_rects_mm(), ROI_FRACTION)

    def features_mm(self) -> dict[str, Any]:
        d = super().features_mm()
        d.update(patches=self.patch_rects_mm(), rois=self.roi_quads_mm(),
                 reflectances=np.array(self.patch_reflectances()))
        return d

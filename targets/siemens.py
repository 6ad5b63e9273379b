"""Siemens star for focus and peaking: a binary star of black wedges on white (ISO 15775 style).

``cycles`` black wedges (default 72) alternate with white ones of the same angle; each wedge is a
triangle from the centre, so its outer end is a chord and the star's rim a regular polygon of
2 x cycles sides (within R (1 - cos(pi / 2 cycles)) of the circle: 0.02 % of R at 72 cycles).
Binary rather than sinusoidal (ISO 12233 s-SFR) so it is a polygon chart, rendered exactly; at
radius r the period is 2 pi r / cycles mm. Radius 0.45 of the sheet's shorter side, centred.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from targets.base import BLACK, WHITE, Detection, Painter, project, roi_from_quad
from targets.fiducials import FiducialChart


class SiemensStar(FiducialChart):
    name = "siemens"
    title = "Siemens star, 72 binary cycles (focus, peaking)"
    sheet_reflectance_value = WHITE

    def __init__(self, width_mm: float = 400.0, height_mm: float = 300.0, cycles: int = 72,
                 radius_fraction: float = 0.45, **kwargs: Any) -> None:
        super().__init__(width_mm, height_mm, **kwargs)
        if not 4 <= int(cycles) <= 1024:
            raise ValueError(f"Siemens star cycles must be 4..1024, got {cycles}")
        self.cycles = int(cycles)
        self.radius_mm = float(radius_fraction) * min(self.width_mm, self.height_mm)

    @property
    def centre_mm(self) -> np.ndarray:
        return np.array([self.width_mm / 2, self.height_mm / 2])

    def wedges_mm(self) -> np.ndarray:
        """Black wedges (cycles, 3, 2) mm: centre, rim at angle a0, rim at a0 + pi/cycles (angles from +x)."""
        a0 = 2 * np.pi * np.arange(self.cycles) / self.cycles
        a1 = a0 + np.pi / self.cycles
        c, r = self.centre_mm, self.radius_mm
        rim0 = c + r * np.stack([np.cos(a0), np.sin(a0)], axis=1)
        rim1 = c + r * np.stack([np.cos(a1), np.sin(a1)], axis=1)
        return np.stack([np.broadcast_to(c, rim0.shape), rim0, rim1], axis=1)

    def paint(self, painter: Painter) -> None:
        painter.rect(0, 0, self.width_mm, self.height_mm, WHITE, self.background)
        for tri in self.wedges_mm():
            painter.polygon(tri, BLACK, WHITE)
        self.paint_fiducials(painter)

    def features_mm(self) -> dict[str, Any]:
        d = super().features_mm()
        d.update(centre=self.centre_mm, radius=self.radius_mm, cycles=self.cycles, wedges=self.wedges_mm())
        return d

    def info(self) -> dict[str, Any]:
        d = super().info()
        d.update(cycles=self.cycles, profile="binary", radius_mm=round(self.radius_mm, 4),
                 centre_mm=self.centre_mm.round(4).tolist(), black=BLACK, white=WHITE,
                 period_mm_at_radius="2 * pi * r / cycles")
        return d

    def locate_rois(self, detection: Detection, image_shape: tuple[int, ...]) -> None:
        t = np.linspace(0, 2 * np.pi, 360, endpoint=False)
        circle = self.centre_mm + self.radius_mm * np.stack([np.cos(t), np.sin(t)], axis=1)
        rim = project(detection.homography, circle)
        x, y = rim[:, 0], rim[:, 1]
        area = 0.5 * abs(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
        detection.centre_px = tuple(float(v) for v in project(detection.homography, self.centre_mm))
        detection.radius_px = float(np.sqrt(area / np.pi))
        c, r = self.centre_mm, self.radius_mm
        quad = c + r * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
        roi = roi_from_quad("star", quad, detection.homography, image_shape)
        if roi is not None:
            detection.rois.append(roi)

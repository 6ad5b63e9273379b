"""Slanted-edge SFR chart, ISO 12233:2017 e-SFR geometry: dark squares turned 5 degrees across the field.

13 squares (centre; 4 on the axes at 0.65 of the half field; 4 intermediate at 0.45 on the
diagonals; 4 near the corners at 0.75 x 0.70), each rotated by ``angle_deg`` (default 5 degrees,
clockwise on the print), so each gives two near-vertical and two near-horizontal edges. Low
contrast as ISO 12233:2017 recommends, 4:1: squares 0.2 on a 0.8 sheet. Each edge has an ROI:
an axis-aligned rectangle centred on the edge's midpoint, 60 % of the side along the edge and
40 % across it, clear of the square's corners.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from targets.base import Detection, Painter, roi_from_quad
from targets.fiducials import FiducialChart

LIGHT = 0.8
DARK = 0.2
#: Square centres as fractions of the half width / half height from the chart centre.
FIELD_POSITIONS = np.array(
    [[0, 0], [0.65, 0], [-0.65, 0], [0, 0.65], [0, -0.65],
     [0.45, 0.45], [-0.45, 0.45], [0.45, -0.45], [-0.45, -0.45],
     [0.75, 0.70], [-0.75, 0.70], [0.75, -0.70], [-0.75, -0.70]], dtype=np.float64)
EDGES = ("top", "right", "bottom", "left")  # edge k joins corner k and k+1 (corners TL, TR, BR, BL)
ROI_ALONG = 0.6
ROI_ACROSS = 0.4


class SlantedEdgeChart(FiducialChart):
    name = "sfr"
    title = "slanted-edge SFR chart, 13 squares at 5 deg, 4:1 contrast (ISO 12233:2017 e-SFR)"
    sheet_reflectance_value = LIGHT

    def __init__(self, width_mm: float = 400.0, height_mm: float = 300.0, angle_deg: float = 5.0,
                 square_fraction: float = 0.08, **kwargs: Any) -> None:
        super().__init__(width_mm, height_mm, **kwargs)
        if not 1.0 <= abs(angle_deg) <= 20.0:
            raise ValueError(f"slanted-edge angle must be 1..20 degrees, got {angle_deg}")
        self.angle_deg = float(angle_deg)
        self.square_mm = float(square_fraction) * min(self.width_mm, self.height_mm)

    def centres_mm(self) -> np.ndarray:
        half = np.array([self.width_mm / 2, self.height_mm / 2])
        return half + FIELD_POSITIONS * half

    def squares_mm(self) -> np.ndarray:
        """Corners (13, 4, 2) mm of each square: top-left, top-right, bottom-right, bottom-left (unturned)."""
        a = np.deg2rad(self.angle_deg)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        unit = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64) * self.square_mm / 2
        return self.centres_mm()[:, None, :] + (unit @ rot.T)[None]

    def paint(self, painter: Painter) -> None:
        painter.rect(0, 0, self.width_mm, self.height_mm, LIGHT, self.background)
        for quad in self.squares_mm():
            painter.polygon(quad, DARK, LIGHT)
        self.paint_fiducials(painter)

    def edges(self) -> list[dict[str, Any]]:
        """Each edge: square index, side, orientation, nominal angle, end points and ROI quad (mm)."""
        out = []
        s = self.square_mm
        for i, (quad, pos) in enumerate(zip(self.squares_mm(), FIELD_POSITIONS, strict=True)):
            for k, side in enumerate(EDGES):
                p0, p1 = quad[k], quad[(k + 1) % 4]
                mid = (p0 + p1) / 2
                vertical = side in ("left", "right")
                along, across = ROI_ALONG * s / 2, ROI_ACROSS * s / 2
                hx, hy = (across, along) if vertical else (along, across)
                roi = mid + np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
                orientation = "vertical" if vertical else "horizontal"
                out.append({"square": i, "edge": side, "orientation": orientation,
                            "angle_deg": self.angle_deg, "field": pos.tolist(), "p0": p0, "p1": p1,
                            "roi": roi, "dark_side": {"top": "below", "bottom": "above", "left": "right",
                                                      "right": "left"}[side]})
        return out

    def features_mm(self) -> dict[str, Any]:
        d = super().features_mm()
        edges = self.edges()
        d.update(squares=self.squares_mm(), edge_lines=np.array([[e["p0"], e["p1"]] for e in edges]),
                 edge_rois=np.array([e["roi"] for e in edges]), edges=edges)
        return d

    def info(self) -> dict[str, Any]:
        d = super().info()
        d.update(angle_deg=self.angle_deg, square_mm=round(self.square_mm, 4), light=LIGHT, dark=DARK,
                 contrast=f"{LIGHT / DARK:g}:1",
                 squares=[{"centre_mm": c.round(4).tolist(), "field": p.tolist()}
                          for c, p in zip(self.centres_mm(), FIELD_POSITIONS, strict=True)],
                 edges=[{"square": e["square"], "edge": e["edge"], "orientation": e["orientation"],
                         "angle_deg": e["angle_deg"], "dark_side": e["dark_side"],
                         "line_mm": np.round([e["p0"], e["p1"]], 4).tolist(),
                         "roi_mm": e["roi"].round(4).tolist()}
                        for e in self.edges()])
        return d

    def locate_rois(self, detection: Detection, image_shape: tuple[int, ...]) -> None:
        for e in self.edges():
            name = f"sq{e['square']:02d}-{e['edge']}"
            roi = roi_from_quad(name, e["roi"], detection.homography, image_shape,
                                orientation=e["orientation"], angle_deg=e["angle_deg"],
                                extra={"square": e["square"], "edge": e["edge"], "field": e["field"],
                                       "dark_side": e["dark_side"]})
            if roi is not None:
                detection.rois.append(roi)

"""What every chart is: one definition in physical units (mm), used to print, to render and to detect.

Chart coordinates: origin at the chart's top-left corner, x right, y down, mm. Reflectance is
linear, per channel in linear sRGB primaries (a neutral grey has three equal values), in [0, 1].
Image coordinates (detections, homographies): OpenCV's, pixel centres at integers, x right, y down.
A chart is a painter's list of polygons (``Painter``); rendering is the exact area average of that
piecewise-constant reflectance over each pixel (``targets.polygons``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from targets.polygons import PolygonSet

#: Reflectance of the chart holder around a chart (a neutral 18 % grey board).
HOLDER_REFLECTANCE = 0.18
#: Reflectances of "black" and "white" print on the charts.
BLACK = 0.03
WHITE = 0.9


class ChartNotFound(Exception):  # noqa: N818 - the name the station layer maps to its own error
    """The chart was not found in a capture; ``chart`` names it, ``reason`` says why (one line)."""

    def __init__(self, chart: str, reason: str) -> None:
        super().__init__(f"chart {chart!r} not found in the image: {reason}")
        self.chart = chart
        self.reason = reason


def rgb(value: float | tuple[float, float, float] | np.ndarray) -> np.ndarray:
    """A reflectance as 3 channels: a float is neutral."""
    a = np.asarray(value, dtype=np.float64)
    return np.full(3, float(a)) if a.ndim == 0 else a.reshape(3).copy()


@dataclass(frozen=True)
class Shape:
    """A filled polygon (k,2) mm of absolute reflectance ``reflectance`` painted on ``under``."""

    polygon: np.ndarray
    reflectance: np.ndarray
    under: np.ndarray


class Painter:
    """Collects a chart's shapes in painting order; each must lie inside one region of ``under``."""

    def __init__(self) -> None:
        self.shapes: list[Shape] = []

    def polygon(self, points: Any, reflectance: Any, under: Any) -> None:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self.shapes.append(Shape(pts, rgb(reflectance), rgb(under)))

    def rect(self, x_mm: float, y_mm: float, w_mm: float, h_mm: float, reflectance: Any, under: Any) -> None:
        x1, y1 = x_mm + w_mm, y_mm + h_mm
        self.polygon([[x_mm, y_mm], [x1, y_mm], [x1, y1], [x_mm, y1]], reflectance, under)

    def cells(self, mask: np.ndarray, x_mm: float, y_mm: float, cell_mm: float, reflectance: Any,
              under: Any) -> None:
        """Paint the True cells of a 2-D mask (row 0 on top) as one rectangle per horizontal run."""
        mask = np.asarray(mask, dtype=bool)
        for r, row in enumerate(mask):
            padded = np.concatenate(([False], row, [False])).astype(np.int8)
            d = np.diff(padded)
            for c0, c1 in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
                self.rect(x_mm + c0 * cell_mm, y_mm + r * cell_mm, (c1 - c0) * cell_mm, cell_mm,
                          reflectance, under)


@dataclass
class Roi:
    """A region of interest in an image: ``box`` (x, y, w, h) whole pixels, ``quad_px`` its exact corners."""

    name: str
    box: tuple[int, int, int, int]
    quad_px: np.ndarray
    reflectance: tuple[float, float, float] | None = None
    orientation: str | None = None
    angle_deg: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "box": [int(v) for v in self.box],
                             "quad_px": np.round(self.quad_px, 3).tolist()}
        if self.reflectance is not None:
            d["reflectance"] = [round(float(v), 6) for v in self.reflectance]
        if self.orientation is not None:
            d["orientation"] = self.orientation
        if self.angle_deg is not None:
            d["angle_deg"] = round(float(self.angle_deg), 4)
        d.update(self.extra)
        return d


@dataclass
class Detection:
    """A chart found in an image. ``homography`` maps chart mm to image px (pixel centres at integers)."""

    chart: str
    found: bool
    homography: np.ndarray | None = None
    corners: np.ndarray | None = None  # ChArUco: (N,2) px
    ids: np.ndarray | None = None  # ChArUco: (N,) corner ids
    rois: list[Roi] = field(default_factory=list)
    centre_px: tuple[float, float] | None = None
    radius_px: float | None = None
    markers: dict[int, np.ndarray] = field(default_factory=dict)  # marker id -> (4,2) px corners

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        d: dict[str, Any] = {"chart": self.chart, "found": self.found,
                             "homography": None if self.homography is None else self.homography.tolist()}
        if self.corners is not None:
            d["corners"] = np.round(self.corners, 4).tolist()
            d["ids"] = [int(i) for i in self.ids]
        if self.rois:
            d["rois"] = [r.to_dict() for r in self.rois]
        if self.centre_px is not None:
            d["centre_px"] = [float(v) for v in self.centre_px]
            d["radius_px"] = float(self.radius_px)
        if self.markers:
            d["markers"] = {str(k): np.round(v, 3).tolist() for k, v in sorted(self.markers.items())}
        return d


def project(homography: np.ndarray, xy_mm: np.ndarray) -> np.ndarray:
    """Points (...,2) in chart mm -> image px through a 3x3 homography."""
    p = np.asarray(xy_mm, dtype=np.float64)
    flat = p.reshape(-1, 2)
    h = np.asarray(homography, dtype=np.float64)
    q = flat @ h[:, :2].T + h[:, 2]
    return (q[:, :2] / q[:, 2:3]).reshape(p.shape)


def centre_quads(rects_mm: np.ndarray, fraction: float) -> np.ndarray:
    """Quads (N, 4, 2) mm of the centre ``fraction`` of each rectangle (x, y, w, h) mm: patch ROIs."""
    rects = np.asarray(rects_mm, dtype=float)
    cx, cy = rects[:, 0] + rects[:, 2] / 2, rects[:, 1] + rects[:, 3] / 2
    hw, hh = fraction * rects[:, 2] / 2, fraction * rects[:, 3] / 2
    return np.stack([np.stack([cx - hw, cy - hh], 1), np.stack([cx + hw, cy - hh], 1),
                     np.stack([cx + hw, cy + hh], 1), np.stack([cx - hw, cy + hh], 1)], axis=1)


def roi_from_quad(name: str, quad_mm: np.ndarray, homography: np.ndarray, image_shape: tuple[int, ...],
                  **kwargs: Any) -> Roi | None:
    """The ROI of a chart quad (4,2) mm in the image: whole pixels inside the projected quad's box.

    None if that box is empty or leaves the image.
    """
    quad = project(homography, quad_mm)
    lo = np.ceil(quad.min(axis=0) + 0.5).astype(int)  # first pixel whose area is inside
    hi = np.floor(quad.max(axis=0) - 0.5).astype(int)  # last one
    if np.any(hi < lo) or lo[0] < 0 or lo[1] < 0 or hi[0] >= image_shape[1] or hi[1] >= image_shape[0]:
        return None
    box = (int(lo[0]), int(lo[1]), int(hi[0] - lo[0] + 1), int(hi[1] - lo[1] + 1))
    return Roi(name, box, quad, **kwargs)


def to_gray_u8(image: np.ndarray) -> np.ndarray:
    """Any capture (gray or 3-channel; uint8, uint16 DN or float linear) as 8-bit gray for detectors.

    Non-8-bit input is stretched from its minimum to its 99.9th percentile.
    """
    a = np.asarray(image)
    if a.ndim == 3:
        a = a.mean(axis=2) if a.dtype != np.uint8 or a.shape[2] != 3 else _mean3_u8(a)
    if a.ndim != 2:
        raise ValueError(f"expected a gray or 3-channel image, got shape {np.asarray(image).shape}")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    f = a.astype(np.float32)
    finite = np.isfinite(f)
    if not finite.any():
        return np.zeros(f.shape, dtype=np.uint8)
    lo = float(f[finite].min())
    hi = float(np.percentile(f[finite], 99.9))
    if hi <= lo:
        hi = lo + 1.0
    return np.clip((np.nan_to_num(f, nan=lo) - lo) * (255.0 / (hi - lo)), 0, 255).round().astype(np.uint8)


def _mean3_u8(rgb: np.ndarray) -> np.ndarray:
    """``rgb.mean(axis=2).round()`` of an 8-bit 3-channel image in integers, exactly: a sum s of three codes over
    3 never ends in a half, so its rounding is (s + 1) // 3 (no float64 frame: 400 MB at 50 MP)."""
    total = rgb[..., 0].astype(np.uint16)
    total += rgb[..., 1]
    total += rgb[..., 2]
    total += 1
    total //= 3
    return total.astype(np.uint8)


def gray_for_detection(chart: str, image: np.ndarray) -> np.ndarray:
    """``to_gray_u8`` for a detector; an empty or unusable image is ``ChartNotFound`` naming ``chart``."""
    a = np.asarray(image)
    if a.size == 0 or a.ndim not in (2, 3) or min(a.shape[:2]) < 8:
        raise ChartNotFound(chart, f"the image is empty or too small (shape {a.shape})")
    return to_gray_u8(a)


class Chart(ABC):
    """A chart of ``width_mm`` x ``height_mm`` on a holder of reflectance ``background`` around it."""

    name: str = "chart"
    #: One line saying what the chart is for (``station chart --list``).
    title: str = ""

    def __init__(self, width_mm: float = 400.0, height_mm: float = 300.0,
                 background: float | tuple[float, float, float] = HOLDER_REFLECTANCE) -> None:
        if not (np.isfinite(width_mm) and np.isfinite(height_mm) and width_mm > 0 and height_mm > 0):
            raise ValueError(f"chart size must be positive mm, got {width_mm} x {height_mm}")
        self.width_mm = float(width_mm)
        self.height_mm = float(height_mm)
        self.background = rgb(background)

    # --- definition ---------------------------------------------------------------------------
    @abstractmethod
    def paint(self, painter: Painter) -> None:
        """Add the chart's shapes, in painting order, starting with the sheet itself."""

    @cached_property
    def shapes(self) -> list[Shape]:
        painter = Painter()
        self.paint(painter)
        return painter.shapes

    @cached_property
    def _polygons(self) -> PolygonSet:
        shapes = self.shapes
        deltas = np.array([s.reflectance - s.under for s in shapes]).reshape(len(shapes), 3)
        return PolygonSet([s.polygon for s in shapes], deltas)

    # --- the three uses -----------------------------------------------------------------------
    def reflectance_at(self, x_mm: np.ndarray, y_mm: np.ndarray) -> np.ndarray:
        """Linear reflectance (..., 3) float32 at chart points; the holder's outside the chart."""
        return self._polygons.sample(x_mm, y_mm, self.background)

    def raster(self, x0_mm: float, y0_mm: float, px_per_mm: float, width_px: int, height_px: int,
               supersample: int = 4) -> np.ndarray:
        """Exact area average of reflectance over each pixel: (H,W,3) float32.

        Pixel (r, c) covers x in [x0 + c/ppm, x0 + (c+1)/ppm) and y likewise. The charts are
        polygons, rendered with exact coverage; ``supersample`` is accepted for charts with
        non-polygonal parts and unused by these.
        """
        del supersample
        if not px_per_mm > 0:
            raise ValueError(f"px_per_mm must be positive, got {px_per_mm}")
        return self._polygons.raster(x0_mm, y0_mm, px_per_mm, width_px, height_px, self.background)

    def sheet_reflectance(self) -> np.ndarray:
        """Reflectance of the sheet (the first shape)."""
        return self.shapes[0].reflectance

    @abstractmethod
    def features_mm(self) -> dict[str, Any]:
        """Ground-truth geometry in chart mm (numpy arrays)."""

    def info(self) -> dict[str, Any]:
        """JSON-able geometry (``station chart NAME --info --json``)."""
        return {"chart": self.name, "title": self.title, "width_mm": self.width_mm,
                "height_mm": self.height_mm, "coordinates": "mm, origin top-left, x right, y down",
                "reflectance": "linear, linear-sRGB primaries",
                "sheet_reflectance": [round(float(v), 6) for v in self.sheet_reflectance()]}

    @abstractmethod
    def detect(self, image: np.ndarray) -> Detection:
        """Find the chart in a capture; raise ``ChartNotFound`` if it is not there."""


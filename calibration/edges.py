"""Find the slanted edges in an arbitrary image that an ISO 12233 e-SFR can measure.

Straight segments come from OpenCV's line segment detector (LSD, R. Grompone von Gioi et al.,
"LSD: a fast line segment detector with a false detection control", IEEE TPAMI 32(4), 2010);
pieces of one edge are merged; every edge tilted ``min_angle_deg``..``max_angle_deg`` off the pixel
axes gets an ROI centred on its middle (corners excluded: ``CORNER_MARGIN`` of the side is left out
at each end), as long along the edge as allowed up to ``roi_along_px`` and as wide across it as the
nearest other feature (Canny edge pixels) allows, up to ``roi_across_px``, the slanted edge keeping a
flat margin on both sides in every row. Each ROI is then checked: not clipped (``clip_level``) and
measurable by ``calibration.sfr.sfr`` at the angle the segment has. An image that holds just one edge
(a crop) gives one ROI, the whole image when the whole image measures as that edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from calibration.sfr import SfrError, sfr

__all__ = ["EdgeRoi", "find_edges"]

#: Fraction of a side left out at each end (corners).
CORNER_MARGIN = 0.12
#: Flat pixels kept between the edge and the ROI's side, in every row.
FLAT_MARGIN_PX = 6
MIN_ACROSS_PX = 16
#: Edge pixels closer than this to a segment's line belong to it.
ON_LINE_PX = 3.0
#: Features smaller than this (px) do not limit an ROI (dust, noise): the e-SFR's row fit rejects them.
SPECK_PX = 12
#: Fraction of ROI pixels at the clip level that makes an ROI clipped.
CLIPPED_FRACTION = 0.005


@dataclass(frozen=True)
class EdgeRoi:
    """An ROI holding one slanted edge: ``x, y, w, h`` in image pixels (top-left, size).

    ``orientation`` is "vertical" or "horizontal"; ``angle_deg`` the edge's tilt off that axis from the
    segment detector (clockwise positive as displayed, like ``SfrResult.angle_deg``); ``length_px`` the
    edge's visible length.
    """

    x: int
    y: int
    w: int
    h: int
    orientation: str
    angle_deg: float
    length_px: float = 0.0

    @property
    def roi(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)

    def crop(self, image: np.ndarray) -> np.ndarray:
        return image[self.y:self.y + self.h, self.x:self.x + self.w]


def _to_u8(image: np.ndarray) -> np.ndarray:
    """Robustly stretched 8-bit view (square-root encoded, so dark edges in linear data show)."""
    lo, hi = np.percentile(image[:: max(1, image.shape[0] // 512), :: max(1, image.shape[1] // 512)],
                           (0.5, 99.5))
    if not hi > lo:
        return np.zeros(image.shape, np.uint8)
    norm = np.clip((image - lo) / (hi - lo), 0.0, 1.0)
    return (np.sqrt(norm) * 255.0 + 0.5).astype(np.uint8)


def _feature_map(u8: np.ndarray) -> np.ndarray:
    """Canny edge pixels, thresholds set above the image's own gradient noise (its median gradient);
    specks (connected pieces smaller than ``SPECK_PX``: dust, noise) dropped."""
    blurred = cv2.GaussianBlur(u8, (0, 0), 1.2)
    grad = np.abs(cv2.Sobel(blurred, cv2.CV_16S, 1, 0)) + np.abs(cv2.Sobel(blurred, cv2.CV_16S, 0, 1))
    low = max(20.0, 5.0 * float(np.median(grad[::2, ::2])))
    edges = cv2.Canny(blurred, low, max(60.0, 3.0 * low))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(edges, connectivity=8)
    small = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) < SPECK_PX
    small[0] = True  # background
    edges[small[labels]] = 0
    return edges


def _segments(u8: np.ndarray, min_len: float) -> np.ndarray:
    """LSD segments (N, 4) x1 y1 x2 y2 of at least ``min_len`` px."""
    lines = cv2.createLineSegmentDetector().detect(u8)[0]
    if lines is None:
        return np.zeros((0, 4))
    seg = lines.reshape(-1, 4).astype(np.float64)
    length = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
    return seg[length >= min_len]


def _merge(seg: np.ndarray, angle_tol_deg: float = 1.5, dist_px: float = 2.0, gap_px: float = 12.0,
           max_passes: int = 8) -> np.ndarray:
    """Merge collinear pieces of one edge (same direction, on each other's line, gap <= ``gap_px``):
    longest first, each absorbing every compatible piece (vectorised), repeated until nothing merges."""
    cos_tol = math.cos(math.radians(angle_tol_deg))
    for _ in range(max_passes):
        if len(seg) < 2:
            return seg
        before = len(seg)
        seg = seg[np.argsort(-np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]))]
        used = np.zeros(len(seg), bool)
        out = []
        a, b = seg[:, :2], seg[:, 2:]
        e = (b - a) / np.maximum(np.hypot(*(b - a).T), 1e-9)[:, None]
        for i in range(len(seg)):
            if used[i]:
                continue
            p, d = a[i], e[i]
            n = np.array([-d[1], d[0]])
            t0, t1 = 0.0, float((b[i] - p) @ d)
            ta, tb = (a - p) @ d, (b - p) @ d
            lo, hi = np.minimum(ta, tb), np.maximum(ta, tb)
            ok = (~used & (np.abs(e @ d) >= cos_tol)
                  & (np.maximum(np.abs((a - p) @ n), np.abs((b - p) @ n)) <= dist_px)
                  & (lo <= t1 + gap_px) & (hi >= t0 - gap_px))
            ok[i] = True
            used |= ok
            lo_t, hi_t = min(t0, float(lo[ok].min())), max(t1, float(hi[ok].max()))
            out.append(np.concatenate([p + lo_t * d, p + hi_t * d]))
        seg = np.array(out).reshape(-1, 4)
        if len(seg) == before:
            break
    return seg


def _tilt(seg: np.ndarray) -> tuple[str, float]:
    """(orientation, signed tilt off that axis, clockwise positive as displayed) of a segment."""
    dx, dy = seg[2] - seg[0], seg[3] - seg[1]
    if abs(dy) >= abs(dx):
        if dy < 0:
            dx, dy = -dx, -dy
        return "vertical", -math.degrees(math.atan2(dx, dy))
    if dx < 0:
        dx, dy = -dx, -dy
    return "horizontal", math.degrees(math.atan2(dy, dx))


def _place_roi(seg: np.ndarray, shape: tuple[int, int], edge_xy: np.ndarray, along_max: int, across_max: int,
               min_along: int) -> tuple[int, int, int, int] | None:
    """Axis-aligned ROI on the segment, clear of other features; None when none fits.

    Tried longest first, centred on the segment's middle, then slid along it by quarter lengths (to step
    past a feature next to the edge), then shorter by a quarter, down to ``min_along``.
    """
    h_img, w_img = shape
    orientation, _ = _tilt(seg)
    p, q = seg[:2], seg[2:]
    if orientation == "horizontal":  # work as if vertical: swap x and y
        p, q = p[::-1], q[::-1]
        h_img, w_img = w_img, h_img
        edge_xy = edge_xy[:, ::-1]
    if q[1] < p[1]:
        p, q = q, p
    slope = (q[0] - p[0]) / (q[1] - p[1])  # dx/dy
    cos_t = math.cos(math.atan(slope))
    span = q[1] - p[1]
    lo = max(p[1] + CORNER_MARGIN * span, 0.0)
    hi = min(q[1] - CORNER_MARGIN * span, float(h_img))
    mid = (p[1] + q[1]) / 2.0
    along = int(min(along_max, hi - lo))
    while along >= min_along:
        step = max(along // 4, 1)
        first = int(round(min(max(mid - along / 2.0, lo), hi - along)))
        starts = [first]
        for k in range(1, int((hi - lo) / step) + 2):
            starts += [first + k * step, first - k * step]
        for y0 in starts:
            if y0 < math.floor(lo) or y0 + along > math.ceil(hi) or y0 < 0 or y0 + along > h_img:
                continue
            y1 = y0 + along
            cx = p[0] + slope * ((y0 + y1 - 1) / 2.0 - p[1])
            need = abs(slope) * along / 2.0 + FLAT_MARGIN_PX
            half = min(across_max / 2.0, cx, w_img - 1 - cx)
            # Other features: edge pixels in these rows farther than ON_LINE_PX from the segment's line.
            pts = edge_xy[(edge_xy[:, 1] >= y0) & (edge_xy[:, 1] < y1)]
            if pts.size:
                line_x = p[0] + slope * (pts[:, 1] - p[1])
                others = pts[np.abs(pts[:, 0] - line_x) * cos_t > ON_LINE_PX]
                if others.size:
                    half = min(half, float(np.abs(others[:, 0] - cx).min()) - 1.0)
            if half >= need and 2 * half >= MIN_ACROSS_PX:
                x0 = max(int(math.ceil(cx - half)), 0)
                x1 = min(int(math.floor(cx + half)) + 1, w_img)
                if orientation == "horizontal":
                    return (y0, x0, y1 - y0, x1 - x0)
                return (x0, y0, x1 - x0, y1 - y0)
        along = int(along * 0.75)
    return None


def _clipped(crop: np.ndarray, clip_level: float | None) -> bool:
    if clip_level is None:
        return False
    return float(np.count_nonzero(crop >= clip_level)) > CLIPPED_FRACTION * crop.size


def _measurable(crop: np.ndarray, orientation: str, angle_deg: float) -> bool:
    try:
        res = sfr(crop)
    except SfrError:
        return False
    return res.orientation == orientation and abs(res.angle_deg - angle_deg) <= 2.0 and math.isfinite(
        res.mtf50_cy_px)


def find_edges(image: np.ndarray, *, roi_along_px: int = 128, roi_across_px: int = 64, min_along_px: int = 24,
               min_angle_deg: float = 1.0, max_angle_deg: float = 40.0, clip_level: float | None = None,
               validate: bool = True) -> list[EdgeRoi]:
    """Every usable slanted edge in ``image`` ((H, W) gray, any scale), as ROIs, top-to-bottom.

    ``clip_level``: pixel value at or above which a sample is clipped (None: no check).
    ``validate``: keep only ROIs that ``sfr`` measures at the segment's angle.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"find_edges needs a 2-D gray image, got shape {img.shape}")
    h_img, w_img = img.shape
    if min(h_img, w_img) < MIN_ACROSS_PX:
        return []
    u8 = _to_u8(img)
    seg = _segments(u8, 0.5 * min_along_px)
    tilts = np.array([abs(_tilt(t)[1]) for t in seg]).reshape(-1)
    seg = _merge(seg[(tilts >= min_angle_deg - 2.0) & (tilts <= max_angle_deg + 2.0)])
    edge_map = _feature_map(u8)
    ys, xs = np.nonzero(edge_map)
    edge_xy = np.stack([xs, ys], axis=1).astype(np.float64)

    found: list[EdgeRoi] = []
    for s in sorted(seg, key=lambda t: -float(np.hypot(t[2] - t[0], t[3] - t[1]))):
        orientation, angle = _tilt(s)
        if not min_angle_deg <= abs(angle) <= max_angle_deg:
            continue
        roi = _place_roi(s, (h_img, w_img), edge_xy, roi_along_px, roi_across_px, min_along_px)
        if roi is None:
            continue
        x, y, w, h = roi
        cx, cy = x + w / 2.0, y + h / 2.0
        if any(e.orientation == orientation and abs(e.x + e.w / 2.0 - cx) < max(e.w, w) / 2.0
               and abs(e.y + e.h / 2.0 - cy) < max(e.h, h) / 2.0 for e in found):
            continue  # the same edge again (e.g. a second LSD segment)
        crop = img[y:y + h, x:x + w]
        if _clipped(crop, clip_level):
            continue
        if validate and not _measurable(crop, orientation, angle):
            continue
        found.append(EdgeRoi(x, y, w, h, orientation, round(angle, 3),
                             float(np.hypot(s[2] - s[0], s[3] - s[1]))))

    if len(found) == 1 and (found[0].w, found[0].h) != (w_img, h_img):
        only = found[0]
        if not _clipped(img, clip_level) and _measurable(img, only.orientation, only.angle_deg):
            found = [EdgeRoi(0, 0, w_img, h_img, only.orientation, only.angle_deg, only.length_px)]
    return sorted(found, key=lambda e: (e.y, e.x))

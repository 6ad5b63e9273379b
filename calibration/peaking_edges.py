"""The chart's edges and a frame's blur for the peaking calibration (``calibration.peaking``, steps 1-3 of its
module text): the chart's two levels, mid-level boundary and edge pixels from the sharpest frame, clean edge
profiles along the boundary's normals, and a frame's line spread variance along them (ISO 12233's ESF -> LSF, on
profiles instead of a slanted edge). Whole-frame work goes a band of rows at a time (a 50 MP preview is 50 MB of
luma; no float frame is made)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import colour
import cv2
import numpy as np
from scipy.stats import trim_mean

from calibration.preview import preview_luma

#: Edge profiles sampled per frame at most, their sample step (px), and the fewest usable.
MAX_PROFILES = 4000
PROFILE_STEP_PX = 0.5
MIN_PROFILES = 30
#: Least chart contrast (8-bit luma codes between the two levels) for edges to be measured.
MIN_CONTRAST_CODES = 16
_TRIM = 0.10
#: Boundary pixels tested for a clean profile at once.
_CLEAN_CHUNK = 32768
#: Pixels histogrammed at once.
_HIST_CHUNK = 1 << 20
#: Rows of the frame smoothed at once for the edge normals, and the rows added each side (the Gaussian's
#: radius, 6 px at sigma 1.5 in OpenCV, plus the Sobel's 1, with room to spare).
_GRADIENT_BAND_ROWS = 512
_GRADIENT_MARGIN_ROWS = 16
#: Rows of the linear frame sampled for edge profiles at once.
_PROFILE_BAND_ROWS = 512


class PeakingCalibrationError(ValueError):
    """The focus sweep cannot give a peaking threshold (never in focus, constraints conflict, no edges)."""


def _decode_lut(tone: str) -> np.ndarray:
    codes = np.arange(256, dtype=np.float64) / 255.0
    if tone == "linear":
        return codes.astype(np.float32)
    if tone == "srgb":  # IEC 61966-2-1 decoding
        return np.asarray(colour.models.eotf_sRGB(codes), dtype=np.float32)
    raise ValueError(f"tone {tone!r}; allowed: srgb, linear")


@dataclass
class ChartEdges:
    """The chart's geometry from the sharpest frame: levels, mid-level binary map, edge pixels, profiles."""

    dark_code: float
    light_code: float
    binary: np.ndarray  # bool (H, W): light side of the mid-level
    edge_mask: np.ndarray  # bool (H, W): pixels within 1 px of the boundary
    points: np.ndarray  # (N, 2) x, y of the profile centres (light-side boundary pixels)
    normals: np.ndarray  # (N, 2) unit vectors, dark -> light

    def profiles_only(self) -> ChartEdges:
        """These edges without the two (H, W) masks (100 MB at 50 MP): what ``lsf_variance`` takes."""
        empty = np.zeros((0, 0), bool)
        return replace(self, binary=empty, edge_mask=empty)


def chart_edges(luma: np.ndarray, *, tone: str = "srgb", reach_px: float = 8.0,
                max_profiles: int = MAX_PROFILES) -> ChartEdges:
    """Levels, boundary, edge pixels and clean edge profiles of a binary chart in a (sharp) luma frame."""
    luma = preview_luma(luma)
    lut = _decode_lut(tone)
    otsu, _ = cv2.threshold(luma, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    codes = _code_histogram(luma)
    split = int(otsu) + 1  # codes <= otsu are the dark class
    if not codes[:split].any() or not codes[split:].any():
        raise PeakingCalibrationError("the sharpest frame is uniform: no chart edges to calibrate peaking on")
    dark, light = _median_code(codes[:split]), split + _median_code(codes[split:])
    if light - dark < MIN_CONTRAST_CODES:
        raise PeakingCalibrationError(f"chart contrast {light - dark:.0f} luma codes in the sharpest frame is "
                                      f"below {MIN_CONTRAST_CODES}: no usable edges")
    mid = 0.5 * (np.interp(dark, np.arange(256), lut) + np.interp(light, np.arange(256), lut))
    binary = cv2.medianBlur(cv2.LUT(luma, (lut >= mid).astype(np.uint8)), 3)  # lin >= mid, by code; 0 / 1
    kernel = np.ones((3, 3), np.uint8)
    edge_mask = cv2.morphologyEx(binary, cv2.MORPH_GRADIENT, kernel).view(bool)  # 0 / 1: a bool view, no copy
    light_side = cv2.erode(binary, kernel)
    np.subtract(binary, light_side, out=light_side)  # on the light side, its eroded self dark: 1
    ys, xs = np.nonzero(light_side)
    del light_side
    gx, gy = _gradient_at(luma, lut, ys, xs)
    norm = np.hypot(gx, gy)
    keep = norm > 0
    points = np.column_stack([xs[keep], ys[keep]]).astype(np.float32)
    normals = (np.column_stack([gx[keep], gy[keep]]) / norm[keep, None]).astype(np.float32)
    t = np.arange(-(reach_px + 2.0), reach_px + 2.0 + 1e-6, PROFILE_STEP_PX, dtype=np.float32)
    clean = np.zeros(len(points), dtype=bool)
    for i in range(0, len(points), _CLEAN_CHUNK):  # a 50 MP star has ~1e6 boundary pixels: bounded memory
        clean[i:i + _CLEAN_CHUNK] = _one_boundary(binary, points[i:i + _CLEAN_CHUNK], normals[i:i + _CLEAN_CHUNK], t)
    points, normals = points[clean], normals[clean]
    if len(points) > max_profiles:
        pick = np.linspace(0, len(points) - 1, max_profiles).astype(np.intp)
        points, normals = points[pick], normals[pick]
    return ChartEdges(dark, light, binary.view(bool), edge_mask, points, normals)


def _code_histogram(luma: np.ndarray) -> np.ndarray:
    """Pixels at each 8-bit code (int64, 256), a million at a time (no whole-frame intp copy)."""
    flat = luma.ravel()
    counts = np.zeros(256, np.int64)
    for i in range(0, flat.size, _HIST_CHUNK):
        counts += np.bincount(flat[i:i + _HIST_CHUNK], minlength=256)
    return counts


def _median_code(counts: np.ndarray) -> float:
    """``np.median`` of the codes counted in ``counts`` (code i: counts[i]): the middle one, or the mean of
    the two middle ones, exact from the cumulative counts (no boolean-indexed copy of a 50 MP frame)."""
    cumulative = np.cumsum(counts)
    n = int(cumulative[-1])
    lower, upper = np.searchsorted(cumulative, [(n - 1) // 2 + 1, n // 2 + 1])
    return float((int(lower) + int(upper)) / 2.0)


def _gradient_at(luma: np.ndarray, lut: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 3x3 Sobel gradient of the linear frame smoothed by a Gaussian (sigma 1.5 px) at the pixels
    (``ys`` ascending, as ``np.nonzero`` gives them), worked out band of rows by band with a margin wider than
    both kernels, so each band's rows are those of the whole frame's filters and no float frame is made."""
    height = luma.shape[0]
    gx, gy = np.empty(len(ys), np.float32), np.empty(len(ys), np.float32)
    for r0 in range(0, height, _GRADIENT_BAND_ROWS):
        r1 = min(r0 + _GRADIENT_BAND_ROWS, height)
        i0, i1 = np.searchsorted(ys, (r0, r1))
        if i0 == i1:
            continue
        a0, a1 = max(0, r0 - _GRADIENT_MARGIN_ROWS), min(height, r1 + _GRADIENT_MARGIN_ROWS)
        smooth = cv2.GaussianBlur(lut[luma[a0:a1]], (0, 0), 1.5)
        rows, cols = ys[i0:i1] - a0, xs[i0:i1]
        gx[i0:i1] = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)[rows, cols]
        gy[i0:i1] = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)[rows, cols]
    return gx, gy


def _one_boundary(binary: np.ndarray, points: np.ndarray, normals: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Profiles (points along their normals at ``t`` px) inside the frame that cross one boundary only: dark at
    t <= -1.5 px, light at t >= 1.5 px, out to the reach + 2 px."""
    h, w = binary.shape
    mx = points[:, :1] + normals[:, :1] * t
    my = points[:, 1:] + normals[:, 1:] * t
    inside = (mx.min(1) >= 0) & (my.min(1) >= 0) & (mx.max(1) <= w - 1) & (my.max(1) <= h - 1)
    bx = np.rint(mx).astype(np.intp).clip(0, w - 1)
    by = np.rint(my).astype(np.intp).clip(0, h - 1)
    side = binary[by, bx] > 0
    return inside & ~side[:, t <= -1.5].any(1) & side[:, t >= 1.5].all(1)


def _profiles(luma: np.ndarray, lut: np.ndarray, edges: ChartEdges, t: np.ndarray) -> np.ndarray:
    """The linear frame ``lut[luma]`` sampled along the edge profiles at ``t`` px (bilinear, border replicated),
    (profiles, len(t)) float32: a band of rows at a time, each profile from the band holding its point, cropped
    with a margin past its reach (issue 13: no 200 MB float frame at 50 MP). The samples equal one
    ``cv2.remap`` of the whole frame: a crop shifts the map by whole rows, exact in float32, and replicates
    a border only where it is the frame's."""
    height = luma.shape[0]
    margin = int(math.ceil(float(np.abs(t).max()))) + 2
    mx = edges.points[:, :1] + edges.normals[:, :1] * t
    my = edges.points[:, 1:] + edges.normals[:, 1:] * t
    esf = np.empty(mx.shape, np.float32)
    rows = edges.points[:, 1]
    for r0 in range(0, height, _PROFILE_BAND_ROWS):
        pick = np.flatnonzero((rows >= r0) & (rows < r0 + _PROFILE_BAND_ROWS))
        if r0 == 0:
            pick = np.union1d(pick, np.flatnonzero(rows < 0))
        if r0 + _PROFILE_BAND_ROWS >= height:
            pick = np.union1d(pick, np.flatnonzero(rows >= height))
        if not len(pick):
            continue
        a0, a1 = max(0, r0 - margin), min(height, r0 + _PROFILE_BAND_ROWS + margin)
        esf[pick] = cv2.remap(lut[luma[a0:a1]], mx[pick], my[pick] - np.float32(a0), cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    return esf


def lsf_variance(luma: np.ndarray, edges: ChartEdges, *, tone: str = "srgb", reach_px: float = 8.0) -> float:
    """The line spread variance (px^2) of a frame along the chart's edge profiles (see the module steps)."""
    t = np.arange(-reach_px, reach_px + 1e-6, PROFILE_STEP_PX, dtype=np.float32)
    esf = _profiles(preview_luma(luma), _decode_lut(tone), edges, t).astype(np.float64)
    lsf = np.diff(esf, axis=1)
    tm = 0.5 * (t[:-1] + t[1:]).astype(np.float64)
    ends = 4
    contrast = esf[:, -ends:].mean(1) - esf[:, :ends].mean(1)
    good = contrast > 0.25 * max(float(np.median(contrast)), 1e-12)
    lsf, contrast = lsf[good], contrast[good]
    if len(lsf) < MIN_PROFILES:
        raise PeakingCalibrationError(f"only {len(lsf)} clean edge profiles (need {MIN_PROFILES}): the chart "
                                      "needs edges farther apart than the profile reach")

    def moments(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = lsf * weights
        total = w.sum(1)
        total = np.where(np.abs(total) > 1e-12, total, 1e-12)
        mu = (w * tm).sum(1) / total
        return mu, (w * (tm - mu[:, None]) ** 2).sum(1) / total

    mu, var = moments(np.ones_like(lsf))
    width = math.sqrt(max(float(trim_mean(var, _TRIM)), 0.0))
    half = min(max(3.0 * width + 2.0, 3.0), reach_px)
    mu, var = moments((np.abs(tm[None, :] - mu[:, None]) <= half).astype(np.float64))
    return float(trim_mean(var, _TRIM))

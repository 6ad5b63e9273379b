"""Defect pixels of a sensor from dark frames and flat fields (EMVA 1288 Release 4.0, defect-pixel
characterization; Release 3.1 sec. 8.3): hot and warm pixels from dark frames at a long exposure, dead
and weak pixels from flats, stuck pixels, and clusters with a size limit.

EMVA 1288 characterizes defects by how far a pixel's dark signal (DSNU) or its response (PRNU) stands
from the others, on images averaged over several frames so that temporal noise does not count. Here,
per CFA channel:

- dark signal rate ``(dark - median) / t_dark`` (DN/s): ``warm`` at or above ``warm_dn_per_s``, ``hot``
  at or above ``hot_dn_per_s``;
- response ``(flat - dark_short) / local median`` of the same channel (a 5 x 5 median filter
  removes vignetting and shading): ``dead`` below ``dead_ratio``, ``weak`` below ``weak_ratio``;
- ``stuck``: no response to light (below ``dead_ratio``) while reading well above black in the dark;
- clusters: 8-connected groups of defect pixels in the mosaic (``cluster_sizes``: the components of the
  defect pixels' neighbour graph, numbered as ``scipy.ndimage.label`` would); a cluster larger than
  ``max_cluster_px`` is one a correction by neighbours cannot hide.

The stacks are averaged and classified one CFA plane at a time (a quarter frame), from the frames, a stack
or their exact integer sum (``FrameSum``, added as frames arrive): a 50 MP frame never exists in float64.

For the spatial statistics of a characterisation (``calibration.emva1288``'s ``exclude_mask``), whose
darks are short, ``dark_outliers`` and ``flat_outliers`` mark the defect pixels that stand out of the same
frames: hot and warm by the dark signal rate, and dead, weak or stuck by the flat response, each only where
it also stands clear of the noise (``noise_sigmas``: where pure noise would flag ``FALSE_ALARMS_PER_FRAME``
pixels of the frame); a warm pixel in a few-ms dark is lost in the noise, and so is its share of the DSNU.

Maps go out as Android's ``hotPixelMap`` layout (``[x0, y0, x1, y1, ...]``, CaptureResult
``STATISTICS_HOT_PIXEL_MAP``) and as DNG ``FixBadPixelsList`` (``calibration.export_dng``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from scipy.stats import norm

KINDS = ("hot", "warm", "dead", "weak", "stuck")


@dataclass(frozen=True)
class DefectThresholds:
    """Where a pixel counts as defective (DN/s of dark signal, fractions of the local response)."""

    warm_dn_per_s: float = 50.0
    hot_dn_per_s: float = 1000.0
    weak_ratio: float = 0.75
    dead_ratio: float = 0.1
    stuck_dark_dn: float = 100.0  # a pixel reading this far above black in the dark yet not seeing light
    max_cluster_px: int = 16
    median_window_px: int = 5  # per channel plane (OpenCV's float median takes 3 or 5)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DefectMap:
    """Defect pixels found: coordinates (column x, row y of the mosaic), kind, and the clusters."""

    x: np.ndarray
    y: np.ndarray
    kind: tuple[str, ...]
    cluster_sizes: tuple[int, ...]
    thresholds: DefectThresholds = field(default_factory=DefectThresholds)

    @property
    def oversized_clusters(self) -> list[int]:
        return [s for s in self.cluster_sizes if s > self.thresholds.max_cluster_px]

    def hot_pixel_map(self) -> list[int]:
        """Android ``hotPixelMap``: flat (x, y) pairs, sorted by row then column."""
        order = np.lexsort((self.x, self.y))
        return [int(v) for i in order for v in (self.x[i], self.y[i])]

    def counts(self) -> dict[str, int]:
        return {k: int(sum(1 for kind in self.kind if kind == k)) for k in KINDS}

    def to_dict(self) -> dict[str, Any]:
        """The profile's entry: counts, clusters, thresholds and the pixels with their kinds."""
        order = np.lexsort((self.x, self.y))
        return {"standard": "EMVA 1288 Release 4.0, defect pixels", "count": len(self.kind),
                "by_kind": self.counts(), "clusters": {"count": len(self.cluster_sizes),
                                                       "largest_px": max(self.cluster_sizes, default=0),
                                                       "over_limit": len(self.oversized_clusters)},
                "thresholds": self.thresholds.to_dict(),
                "pixels": [{"x": int(self.x[i]), "y": int(self.y[i]), "kind": self.kind[i]} for i in order]}


def _channel_sites(cfa: str) -> dict[str, list[tuple[int, int]]]:
    sites: dict[str, list[tuple[int, int]]] = {}
    for index, colour in enumerate(cfa.upper()):
        sites.setdefault(colour, []).append((index // 2, index % 2))
    return sites


def _sites(cfa: str) -> list[tuple[int, int]]:
    """Every CFA site (row, column of the 2 x 2 cell), channel by channel."""
    return [s for sites in _channel_sites(cfa).values() for s in sites]


def sum_dtype(max_code: int, frames: int) -> np.dtype:
    """The smallest unsigned integer type that holds the sum of ``frames`` frames of codes up to ``max_code``
    exactly (uint16 for 10-bit codes and up to 64 frames)."""
    top = int(max_code) * int(frames)
    for dtype in (np.uint16, np.uint32, np.uint64):
        if top <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"{frames} frames of codes up to {max_code} overflow 64 bits")


class FrameSum:
    """The exact sum of up to ``frames`` raw frames (codes up to ``max_code``), added as they arrive: what an
    average over a stack needs, in one integer frame instead of the stack (EMVA 1288 averages its frames)."""

    def __init__(self, max_code: int, frames: int) -> None:
        if int(max_code) < 1 or int(frames) < 1:
            raise ValueError(f"a frame sum needs a max code >= 1 and frames >= 1, got {max_code}, {frames}")
        self.max_code, self.capacity, self.count = int(max_code), int(frames), 0
        self.dtype = sum_dtype(self.max_code, self.capacity)
        self.total: np.ndarray | None = None

    def add(self, frame: np.ndarray) -> None:
        """Add one (H, W) frame of integer codes; ValueError if it does not fit (shape, type, code, count)."""
        frame = np.asarray(frame)
        if frame.ndim != 2 or frame.dtype.kind not in "ui":
            raise ValueError(f"a frame sum adds (H, W) integer frames, got {frame.dtype} {frame.shape}")
        if self.count >= self.capacity:
            raise ValueError(f"a frame sum of {self.capacity} frames is full")
        if self.total is not None and frame.shape != self.total.shape:
            raise ValueError(f"frame of shape {frame.shape} added to a sum of {self.total.shape}")
        if frame.size and (int(frame.max()) > self.max_code or int(frame.min()) < 0):
            raise ValueError(f"frame codes outside 0..{self.max_code}")
        if self.total is None:
            self.total = frame.astype(self.dtype)
        else:
            np.add(self.total, frame, out=self.total, casting="unsafe")  # exact: sum_dtype holds every sum
        self.count += 1

    @property
    def shape(self) -> tuple[int, int]:
        if self.total is None:
            raise ValueError("a frame sum of no frames")
        return self.total.shape  # type: ignore[return-value]


Frames = np.ndarray | list[np.ndarray] | FrameSum


def _shape(frames: Frames) -> tuple[int, int]:
    if isinstance(frames, FrameSum):
        return frames.shape
    first = frames if isinstance(frames, np.ndarray) and frames.ndim == 2 else frames[0]
    return tuple(np.shape(first))  # type: ignore[return-value]


def _plane_mean(frames: Frames, row: int, col: int) -> np.ndarray:
    """One CFA site's plane of the frames' float64 mean: the very values ``np.mean(stack, axis=0)`` gives at
    those pixels (the float64 sum in frame order over the count), without the whole-frame mean."""
    if isinstance(frames, FrameSum):
        if frames.total is None:
            raise ValueError("a frame sum of no frames")
        return frames.total[row::2, col::2].astype(np.float64) / frames.count
    if isinstance(frames, np.ndarray) and frames.ndim == 2:
        return frames[row::2, col::2].astype(np.float64)
    if len(frames) == 0:
        raise ValueError("no frames to average")
    total = np.asarray(frames[0])[row::2, col::2].astype(np.float64)
    for frame in frames[1:]:
        total += np.asarray(frame)[row::2, col::2]
    return total / len(frames)


def _plane_rate(dark_frames: Frames, exposure_s: float, row: int, col: int) -> np.ndarray:
    plane = _plane_mean(dark_frames, row, col)
    plane -= np.median(plane)
    return plane / float(exposure_s)


def _plane_signal(flat_frames: Frames, dark: Frames | float, row: int, col: int) -> np.ndarray:
    signal = _plane_mean(flat_frames, row, col)
    signal -= _plane_mean(dark, row, col) if not isinstance(dark, int | float) else float(dark)
    return signal


def _plane_response(signal: np.ndarray, window_px: int) -> np.ndarray:
    local = cv2.medianBlur(np.ascontiguousarray(signal, dtype=np.float32), window_px)
    return signal / np.maximum(local, 1e-9)


def dark_signal_rate(dark_frames: Frames, exposure_s: float, cfa: str) -> np.ndarray:
    """(H, W) dark signal rate above each CFA site's median, DN/s, from frames averaged over the stack."""
    rate = np.empty(_shape(dark_frames), dtype=np.float64)
    for row, col in _sites(cfa):
        rate[row::2, col::2] = _plane_rate(dark_frames, exposure_s, row, col)
    return rate


def relative_response(flat_frames: Frames, dark: Frames | float, cfa: str, window_px: int = 5) -> np.ndarray:
    """(H, W) each pixel's light response over the median of its CFA site's neighbourhood (1 normal)."""
    ratio = np.empty(_shape(flat_frames), dtype=np.float64)
    for row, col in _sites(cfa):
        ratio[row::2, col::2] = _plane_response(_plane_signal(flat_frames, dark, row, col), window_px)
    return ratio


def _plane_kinds(dark_long: Frames, dark_long_exposure_s: float, flat: Frames, dark_short: Frames,
                 t: DefectThresholds, row: int, col: int) -> np.ndarray:
    """One CFA site's int8 kind codes (0 good; KINDS index + 1), a quarter frame's work at a time."""
    rate = _plane_rate(dark_long, dark_long_exposure_s, row, col)
    kind = np.zeros(rate.shape, dtype=np.int8)
    kind[rate >= t.warm_dn_per_s] = KINDS.index("warm") + 1
    kind[rate >= t.hot_dn_per_s] = KINDS.index("hot") + 1
    del rate
    short = _plane_mean(dark_short, row, col)
    signal = _plane_mean(flat, row, col)
    signal -= short
    no_light = _plane_response(signal, t.median_window_px)
    del signal
    kind[(no_light < t.weak_ratio) & (kind == 0)] = KINDS.index("weak") + 1
    no_light = no_light < t.dead_ratio
    short -= np.median(short)
    kind[no_light & (short < t.stuck_dark_dn)] = KINDS.index("dead") + 1
    kind[no_light & (short >= t.stuck_dark_dn)] = KINDS.index("stuck") + 1
    return kind


def cluster_sizes(ys: np.ndarray, xs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Sizes of the 8-connected clusters of the pixels (``ys``, ``xs``: distinct, in raster order), in the order
    ``scipy.ndimage.label`` numbers them (by each cluster's first pixel in raster order), from the pixels alone:
    no whole-frame label image."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(ys)
    if n == 0:
        return np.zeros(0, np.int64)
    height, width = shape
    ys, xs = ys.astype(np.int64), xs.astype(np.int64)
    index = ys * width + xs
    pairs = []
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):  # each neighbour pair once
        ok = (ys + dy < height) & (xs + dx >= 0) & (xs + dx < width)
        target = index + dy * width + dx
        at = np.minimum(np.searchsorted(index, target), n - 1)
        hit = ok & (index[at] == target)
        pairs.append((np.flatnonzero(hit), at[hit]))
    rows = np.concatenate([p[0] for p in pairs])
    cols = np.concatenate([p[1] for p in pairs])
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, first, counts = np.unique(labels, return_index=True, return_counts=True)
    return counts[np.argsort(first, kind="stable")].astype(np.int64)


def find_defects(dark_long: Frames, dark_long_exposure_s: float, flat: Frames, dark_short: Frames, cfa: str,
                 thresholds: DefectThresholds | None = None) -> DefectMap:
    """Classify every pixel (EMVA 1288 defect pixels; module docstring) from raw DN frames.

    ``dark_long``: dark frames (one (H, W) array, a stack or a ``FrameSum``) at ``dark_long_exposure_s``;
    ``flat``: flat fields at mid-scale; ``dark_short``: dark frames at the flats' exposure (their offset).
    The maths runs one CFA plane at a time (a quarter frame), never on the whole frame in float.
    """
    t = thresholds or DefectThresholds()
    shape = _shape(dark_long)
    ys_all, xs_all, codes = [], [], []
    for row, col in _sites(cfa):
        kind = _plane_kinds(dark_long, dark_long_exposure_s, flat, dark_short, t, row, col)
        py, px = np.nonzero(kind)
        ys_all.append(py * 2 + row)
        xs_all.append(px * 2 + col)
        codes.append(kind[py, px])
    ys, xs, kinds = np.concatenate(ys_all), np.concatenate(xs_all), np.concatenate(codes)
    order = np.lexsort((xs, ys))  # raster order, as np.nonzero of the whole frame
    ys, xs, kinds = ys[order].astype(np.int64), xs[order].astype(np.int64), kinds[order]
    sizes = cluster_sizes(ys, xs, shape)
    return DefectMap(xs, ys, tuple(KINDS[k - 1] for k in kinds), tuple(int(s) for s in sizes), t)


def defects_from_hot_pixel_map(values: list[int]) -> list[tuple[int, int]]:
    """(x, y) pairs from an Android ``hotPixelMap`` list; ValueError if it is not whole pairs of ints >= 0."""
    if len(values) % 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
        raise ValueError("hotPixelMap: expected an even-length list of non-negative integers (x, y pairs)")
    return list(zip(values[0::2], values[1::2], strict=True))


#: A pixel is an outlier of a characterisation's frames only beyond the noise: where a normal noise would flag
#: this many pixels in the whole frame (about 5.6 sigma for a 1024 x 768 ROI, 6.3 for 50 MP).
FALSE_ALARMS_PER_FRAME = 0.01


def noise_sigmas(pixels: int, false_alarms: float = FALSE_ALARMS_PER_FRAME) -> float:
    """One-sided normal threshold (sigma) that ``pixels`` of pure noise cross ``false_alarms`` times."""
    return float(norm.isf(false_alarms / max(int(pixels), 1)))


#: The robust standard deviation: the std of each CFA site's values between these percentiles (defect pixels are
#: far fewer than 0.1 %), over what the same trim leaves of a normal distribution's (a MAD of DN codes is too coarse).
TRIM_PCT = (0.1, 99.9)
_TRIMMED_NORMAL_STD = 0.98952


def _plane_sigma(plane: np.ndarray) -> float:
    """A CFA site's robust standard deviation: the std of its values between ``TRIM_PCT``."""
    lo, hi = np.percentile(plane, TRIM_PCT)
    inner = plane[(plane >= lo) & (plane <= hi)]
    return float(inner.std()) / _TRIMMED_NORMAL_STD


def _robust_sigma(values: np.ndarray, cfa: str) -> np.ndarray:
    """(H, W) each CFA site's robust standard deviation of ``values``: their std between ``TRIM_PCT``."""
    sigma = np.empty_like(values)
    for row, col in _sites(cfa):
        sigma[row::2, col::2] = _plane_sigma(values[row::2, col::2])
    return sigma


def dark_outliers(dark_frames: Frames, exposure_s: float, cfa: str, thresholds: DefectThresholds | None = None,
                  false_alarms: float = FALSE_ALARMS_PER_FRAME) -> np.ndarray:
    """(H, W) bool: hot and warm pixels of the darks (dark signal rate >= ``warm_dn_per_s``, as ``find_defects``;
    stuck pixels reading high too) that also stand clear of the noise (``noise_sigmas`` robust standard
    deviations above their CFA site's median; EMVA 1288 4.0 defect pixels): at a short exposure the rate
    thresholds alone sit in the noise. One CFA plane at a time."""
    t = thresholds or DefectThresholds()
    shape = _shape(dark_frames)
    k = noise_sigmas(shape[0] * shape[1], false_alarms)
    out = np.empty(shape, dtype=bool)
    for row, col in _sites(cfa):
        rate = _plane_rate(dark_frames, exposure_s, row, col)
        above_dn = rate * float(exposure_s)
        out[row::2, col::2] = (rate >= t.warm_dn_per_s) & (above_dn >= k * _plane_sigma(above_dn))
    return out


def flat_outliers(flat_frames: Frames, dark: Frames | float, cfa: str, thresholds: DefectThresholds | None = None,
                  false_alarms: float = FALSE_ALARMS_PER_FRAME) -> np.ndarray:
    """(H, W) bool: dead, weak and stuck pixels of the flats (``relative_response`` below ``weak_ratio``, as
    ``find_defects``) whose shortfall also stands clear of the noise (``noise_sigmas`` robust standard
    deviations). ``dark``: dark frames (a stack, a list, a ``FrameSum``), their mean, or a level. One CFA plane
    at a time."""
    t = thresholds or DefectThresholds()
    shape = _shape(flat_frames)
    k = noise_sigmas(shape[0] * shape[1], false_alarms)
    out = np.empty(shape, dtype=bool)
    for row, col in _sites(cfa):
        response = _plane_response(_plane_signal(flat_frames, dark, row, col), t.median_window_px)
        out[row::2, col::2] = (response < t.weak_ratio) & (1.0 - response >= k * _plane_sigma(response))
    return out


def dark_rate_count(dark_frames: Frames, exposure_s: float, cfa: str, threshold_dn_per_s: float) -> int:
    """Pixels whose dark signal rate (``dark_signal_rate``) is ``threshold_dn_per_s`` or more, a plane at a
    time."""
    return sum(int(np.count_nonzero(_plane_rate(dark_frames, exposure_s, row, col) >= threshold_dn_per_s))
               for row, col in _sites(cfa))

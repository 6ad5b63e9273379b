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
- clusters: 8-connected groups of defect pixels in the mosaic (``scipy.ndimage.label``); a cluster
  larger than ``max_cluster_px`` is one a correction by neighbours cannot hide.

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
from scipy import ndimage
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


def _mean(frames: np.ndarray | list[np.ndarray]) -> np.ndarray:
    stack = np.asarray(frames)
    return stack.astype(np.float64) if stack.ndim == 2 else stack.mean(axis=0, dtype=np.float64)


def dark_signal_rate(dark_frames: np.ndarray | list[np.ndarray], exposure_s: float, cfa: str) -> np.ndarray:
    """(H, W) dark signal rate above each CFA site's median, DN/s, from frames averaged over the stack."""
    dark = _mean(dark_frames)
    rate = np.empty_like(dark)
    for row, col in (s for sites in _channel_sites(cfa).values() for s in sites):
        plane = dark[row::2, col::2]
        rate[row::2, col::2] = (plane - np.median(plane)) / float(exposure_s)
    return rate


def relative_response(flat_frames: np.ndarray | list[np.ndarray], dark: np.ndarray | float, cfa: str,
                      window_px: int = 5) -> np.ndarray:
    """(H, W) each pixel's light response over the median of its CFA site's neighbourhood (1 normal)."""
    signal = _mean(flat_frames) - (_mean(dark) if isinstance(dark, np.ndarray) else float(dark))
    ratio = np.empty_like(signal)
    for row, col in (s for sites in _channel_sites(cfa).values() for s in sites):
        plane = signal[row::2, col::2]
        local = cv2.medianBlur(np.ascontiguousarray(plane, dtype=np.float32), window_px)
        ratio[row::2, col::2] = plane / np.maximum(local, 1e-9)
    return ratio


def find_defects(dark_long: np.ndarray | list[np.ndarray], dark_long_exposure_s: float,
                 flat: np.ndarray | list[np.ndarray], dark_short: np.ndarray | list[np.ndarray], cfa: str,
                 thresholds: DefectThresholds | None = None) -> DefectMap:
    """Classify every pixel (EMVA 1288 defect pixels; module docstring) from raw DN frames.

    ``dark_long``: dark frames (one (H, W) array or a stack) at ``dark_long_exposure_s``; ``flat``: flat
    fields at mid-scale; ``dark_short``: dark frames at the flats' exposure (their offset).
    """
    t = thresholds or DefectThresholds()
    rate = dark_signal_rate(dark_long, dark_long_exposure_s, cfa)
    short = _mean(dark_short)
    response = relative_response(flat, short, cfa, t.median_window_px)
    dark_level = np.empty_like(short)
    for row, col in (s for sites in _channel_sites(cfa).values() for s in sites):
        plane = short[row::2, col::2]
        dark_level[row::2, col::2] = plane - np.median(plane)
    kind = np.zeros(rate.shape, dtype=np.int8)  # 0 good; 1.. KINDS index + 1
    kind[rate >= t.warm_dn_per_s] = KINDS.index("warm") + 1
    kind[rate >= t.hot_dn_per_s] = KINDS.index("hot") + 1
    no_light = response < t.dead_ratio
    kind[(response < t.weak_ratio) & (kind == 0)] = KINDS.index("weak") + 1
    kind[no_light & (dark_level < t.stuck_dark_dn)] = KINDS.index("dead") + 1
    kind[no_light & (dark_level >= t.stuck_dark_dn)] = KINDS.index("stuck") + 1
    ys, xs = np.nonzero(kind)
    labels, count = ndimage.label(kind > 0, structure=np.ones((3, 3), dtype=bool))
    sizes = np.bincount(labels[ys, xs], minlength=count + 1)[1:] if count else np.zeros(0, np.int64)
    return DefectMap(xs.astype(np.int64), ys.astype(np.int64), tuple(KINDS[k - 1] for k in kind[ys, xs]),
                     tuple(int(s) for s in sizes), t)


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


def _robust_sigma(values: np.ndarray, cfa: str) -> np.ndarray:
    """(H, W) each CFA site's robust standard deviation of ``values``: their std between ``TRIM_PCT``."""
    sigma = np.empty_like(values)
    for row, col in (s for sites in _channel_sites(cfa).values() for s in sites):
        plane = values[row::2, col::2]
        lo, hi = np.percentile(plane, TRIM_PCT)
        inner = plane[(plane >= lo) & (plane <= hi)]
        sigma[row::2, col::2] = float(inner.std()) / _TRIMMED_NORMAL_STD
    return sigma


def dark_outliers(dark_frames: np.ndarray | list[np.ndarray], exposure_s: float, cfa: str,
                  thresholds: DefectThresholds | None = None,
                  false_alarms: float = FALSE_ALARMS_PER_FRAME) -> np.ndarray:
    """(H, W) bool: hot and warm pixels of the darks (dark signal rate >= ``warm_dn_per_s``, as ``find_defects``;
    stuck pixels reading high too) that also stand clear of the noise (``noise_sigmas`` robust standard
    deviations above their CFA site's median; EMVA 1288 4.0 defect pixels): at a short exposure the rate
    thresholds alone sit in the noise."""
    t = thresholds or DefectThresholds()
    rate = dark_signal_rate(dark_frames, exposure_s, cfa)
    above_dn = rate * float(exposure_s)
    k = noise_sigmas(rate.size, false_alarms)
    return (rate >= t.warm_dn_per_s) & (above_dn >= k * _robust_sigma(above_dn, cfa))


def flat_outliers(flat_frames: np.ndarray | list[np.ndarray], dark: np.ndarray | float, cfa: str,
                  thresholds: DefectThresholds | None = None,
                  false_alarms: float = FALSE_ALARMS_PER_FRAME) -> np.ndarray:
    """(H, W) bool: dead, weak and stuck pixels of the flats (``relative_response`` below ``weak_ratio``, as
    ``find_defects``) whose shortfall also stands clear of the noise (``noise_sigmas`` robust standard
    deviations)."""
    t = thresholds or DefectThresholds()
    response = relative_response(flat_frames, dark, cfa, t.median_window_px)
    k = noise_sigmas(response.size, false_alarms)
    return (response < t.weak_ratio) & (1.0 - response >= k * _robust_sigma(response, cfa))

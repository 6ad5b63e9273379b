"""Today's whole-frame defect classification (calibration.defects before the lean, plane-by-plane path of
issue 13), kept verbatim as the reference the lean path must equal bit for bit (tests/unit/test_defects_lean.py)."""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from calibration.defects import (
    _TRIMMED_NORMAL_STD,
    FALSE_ALARMS_PER_FRAME,
    KINDS,
    TRIM_PCT,
    DefectMap,
    DefectThresholds,
    noise_sigmas,
)


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

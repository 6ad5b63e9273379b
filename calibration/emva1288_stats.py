"""EMVA 1288 (Release 4.0 Linear) statistics: per-channel pixel selection, pair and stack statistics, the
highpass for uneven illumination (8.1), the photon transfer fits (saturation, K, linearity) and the clip level."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from calibration.cfa import CfaError
from calibration.cfa import channel_slices as cfa_channel_slices
from calibration.emva1288_results import SensorAnalysisError

#: Fit range for the linearity: between these fractions of mu_y.sat.
LINEARITY_FIT_RANGE = (0.05, 0.95)
#: A step is on the plateau when the mean rises by less than this fraction of the linear response's rise.
PLATEAU_RISE_FRACTION = 0.02

MONO_CHANNEL = "Y"


def channel_slices(cfa: str | None) -> dict[str, tuple[slice, slice]]:
    """Per channel, the (row, col) slices selecting its pixels: R, Gr, Gb, B for a 2x2 CFA, else Y."""
    if cfa is None or cfa.upper() in ("", "MONO", "GRAY", "Y"):
        return {MONO_CHANNEL: (slice(None), slice(None))}
    try:
        return cfa_channel_slices(cfa)
    except CfaError as exc:
        raise SensorAnalysisError(f"{exc} (or None for a monochrome sensor)") from None


def pair_stats(a: np.ndarray, b: np.ndarray, keep: np.ndarray | None = None) -> tuple[float, float]:
    """Mean of (A+B)/2 and temporal variance var(A-B)/2 (EMVA 1288 4.0, eqs. for mu_y and sigma2_y);
    ``keep``: a boolean mask of the pixels that count (None: all)."""
    a64 = a.astype(np.float64) if keep is None else a[keep].astype(np.float64)
    b64 = b.astype(np.float64) if keep is None else b[keep].astype(np.float64)
    mean = 0.5 * (float(a64.mean()) + float(b64.mean()))
    diff = a64 - b64
    var = float(diff.var()) / 2.0
    return mean, var


#: EMVA 1288 4.0, 8.1: the lowpass whose output is subtracted (box 7x7, box 11x11, binomial 3x3).
HIGHPASS_BOXES = (7, 11)
_BINOMIAL_3 = np.array([0.25, 0.5, 0.25])
#: Reach of that lowpass (3 + 5 + 1 px): the border band where it would read a reflected border is left
#: out of the highpass statistics (on a 30 % falloff a reflected border read PRNU 4 % high).
HIGHPASS_MARGIN_PX = 9


def _lowpass_1288(y: np.ndarray) -> np.ndarray:
    """EMVA 1288 4.0, 8.1's lowpass ``B3 * B11 * B7 * y``, borders reflected."""
    smooth = y
    for size in HIGHPASS_BOXES:
        smooth = cv2.blur(smooth, (size, size), borderType=cv2.BORDER_REFLECT)
    return cv2.sepFilter2D(smooth, -1, _BINOMIAL_3, _BINOMIAL_3, borderType=cv2.BORDER_REFLECT)


def highpass_1288(image: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """EMVA 1288 4.0 (8.1, correction for uneven illumination): ``y - B3 * B11 * B7 * y`` (float64), box
    filters of 7 and 11 px and a 3x3 binomial, borders reflected. Removes shading, keeps pixel-scale
    nonuniformity (white noise keeps 99 % of its variance). ``keep``: a boolean mask of the pixels that
    count; the others carry no weight in the lowpass (normalised convolution, Knutsson & Westin 1993), so a
    hot pixel does not dent its neighbours; their own output is meaningless."""
    y = np.ascontiguousarray(image, dtype=np.float64)
    if keep is None:
        return y - _lowpass_1288(y)
    weight, norm = _lowpass_weight(keep)
    return y - _lowpass_1288(y * weight) / norm


def _lowpass_weight(keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The normalised convolution's weight (1 kept, 0 left out) and its lowpass (floored above 0)."""
    weight = np.ascontiguousarray(keep, dtype=np.float64)
    return weight, np.maximum(_lowpass_1288(weight), 1e-12)


def _stack_stats(frames: Sequence[np.ndarray], highpass: bool = False,
                 keep: np.ndarray | None = None) -> tuple[float, float, float, int]:
    """From L >= 2 frames (each ``highpass_1288``-filtered with ``highpass``, less the
    ``HIGHPASS_MARGIN_PX`` border): mean, mean temporal variance (ddof=1 per pixel), spatial variance of
    the frame average (ddof=1) and L; over the ``keep`` pixels only when given."""
    if highpass:
        m = HIGHPASS_MARGIN_PX
        inner = all(min(np.shape(f)) > 4 * m for f in frames)
        crop = (slice(m, -m), slice(m, -m)) if inner else (slice(None), slice(None))
        if keep is None:
            stack = np.stack([highpass_1288(f)[crop] for f in frames])
        else:
            weight, norm = _lowpass_weight(keep)  # once for the stack
            stack = np.stack([(y - _lowpass_1288(y * weight) / norm)[crop]
                              for y in (np.asarray(f, dtype=np.float64) for f in frames)])
        keep = None if keep is None else keep[crop]
    else:
        stack = np.stack([np.asarray(f, dtype=np.float64) for f in frames])
    L = stack.shape[0]
    avg = stack.mean(axis=0)
    per_pixel = stack.var(axis=0, ddof=1)
    if keep is not None:  # the per-pixel figures of the pixels kept (2-D selections: far cheaper than the stack's)
        avg, per_pixel = avg[keep], per_pixel[keep]
    temporal = float(per_pixel.mean())
    spatial = float(avg.var(ddof=1))
    return float(avg.mean()), temporal, spatial, L


def spatial_variance(frames: Sequence[np.ndarray], highpass: bool = False,
                     keep: np.ndarray | None = None) -> tuple[float, float]:
    """EMVA spatial variance s2_y (DN^2) of L frames: var of their average less sigma2_stack / L; and the
    mean. ``highpass``: of the ``highpass_1288``-filtered frames (the mean is then ~0). ``keep``: a boolean
    mask of the pixels that count (None: all)."""
    mean, temporal, spatial, L = _stack_stats(frames, highpass, keep)
    return spatial - temporal / L, mean


def fit_through_origin(x: np.ndarray, y: np.ndarray) -> float:
    denom = float(np.dot(x, x))
    if denom <= 0:
        raise SensorAnalysisError("no signal above dark in the fit range")
    return float(np.dot(x, y) / denom)


def saturation_index(variance: np.ndarray) -> int:
    """Index of the maximum temporal variance, scanning down from the brightest point as the emva1288
    package does (a noise spike past saturation does not move it)."""
    best, best_i = -np.inf, 0
    for i in range(len(variance) - 1, -1, -1):
        prev = variance[abs(i - 1)]
        if variance[i] >= best or prev >= best:
            best, best_i = variance[i], i
        elif variance[i] < best and prev < best:
            break
    return int(best_i)


def linearity(x: np.ndarray, y: np.ndarray, sat: int) -> tuple[float, float, float, tuple[int, int]]:
    """EMVA 1288 linearity: line y = a x + b fitted to minimise relative deviations between 5 % and
    95 % of saturation; returns LE = (max - min) / 2, min, max (%), and the fit index range."""
    y_sat = y[sat]
    lo, hi = LINEARITY_FIT_RANGE
    idx = np.flatnonzero((y >= lo * y_sat) & (y <= hi * y_sat) & (np.arange(len(y)) <= sat))
    if len(idx) < 2:
        return float("nan"), float("nan"), float("nan"), (0, 0)
    i0, i1 = int(idx.min()), int(idx.max())
    X, Y = x[i0 : i1 + 1], y[i0 : i1 + 1]
    if np.any(Y <= 0):
        return float("nan"), float("nan"), float("nan"), (i0, i1)
    # Minimise sum(((a X + b) - Y) / Y)^2 (as EMVA / the emva1288 package): weights 1 / Y.
    w = 1.0 / Y
    A = np.column_stack([X * w, w])
    (a, b), *_ = np.linalg.lstsq(A, np.ones_like(Y), rcond=None)
    fit = a * X + b
    dev = 100.0 * (Y - fit) / fit
    return float((dev.max() - dev.min()) / 2.0), float(dev.min()), float(dev.max()), (i0, i1)


def clip_level(light: np.ndarray, raw_mean: np.ndarray, mean: np.ndarray, sat: int,
                gain_fit: tuple[int, int]) -> float | None:
    """Absolute DN where the mean output stops rising with the light (exposure or photons): the median
    over the final plateau of two or more points, each rising less than ``PLATEAU_RISE_FRACTION`` of
    what the linear response would; None if the sweep never reaches it."""
    i0, i1 = gain_fit
    x = light[i0 : i1 + 1]
    if len(x) >= 2 and np.ptp(x) > 0:
        slope = float(np.polyfit(x, mean[i0 : i1 + 1], 1)[0])
    else:
        slope = float(mean[sat] / light[sat]) if light[sat] > 0 else 0.0
    if slope <= 0:
        return None
    n = len(light)
    flat = np.zeros(n, dtype=bool)
    for i in range(1, n):
        rise = raw_mean[i] - raw_mean[i - 1]
        flat[i] = rise < PLATEAU_RISE_FRACTION * slope * (light[i] - light[i - 1])
    # The plateau: from the first point i such that every step from i onwards is flat.
    start = None
    for i in range(n - 1, 0, -1):
        if not flat[i]:
            break
        start = i - 1
    if start is None or n - start < 2:
        return None
    # The points reached by a flat step; the plateau's first point may still be on its way up (a mean
    # over partly clipped pixels), and the median shrugs off a noisy one.
    return float(np.median(raw_mean[start + 1 :]))
